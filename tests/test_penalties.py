"""Penalties: elastic net, masks on named parameters, and a user's own penalty, on every backend.

Float64 whole runs against NumPy: the L1 part's sign(w) flips for weights oscillating around 0, which
turns rounding differences into O(lr λ) ones (see wdlib.vectorized), so these runs are short (5 epochs)
and compared at 1e-9; the L2-only custom penalty at the cross-backend 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

import wdlib
from wdlib.model import PENALTIES, ElasticNet, Objective, l1_penalty, l2_penalty


class Quartic:
    """A user's penalty: sum(w^4) / 4, gradient w^3."""

    name = "quartic"

    def __call__(self, ops, w):
        return (w**4).sum() / 4

    def grad(self, ops, w):
        return w**3


QUARTIC = Quartic()


def test_elastic_net_mixes_l1_and_l2() -> None:
    ops = wdlib.get_backend("numpy")
    w = np.array([[1.5], [-2.0], [0.0]])
    net = ElasticNet(0.25)
    assert net(ops, w) == pytest.approx(0.25 * l1_penalty(ops, w) + 0.75 * l2_penalty(ops, w))
    np.testing.assert_allclose(net.grad(ops, w), 0.25 * np.sign(w) + 0.75 * w)
    assert ElasticNet(1.0)(ops, w) == l1_penalty(ops, w) and ElasticNet(0.0)(ops, w) == l2_penalty(ops, w)


@pytest.mark.parametrize("penalty", [ElasticNet(0.3), QUARTIC])
def test_penalty_gradient_matches_autodiff(backend: str, penalty) -> None:
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((5, 7)), rng.standard_normal((5, 1))
    params = {"w": rng.standard_normal((7, 1)), "b": rng.standard_normal(1)}
    objective = Objective(0.8, penalty, decay_bias=True)
    expected = objective.gradient(wdlib.get_backend("numpy"), params, X, y)
    impl = wdlib.get_backend(backend)
    with impl.context("float64"):
        arr = lambda a: impl.asarray(a, "float64")  # noqa: E731
        got = impl.grad(objective, {k: arr(v) for k, v in params.items()}, arr(X), arr(y))
    for k in params:
        np.testing.assert_allclose(impl.to_numpy(got[k]), expected[k], rtol=1e-12, atol=1e-13, err_msg=k)


def test_elastic_net_run_equals_numpy_reference(backend: str) -> None:
    common = {"penalty": "elastic_net", "l1_ratio": 0.4, "lambd": 2.0, "num_epochs": 5, "dtype": "float64"}
    ref = wdlib.train("numpy", **common)
    run = wdlib.train(backend, **common)
    assert run.engine == "eager"  # sign(w) penalties stay on the eager loop on every backend
    np.testing.assert_allclose(run.test_loss, ref.test_loss, rtol=1e-9)
    np.testing.assert_allclose(run.params["w"], ref.params["w"], rtol=1e-9, atol=1e-9)


def test_user_penalty_by_object_and_by_name(backend: str) -> None:
    common = {"lambd": 0.5, "num_epochs": 10, "dtype": "float64"}
    by_object = wdlib.train(backend, penalty=QUARTIC, **common)
    assert by_object.config.penalty == "quartic" and PENALTIES["quartic"] is QUARTIC
    by_name = wdlib.train(backend, penalty="quartic", **common)
    ref = wdlib.train("numpy", penalty="quartic", **common)
    np.testing.assert_array_equal(by_object.params["w"], by_name.params["w"])
    np.testing.assert_allclose(by_name.params["w"], ref.params["w"], rtol=1e-12,
                               atol=1e-12 * np.abs(ref.params["w"]).max())
    plain = wdlib.train("numpy", **{**common, "lambd": 0.0})
    assert not np.allclose(ref.params["w"], plain.params["w"])


def test_builtin_penalty_names_cannot_be_taken() -> None:
    class Fake(Quartic):
        name = "l2"

    with pytest.raises(wdlib.ConfigError, match="not built in"):
        wdlib.make_config(penalty=Fake())
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.make_config(penalty=object())
    assert err.value.field == "penalty"


def test_penalize_names_the_parameters() -> None:
    common = {"lambd": 3.0, "num_epochs": 20, "dtype": "float64", "engine": "eager"}
    default = wdlib.train("numpy", **common)
    named = wdlib.train("numpy", penalize=("w",), **common)
    np.testing.assert_array_equal(default.params["w"], named.params["w"])
    bias_too = wdlib.train("numpy", decay_bias=True, **common)
    both = wdlib.train("numpy", penalize=("b", "w"), **common)
    np.testing.assert_array_equal(bias_too.params["b"], both.params["b"])
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.make_config(penalize=("W1",))
    assert err.value.field == "penalize"


