"""Equinox models. Each takes ONE flat example (batching is `jax.vmap`'s job) and a keyword-only ``key``.

- `MLP`: fully connected, ReLU, logits out.
- `CNN`: two convolutions (1-D or 2-D from the example shape), global average pooling, a linear head.
- `TwoLayerReLU`: ``f(W, a, x) = (1/√m) Σ_r a_r relu(w_rᵀx)`` of Du et al. (ICLR 2019) and docs/theory.md §4,
  with ``w_r(0) ~ N(0, I)`` trained and the readout ``a_r ~ Unif{±1}`` fixed (it receives no gradient).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._checks import InertiaError, check_int

__all__ = ["MLP", "CNN", "TwoLayerReLU"]


class MLP(eqx.Module):
    """A ReLU multilayer perceptron ``in_size → width (× depth) → out_size`` with equinox's default init.

    **Arguments:** ``in_size``, ``out_size``: input and output sizes; ``width``: hidden units per layer;
    ``depth``: hidden layers (≥ 1); ``key``: PRNG key (keyword-only).
    """

    layers: tuple[eqx.nn.Linear, ...]

    def __init__(self, in_size: int, out_size: int, *, width: int = 64, depth: int = 2, key: Array):
        for name, value in (("in_size", in_size), ("out_size", out_size), ("width", width), ("depth", depth)):
            check_int(name, value, 1)
        sizes = [in_size] + [width] * depth + [out_size]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys))

    def __call__(self, x: Array) -> Array:
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


class CNN(eqx.Module):
    """A small convolutional network for one flat example of natural shape ``(channels, *spatial)``.

    Two 3-wide (3×3) convolutions with ReLU, the second with stride 2, global average pooling, a linear head.

    **Arguments:** ``shape``: one example's shape, e.g. ``(1, 40)`` (MNIST-1D) or ``(1, 8, 8)`` (digits);
    ``out_size``; ``channels``: feature maps per convolution; ``key`` (keyword-only).
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    conv1: eqx.nn.Conv
    conv2: eqx.nn.Conv
    head: eqx.nn.Linear

    def __init__(self, shape: tuple[int, ...], out_size: int, *, channels: int = 16, key: Array):
        if len(shape) not in (2, 3):
            raise InertiaError(f"shape must be (channels, length) or (channels, height, width); got {shape}")
        check_int("channels", channels, 1)
        k1, k2, k3 = jax.random.split(key, 3)
        dims = len(shape) - 1
        self.shape = tuple(shape)
        self.conv1 = eqx.nn.Conv(dims, shape[0], channels, 3, padding=1, key=k1)
        self.conv2 = eqx.nn.Conv(dims, channels, channels, 3, stride=2, padding=1, key=k2)
        self.head = eqx.nn.Linear(channels, out_size, key=k3)

    def __call__(self, x: Array) -> Array:
        h = jax.nn.relu(self.conv1(x.reshape(self.shape)))
        h = jax.nn.relu(self.conv2(h))
        return self.head(h.reshape(h.shape[0], -1).mean(-1))


class TwoLayerReLU(eqx.Module):
    """``f(W, a, x) = (1/√m) Σ_r a_r relu(w_rᵀx)`` (Du, Zhai, Poczos & Singh, ICLR 2019, eq. 1; docs/theory.md §4).

    ``weight`` ``W`` (m, d) starts ``N(0, I)`` and is trained; ``readout`` ``a`` (m,) is ``±1`` and fixed: the
    forward pass stops its gradient, so any method leaves it where it started. The output is a scalar.

    **Arguments:** ``in_size``: d; ``width``: m; ``key`` (keyword-only).
    """

    weight: Array
    readout: Array

    def __init__(self, in_size: int, width: int, *, key: Array):
        check_int("in_size", in_size, 1)
        check_int("width", width, 1)
        kw, ka = jax.random.split(key)
        self.weight = jax.random.normal(kw, (width, in_size))
        self.readout = jnp.where(jax.random.bernoulli(ka, 0.5, (width,)), 1.0, -1.0).astype(self.weight.dtype)

    @property
    def width(self) -> int:
        return self.weight.shape[0]

    def __call__(self, x: Array) -> Array:
        a = jax.lax.stop_gradient(self.readout)
        return a @ jax.nn.relu(self.weight @ x) / math.sqrt(self.width)
