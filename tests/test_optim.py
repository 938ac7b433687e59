"""The core optimizers (wdlib.optim): the books' SGD bit for bit, and the same numbers on every backend.

Cross-backend tolerance for whole float64 runs: as for the MLP (tests/test_models.py), only the
summation order inside ``dot`` differs; Adam divides by sqrt(v) + eps, which amplifies relative
differences of tiny gradients at most by |g| / (sqrt(v) + eps) <= ~1/(1 - b1), so 1e-9 holds.
"""

from __future__ import annotations

import numpy as np
import pytest

import wdlib
from wdlib import optim

OPTIMIZERS = [
    {"optimizer": "momentum", "lambd": 0.5},
    {"optimizer": "momentum", "optimizer_args": {"nesterov": True, "beta": 0.8}, "wd": 0.5},
    {"optimizer": "momentum", "optimizer_args": {"dampening": 0.5}, "wd": 0.5, "decay": "decoupled"},
    {"optimizer": "adam", "lr": 0.01, "lambd": 0.5},
    {"optimizer": "adam", "lr": 0.01, "wd": 0.5, "decay": "decoupled"},
    {"optimizer": "adam", "lr": 0.01, "wd": 0.01, "decay": "independent", "decay_bias": True},
    {"optimizer": "sgd", "wd": 3.0},
]


def test_sgd_chain_is_the_books_step_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    params = {"w": rng.standard_normal((200, 1)).astype(np.float32), "b": np.zeros(1, np.float32)}
    grads = {k: rng.standard_normal(v.shape).astype(np.float32) * 30 for k, v in params.items()}
    sgd = optim.sgd(0.003, 5)
    updates, _ = sgd.update(grads, sgd.init(params), params)
    ours = optim.apply_updates(params, updates)
    books = wdlib.sgd_step(params, grads, 0.003, 5)
    for k in params:
        assert np.array_equal(ours[k], books[k])


