"""Neural networks: offline data (`data`), equinox models (`models`), a pretrained encoder (`pretrained`), and
one vectorised training loop (`train`)."""

from .data import DATASETS, Dataset, DataUnavailable, Texts, load, read_idx, split, standardise, unit_norm
from .models import CNN, MLP, Autoencoder, ResNet, TwoLayerReLU
from .pretrained import BertEncoder, SentenceClassifier, pretrained, tokenize
from .train import LOSSES, train

__all__ = ["Dataset", "Texts", "DataUnavailable", "DATASETS", "load", "read_idx", "split", "standardise",
           "unit_norm", "MLP", "Autoencoder", "CNN", "ResNet", "TwoLayerReLU", "BertEncoder", "SentenceClassifier",
           "pretrained", "tokenize", "train", "LOSSES"]
