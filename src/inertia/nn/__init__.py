"""Neural networks: offline data (`data`), equinox models (`models`), and one vectorised training loop (`train`)."""

from .data import DATASETS, Dataset, load, read_idx, split, standardise, unit_norm
from .models import CNN, MLP, TwoLayerReLU
from .train import LOSSES, train

__all__ = ["Dataset", "DATASETS", "load", "read_idx", "split", "standardise", "unit_norm", "MLP", "CNN",
           "TwoLayerReLU", "train", "LOSSES"]
