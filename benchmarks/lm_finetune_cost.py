"""The cost of the language-model claim's pieces (sgdm-lm-finetune), in CPU seconds of the process (all threads):

- the frozen lower layers' one-off forward pass (`inertia.nn.pretrained.features`), per example;
- training the top ``k`` layers and the head with `inertia.nn.train`, per example-pass (one example's forward and
  backward pass through the trained part, in one network), from the difference of two runs that differ only in
  their number of steps (compilation and the start/end evaluation cancel).

Sizes are the claim's: 32 tokens, batch 8, a grid of 3 rates × 2 seeds. Run from the repository root:

    PYTHONPATH=src python benchmarks/lm_finetune_cost.py [--layers 1 2] [--steps 8 24]
"""

import argparse
import functools
import time

import jax
import numpy as np

from _timing import machine, timed
from inertia.methods import HeavyBall
from inertia.nn import Dataset, SentenceClassifier, Texts, load, pretrained, tokenize, train
from inertia.nn.pretrained import features


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, nargs=2, default=[8, 40])
    parser.add_argument("--max-length", type=int, default=32)
    args = parser.parse_args()
    print(machine())
    encoder, tokenizer = pretrained("all-MiniLM-L6-v2")
    texts = load("rotten_tomatoes")
    assert isinstance(texts, Texts)
    tokens = tokenize(tokenizer, texts.text_train[:512], args.max_length)
    for upto in (4, 5, 6):
        features(encoder, (tokens[0][:256], tokens[1][:256]), upto=upto)  # compile
        t, _ = timed(lambda: features(encoder, tokens, upto=upto))
        print(f"frozen pass through {upto} layers: {1e3 * t.cpu / len(tokens[0]):.2f} CPU-ms per example "
              f"({1e3 * t / len(tokens[0]):.2f} ms wall)")
    lrs = np.array([0.01, 0.03, 0.1])
    method = HeavyBall.from_practitioner(lrs * 0.1, np.full_like(lrs, 0.9))
    seeds, batch = 2, 8
    for layers in args.layers:
        first = 6 - layers
        hidden = features(encoder, tokens, upto=first)
        x = (hidden[:64], tokens[1][:64])
        data = Dataset("rt", x, texts.y_train[:64], (hidden[64:72], tokens[1][64:72]), texts.y_train[64:72], 2, ())
        factory = functools.partial(SentenceClassifier, encoder, 2, first=first)
        run = lambda steps: train(factory, method, data, key=jax.random.key(0), epochs=steps * batch // 64,
                                  batch_size=batch, seeds=seeds, record_every=steps * batch // 64, progress=False)
        start = time.perf_counter()
        run(args.steps[0])
        compile_wall = time.perf_counter() - start
        short, _ = timed(lambda: run(args.steps[0]).train_loss.values)
        long, _ = timed(lambda: run(args.steps[1]).train_loss.values)
        passes = len(lrs) * seeds * batch * (args.steps[1] - args.steps[0])
        print(f"top {layers} layers + head: {1e3 * (long.cpu - short.cpu) / passes:.2f} CPU-ms per example-pass "
              f"({1e3 * (long - short) / passes:.2f} ms wall; first call {compile_wall:.1f} s wall)")
    print(machine())


if __name__ == "__main__":
    main()