def test_sgd_with_coupled_decay_is_the_l2_penalty() -> None:
    """For plain SGD, optimizer weight decay wd equals the loss penalty lambd = wd (full batches)."""
    penalty = wdlib.train("numpy", lambd=3, dtype="float64", engine="eager")
    decay = wdlib.train("numpy", wd=3, dtype="float64")
    np.testing.assert_allclose(decay.params["w"], penalty.params["w"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(decay.test_loss, penalty.test_loss, rtol=1e-12)


@pytest.mark.parametrize("fields", OPTIMIZERS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_optimizer_runs_equal_numpy_reference(backend: str, fields: dict) -> None:
    common = {"num_epochs": 20, "dtype": "float64", **fields}
    ref = wdlib.train("numpy", **common)
    run = wdlib.train(backend, **common)
    assert run.engine == ("compiled" if backend == "jax" else "eager")
    np.testing.assert_allclose(run.test_loss, ref.test_loss, rtol=1e-9)
    for k in ("w", "b"):
        np.testing.assert_allclose(run.params[k], ref.params[k], rtol=1e-9,
                                   atol=1e-9 * np.abs(ref.params[k]).max(), err_msg=k)


def test_coupled_and_decoupled_adam_differ() -> None:
    """With Adam the coupled decay is rescaled by 1/sqrt(v): not the same update as AdamW's."""
    common = {"optimizer": "adam", "lr": 0.01, "wd": 0.5, "dtype": "float64", "num_epochs": 20}
    coupled = wdlib.train("numpy", **common)
    decoupled = wdlib.train("numpy", decay="decoupled", **common)
    gap = np.abs(coupled.params["w"] - decoupled.params["w"]).max()
    assert gap > 0.1 * np.abs(decoupled.params["w"]).max()


def test_momentum_matches_its_definition() -> None:
    """trace() as PyTorch's SGD(momentum) defines it, written out for three steps."""
    ops = wdlib.get_backend("numpy")
    g = [{"p": np.array([1.0, -2.0])}, {"p": np.array([0.5, 0.5])}, {"p": np.array([-1.0, 4.0])}]
    t = optim.trace(ops, 0.9, dampening=0.1)
    state = t.init({"p": np.zeros(2)})
    buf = None
    for grads in g:
        out, state = t.update(grads, state, {"p": np.zeros(2)})
        buf = grads["p"] if buf is None else 0.9 * buf + 0.9 * grads["p"]
        np.testing.assert_array_equal(out["p"], buf)


def test_adam_matches_its_definition() -> None:
    ops = wdlib.get_backend("numpy")
    a = optim.scale_by_adam(ops, 0.9, 0.99, 1e-3)
    state = a.init({"p": np.zeros(1)})
    m = v = 0.0
    for t, g in enumerate([0.3, -1.0, 2.0], start=1):
        out, state = a.update({"p": np.array([g])}, state, {"p": np.zeros(1)})
        m, v = 0.9 * m + 0.1 * g, 0.99 * v + 0.01 * g * g
        expected = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-3)
        assert out["p"][0] == pytest.approx(expected, rel=1e-15)


def test_masked_and_chain_compose() -> None:
    params = {"w": np.ones(2), "b": np.ones(1)}
    grads = {"w": np.zeros(2), "b": np.zeros(1)}
    decay = optim.masked(optim.add_decayed_weights(0.5), {"w": True, "b": False})
    opt = optim.chain(decay, optim.scale(-2.0))
    updates, _ = opt.update(grads, opt.init(params), params)
    np.testing.assert_array_equal(updates["w"], [-1.0, -1.0])
    np.testing.assert_array_equal(updates["b"], [0.0])


def test_decay_mask_leaves_the_bias_alone() -> None:
    common = {"optimizer": "adam", "lr": 0.01, "wd": 1.0, "decay": "decoupled", "num_epochs": 5}
    kept = wdlib.train("numpy", **common)
    both = wdlib.train("numpy", decay_bias=True, **common)
    assert not np.array_equal(kept.params["b"], both.params["b"])
    only_b = wdlib.train("numpy", penalize=("b",), **common)
    free = wdlib.train("numpy", **{**common, "wd": 0.0, "decay": "coupled"})
    np.testing.assert_array_equal(only_b.params["w"].shape, free.params["w"].shape)
    assert not np.array_equal(only_b.params["b"], free.params["b"])


@pytest.mark.parametrize(("fields", "name"), [
    ({"optimizer": "adagrad"}, "optimizer"),
    ({"optimizer": "adam", "optimizer_args": {"beta": 0.9}}, "optimizer_args"),
    ({"optimizer": "adam", "optimizer_args": {"b1": 1.5}}, "optimizer_args['b1']"),
    ({"optimizer": "adam", "optimizer_args": {"eps": 0}}, "optimizer_args['eps']"),
    ({"optimizer": "momentum", "optimizer_args": {"nesterov": 1.0}}, "optimizer_args['nesterov']"),
    ({"optimizer": "momentum", "optimizer_args": "fast"}, "optimizer_args"),
    ({"decay": "sideways", "wd": 1.0}, "decay"),
    ({"weight_decay": 3}, "weight_decay"),
])
def test_optimizer_fields_are_validated(fields: dict, name: str) -> None:
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.make_config(**fields)
    assert err.value.field == name


def test_weight_decay_spelling_gets_a_hint() -> None:
    with pytest.raises(wdlib.ConfigError, match="did you mean 'wd'"):
        wdlib.make_config(weight_decay=3)


def test_optimizer_args_are_hashable_and_sorted() -> None:
    a = wdlib.make_config(optimizer="adam", optimizer_args={"b2": 0.99, "b1": 0.8})
    b = wdlib.make_config(optimizer="adam", optimizer_args=[("b1", 0.8), ("b2", 0.99)])
    assert a == b and hash(a) == hash(b) and a.optimizer_args == (("b1", 0.8), ("b2", 0.99))


@pytest.mark.parametrize("decay", ["decoupled", "independent"])
def test_a_decay_with_wd_zero_is_the_plain_optimizer(decay: str) -> None:
    """wd=0 is a grid's natural first point (wdlib.sweep([0, 1e-3, ...], decay="decoupled")): accepted,
    and the same run as no decay at all, bit for bit."""
    plain = wdlib.train("numpy", optimizer="adam", lr=0.01, num_epochs=10)
    zero = wdlib.train("numpy", optimizer="adam", lr=0.01, num_epochs=10, decay=decay, wd=0)
    assert np.array_equal(plain.params["w"], zero.params["w"])
    assert np.array_equal(plain.test_loss, zero.test_loss)
