"""Equinox models. Each takes ONE flat example (batching is `jax.vmap`'s job) and a keyword-only ``key``.

- `MLP`: fully connected, ReLU, logits out.
- `CNN`: two convolutions (1-D or 2-D from the example shape), global average pooling, a linear head.
- `ResNet`: a small residual network for images (He et al., CVPR 2016) with GroupNorm (Wu & He, ECCV 2018)
  in place of BatchNorm, so that one example's output never depends on the others in its batch (it vmaps over
  configurations and seeds with no running statistics).
- `Autoencoder`: a fully connected autoencoder with smooth (tanh) hidden units and a linear output, the kind of
  network of Hinton & Salakhutdinov (Science 2006) that Kovachki & Stuart (JMLR 2021, §5) train with momentum.
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

__all__ = ["MLP", "CNN", "ResNet", "TwoLayerReLU", "Autoencoder"]


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


class _Conv(eqx.Module):
    """A bias-free square convolution written as image patches times a weight matrix.

    The same map as ``eqx.nn.Conv2d(..., use_bias=False)`` and its initialisation (uniform in ``±1/√fan_in``),
    but under `vmap` over parameters (one network per configuration in `inertia.nn.train`) it becomes a batched
    matrix product; a convolution with batched kernels becomes a grouped convolution, which XLA on CPU runs slowly.
    """

    weight: Array
    stride: int = eqx.field(static=True)
    padding: int = eqx.field(static=True)

    def __init__(self, channels_in: int, channels_out: int, size: int, *, stride: int = 1, padding: int = 0,
                 key: Array):
        bound = 1.0 / math.sqrt(channels_in * size * size)
        self.weight = jax.random.uniform(key, (channels_out, channels_in, size, size), minval=-bound, maxval=bound)
        self.stride, self.padding = stride, padding

    def __call__(self, x: Array) -> Array:
        size, step = self.weight.shape[-1], self.stride
        x = jnp.pad(x, ((0, 0), (self.padding, self.padding), (self.padding, self.padding)))
        height, width = (x.shape[1] - size) // step + 1, (x.shape[2] - size) // step + 1
        shifted = [x[:, i:i + step * (height - 1) + 1:step, j:j + step * (width - 1) + 1:step]
                   for i in range(size) for j in range(size)]
        patches = jnp.stack(shifted, axis=1).reshape(-1, height, width)  # (channel, row, column) major to minor
        return jnp.einsum("ok,khw->ohw", self.weight.reshape(self.weight.shape[0], -1), patches)


class _Block(eqx.Module):
    """He et al.'s basic block with GroupNorm: ``relu(GN(conv(relu(GN(conv(x))))) + shortcut(x))``; the shortcut
    is the identity, or a strided 1×1 convolution and GroupNorm when the shape changes."""

    conv1: _Conv
    norm1: eqx.nn.GroupNorm
    conv2: _Conv
    norm2: eqx.nn.GroupNorm
    shortcut: tuple

    def __init__(self, channels_in: int, channels: int, stride: int, groups: int, *, key: Array):
        k1, k2, k3 = jax.random.split(key, 3)
        self.conv1 = _Conv(channels_in, channels, 3, stride=stride, padding=1, key=k1)
        self.norm1 = eqx.nn.GroupNorm(groups, channels)
        self.conv2 = _Conv(channels, channels, 3, padding=1, key=k2)
        self.norm2 = eqx.nn.GroupNorm(groups, channels)
        same = stride == 1 and channels_in == channels
        self.shortcut = () if same else (_Conv(channels_in, channels, 1, stride=stride, key=k3),
                                         eqx.nn.GroupNorm(groups, channels))

    def __call__(self, x: Array) -> Array:
        h = jax.nn.relu(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        for layer in self.shortcut:
            x = layer(x)
        return jax.nn.relu(h + x)


class ResNet(eqx.Module):
    """A small ResNet for one flat image of shape ``(channels, height, width)``, e.g. 28×28 (Fashion-)MNIST.

    A 3×3 stem convolution, then one stage per entry of ``widths``, each of ``blocks`` basic blocks (He, Zhang,
    Ren & Sun, CVPR 2016, Fig. 2 left) with stride 2 at the start of every stage after the first, then global
    average pooling and a linear head. Normalisation is **GroupNorm** (Wu & He, ECCV 2018) with ``groups``
    groups, not BatchNorm: it normalises each example on its own, so the model is a pure function of one example
    and works under `vmap` over configurations and seeds (`inertia.nn.train`) with no batch statistics.

    **Arguments:** ``shape``: one example's shape ``(channels, height, width)``; ``out_size``; ``widths``:
    channels per stage (multiples of ``groups``); ``blocks``: blocks per stage; ``key`` (keyword-only).
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    stem: _Conv
    stem_norm: eqx.nn.GroupNorm
    blocks: tuple[_Block, ...]
    head: eqx.nn.Linear

    def __init__(self, shape: tuple[int, ...], out_size: int, *, widths: tuple[int, ...] = (16, 32, 64),
                 blocks: int = 1, groups: int = 8, key: Array):
        if len(shape) != 3:
            raise InertiaError(f"shape must be (channels, height, width); got {shape}")
        check_int("out_size", out_size, 1)
        check_int("blocks", blocks, 1)
        check_int("groups", groups, 1)
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 or w % groups for w in widths):
            raise InertiaError(f"widths must be positive multiples of groups = {groups}; got {widths}")
        keys = iter(jax.random.split(key, 2 + len(widths) * blocks))
        self.shape = tuple(shape)
        self.stem = _Conv(shape[0], widths[0], 3, padding=1, key=next(keys))
        self.stem_norm = eqx.nn.GroupNorm(groups, widths[0])
        layers, channels = [], widths[0]
        for stage, width in enumerate(widths):
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                layers.append(_Block(channels, width, stride, groups, key=next(keys)))
                channels = width
        self.blocks = tuple(layers)
        self.head = eqx.nn.Linear(channels, out_size, key=next(keys))

    def __call__(self, x: Array) -> Array:
        h = jax.nn.relu(self.stem_norm(self.stem(x.reshape(self.shape))))
        for block in self.blocks:
            h = block(h)
        return self.head(h.mean(axis=(1, 2)))


class Autoencoder(eqx.Module):
    """A fully connected autoencoder ``sizes[0] → sizes[1] → … → sizes[-1]``, tanh hidden units, linear output.

    The architecture family of Hinton & Salakhutdinov (Science 2006, 784-1000-500-250-30 and back, logistic units),
    which Kovachki & Stuart (JMLR 2021, §5) train with heavy ball and Nesterov; tanh keeps the loss smooth (C^∞),
    as their modified equations need (a ReLU network's Hessian jumps). Equinox's default initialisation.

    **Arguments:** ``sizes``: at least three layer sizes with ``sizes[-1] == sizes[0]`` (e.g. ``(784, 32, 8, 32,
    784)``); ``key`` (keyword-only).
    """

    layers: tuple[eqx.nn.Linear, ...]

    def __init__(self, sizes: tuple[int, ...] | list[int], *, key: Array):
        sizes = tuple(sizes)
        if len(sizes) < 3 or sizes[-1] != sizes[0]:
            raise InertiaError(f"sizes must hold >= 3 layer sizes, the last equal to the first; got {sizes}")
        for size in sizes:
            check_int("sizes", size, 1)
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys))

    def __call__(self, x: Array) -> Array:
        for layer in self.layers[:-1]:
            x = jnp.tanh(layer(x))
        return self.layers[-1](x)


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
