"""Each backend's autodiff gradient equals the hand-derived one (the NumPy backend's)."""

from __future__ import annotations

import numpy as np
import pytest
from numeric import finite_difference_grads

import wdlib
from wdlib.model import PENALTIES, Objective


@pytest.mark.parametrize("penalty", ["l1", "l2"])
@pytest.mark.parametrize("decay_bias", [False, True])
def test_gradient_matches_analytic(backend: str, penalty: str, decay_bias: bool) -> None:
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((5, 200)), rng.standard_normal((5, 1))
    params = {"w": rng.standard_normal((200, 1)), "b": rng.standard_normal(1)}
    objective = Objective(lambd=2.5, penalty=PENALTIES[penalty], decay_bias=decay_bias)
    expected = objective.gradient(wdlib.get_backend("numpy"), params, X, y)

    impl = wdlib.get_backend(backend)
    with impl.context("float64"):
        as_array = lambda a: impl.asarray(a, "float64")  # noqa: E731
        got = impl.grad(objective, {k: as_array(v) for k, v in params.items()}, as_array(X), as_array(y))
        got = {k: impl.to_numpy(v) for k, v in got.items()}
    for name in ("w", "b"):
        assert got[name].shape == params[name].shape
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_analytic_gradient_matches_finite_differences() -> None:
    """The reference itself: central differences of the summed objective, in float64."""
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((4, 6)), rng.standard_normal((4, 1))
    params = {"w": rng.standard_normal((6, 1)), "b": rng.standard_normal(1)}
    ops = wdlib.get_backend("numpy")
    for penalty in ("l1", "l2"):
        objective = Objective(lambd=0.7, penalty=PENALTIES[penalty], decay_bias=True)
        grads = objective.gradient(ops, params, X, y)
        numeric = finite_difference_grads(lambda p: objective(ops, p, X, y).sum(), params)  # noqa: B023
        for name in params:
            np.testing.assert_allclose(grads[name], numeric[name], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("settings", [
    {"penalty": "l2"}, {"penalty": "l1", "decay_bias": True}, {"penalty": "elastic_net"},
    {"penalty": "l2", "penalize": ("W2", "b1")},
])
def test_prepared_mlp_gradient_matches_the_hand_derived_one(backend: str, settings: dict) -> None:
    """``make_grad`` is what the eager loop calls (PyTorch adds an MLP's penalty gradient in closed form
    rather than through autograd): the hand-derived gradient of the whole objective, penalty included."""
    from wdlib.model import MLP, make_penalty

    rng = np.random.default_rng(11)
    model = MLP((6, 4))
    params = model.init(rng, 9)
    X, y = rng.standard_normal((5, 9)), rng.standard_normal((5, 1))
    objective = Objective(lambd=0.8, penalty=make_penalty(settings["penalty"], 0.3), model=model,
                          decay_bias=settings.get("decay_bias", False), penalize=settings.get("penalize", ()))
    expected = objective.gradient(wdlib.get_backend("numpy"), params, X, y)
    impl = wdlib.get_backend(backend)
    with impl.context("float64"):
        as_array = lambda a: impl.asarray(a, "float64")  # noqa: E731
        got = impl.make_grad(objective)({k: as_array(v) for k, v in params.items()}, as_array(X), as_array(y))
        got = {k: impl.to_numpy(v) for k, v in got.items()}
    assert sorted(got) == sorted(params)  # JAX's dict pytrees come back in sorted order
    for name in params:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, atol=1e-12, err_msg=name)