def test_mlp_penalty_on_chosen_layers(backend: str) -> None:
    common = {"model": "mlp", "hidden": (8,), "lambd": 1.0, "num_epochs": 10, "dtype": "float64"}
    first = wdlib.train(backend, penalize=("W1",), **common)
    ref = wdlib.train("numpy", penalize=("W1",), **common)
    for k in ref.params:
        np.testing.assert_allclose(first.params[k], ref.params[k], rtol=1e-9, atol=1e-12, err_msg=k)
    every = wdlib.train("numpy", **common)
    assert not np.allclose(every.params["W2"], ref.params["W2"])


def test_l1_ratio_only_with_elastic_net() -> None:
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.make_config(l1_ratio=0.2)
    assert err.value.field == "l1_ratio"
    with pytest.raises(wdlib.ConfigError):
        wdlib.make_config(penalty="elastic_net", l1_ratio=1.5)


def test_user_penalty_reaches_spawned_sweep_workers(tmp_path) -> None:
    """A spawned worker imports wdlib afresh: the sweep sends the penalty object with the task."""
    table = wdlib.sweep([0.5], backends=["numpy"], penalty=QUARTIC, num_epochs=5, dtype="float64",
                        store=tmp_path / "runs.sqlite", workers=1)
    alone = wdlib.train("numpy", penalty=QUARTIC, lambd=0.5, num_epochs=5, dtype="float64")
    assert table.computed == 1
    assert table.rows[0]["test_loss"] == float(alone.test_loss[-1])


class Scaled:
    """A penalty with a setting: runs are stored under its name, so each setting needs its own name."""

    name = "scaled"

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __call__(self, ops, w):
        return self.factor * (w * w).sum() / 2

    def grad(self, ops, w):
        return self.factor * w


def test_a_name_is_the_last_penalty_registered_under_it(tmp_path) -> None:
    """A second object under a taken name with other settings replaces the first, and its runs are
    not the first one's stored runs; the same settings again (a notebook cell rerun) find them."""
    store = tmp_path / "p.sqlite"
    first = wdlib.sweep([1.0], backends=["numpy"], penalty=Scaled(1.0), num_epochs=5, store=store)
    other = wdlib.sweep([1.0], backends=["numpy"], penalty=Scaled(10.0), num_epochs=5, store=store)
    again = wdlib.sweep([1.0], backends=["numpy"], penalty=Scaled(1.0), num_epochs=5, store=store)
    assert (first.computed, other.computed, again.computed) == (1, 1, 0)
    assert other.rows[0]["test_loss"] != first.rows[0]["test_loss"]
    assert again.rows[0]["test_loss"] == first.rows[0]["test_loss"]
    with pytest.raises(wdlib.ConfigError, match="one penalty object per name") as err:
        wdlib.sweep([1.0], backends=["numpy"], penalty=[Scaled(1.0), Scaled(2.0)], store=store)
    assert err.value.field == "penalty" and len(wdlib.Store(store)) == 2


class NoGrad:
    name = "no_grad"

    def __call__(self, ops, w):
        return (w * w).sum()


class NotSummed(NoGrad):
    name = "not_summed"

    def __call__(self, ops, w):
        return w * w

    def grad(self, ops, w):
        return 2 * w


class ScalarGrad(NotSummed):
    name = "scalar_grad"

    def __call__(self, ops, w):
        return (w * w).sum()

    def grad(self, ops, w):
        return (2 * w).sum()


def test_a_penalty_returning_wrong_shapes_is_refused_before_training(backend: str) -> None:
    """A penalty that is not a sum trained silently on NumPy and failed inside PyTorch."""
    wrong = r"returns a scalar.*on 'w' it returned shape \(200, 1\)"
    with pytest.raises(wdlib.ConfigError, match=wrong) as err:
        wdlib.train(backend, penalty=NotSummed(), lambd=1.0, num_epochs=2)
    assert err.value.field == "penalty"
    with pytest.raises(wdlib.ConfigError, match=r"an instance of the class: penalty=NoGrad\(\.\.\.\)"):
        wdlib.train(backend, penalty=NoGrad, lambd=1.0, num_epochs=2)


def test_numpy_needs_and_checks_a_penalty_gradient() -> None:
    with pytest.raises(wdlib.ConfigError, match="a penalty with a grad") as err:
        wdlib.train("numpy", penalty=NoGrad(), lambd=1.0, num_epochs=2)
    assert err.value.field == "penalty"
    with pytest.raises(wdlib.ConfigError, match=r"grad\(ops, w\) has w's shape.*returned shape \(\)"):
        wdlib.train("numpy", penalty=ScalarGrad(), lambd=1.0, num_epochs=2)
    assert wdlib.train("torch", penalty=NoGrad(), lambd=1.0, num_epochs=2).engine == "eager"  # autodiff
