"""The model interface: the MLP and the new ops on every backend, against NumPy float64.

Tolerances: a whole MLP run in float64 differs between backends only by the summation order inside
``dot`` (~1e-16 per step); a ReLU unit whose pre-activation lies within rounding of 0 could switch,
but none does for these seeds. So rtol 1e-9 on every parameter and on the test-loss curve (the issue's
bound), 1e-4 in float32, where inputs and every step are rounded to float32.
"""

from __future__ import annotations

import numpy as np
import pytest
from numeric import finite_difference_grads

import wdlib
from wdlib.model import MLP, Linear, Objective, decay_mask, l1_penalty, l2_penalty

MLP_RUN = {"model": "mlp", "hidden": (16, 8), "num_epochs": 20, "lambd": 0.01}


def _as(impl: wdlib.Backend, tree: dict, dtype: str = "float64") -> dict:
    return {k: impl.asarray(v, dtype) for k, v in tree.items()}


def test_new_ops_match_numpy(backend: str) -> None:
    impl = wdlib.get_backend(backend)
    a = np.array([[-2.0, -0.0, 0.0, 0.5, 3.0]])
    with impl.context("float64"):
        x = impl.asarray(a, "float64")
        np.testing.assert_array_equal(impl.to_numpy(impl.relu(x)), np.maximum(a, 0))
        # sqrt within an ulp: PyTorch 2.13's CPU sqrt is not correctly rounded on every machine
        # (sqrt(0.5) one ulp low on an AVX-512 Xeon, at every ATen CPU capability); NumPy's is
        np.testing.assert_allclose(impl.to_numpy(impl.sqrt(impl.relu(x))), np.sqrt(np.maximum(a, 0)),
                                   rtol=2.5e-16, atol=0)
        zeros = impl.to_numpy(impl.zeros_like(x))
        assert zeros.shape == a.shape and zeros.dtype == np.float64 and not zeros.any()


def test_mlp_backward_matches_finite_differences() -> None:
    rng = np.random.default_rng(5)
    model = MLP((4, 3))
    params = model.init(rng, 6)
    X, y = rng.standard_normal((7, 6)), rng.standard_normal((7, 1))
    ops = wdlib.get_backend("numpy")
    for penalty in (l2_penalty, l1_penalty):
        objective = Objective(0.3, penalty, decay_bias=True, model=model)
        grads = objective.gradient(ops, params, X, y)
        assert list(grads) == list(params)
        numeric = finite_difference_grads(lambda p: objective(ops, p, X, y).sum(), params)  # noqa: B023
        for name in params:
            np.testing.assert_allclose(grads[name], numeric[name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_mlp_autodiff_gradient_matches_backward(backend: str) -> None:
    rng = np.random.default_rng(9)
    model = MLP((5,))
    params = model.init(rng, 4)
    X, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 1))
    objective = Objective(0.5, l2_penalty, model=model)
    expected = objective.gradient(wdlib.get_backend("numpy"), params, X, y)
    impl = wdlib.get_backend(backend)
    with impl.context("float64"):
        got = impl.grad(objective, _as(impl, params), impl.asarray(X, "float64"), impl.asarray(y, "float64"))
        got = {k: impl.to_numpy(v) for k, v in got.items()}
    for name in params:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-9), ("float32", 1e-4)])
def test_mlp_run_equals_numpy_reference(backend: str, dtype: str, rtol: float) -> None:
    ref = wdlib.train("numpy", dtype="float64", **MLP_RUN)
    run = wdlib.train(backend, dtype=dtype, **MLP_RUN)
    assert run.engine == ("compiled" if backend == "jax" else "eager")
    assert sorted(run.params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    np.testing.assert_allclose(run.test_loss, ref.test_loss, rtol=rtol)
    for name, value in ref.params.items():
        scale = np.abs(value).max() or 1.0
        np.testing.assert_allclose(run.params[name], value, rtol=rtol, atol=rtol * scale, err_msg=name)
    assert run.w_norm == pytest.approx(ref.w_norm, rel=rtol)


def test_mlp_weight_decay_shrinks_weights_not_biases() -> None:
    free = wdlib.train("numpy", model="mlp", hidden=(16,), num_epochs=30, dtype="float64")
    decayed = wdlib.train("numpy", model="mlp", hidden=(16,), num_epochs=30, dtype="float64", lambd=3)
    assert decayed.w_norm < 0.5 * free.w_norm
    assert decay_mask(decayed.params) == {"W1": True, "b1": False, "W2": True, "b2": False}


def test_linear_model_is_the_books_linreg() -> None:
    rng = np.random.default_rng(0)
    params = Linear().init(rng, 3)
    X = rng.standard_normal((4, 3))
    ops = wdlib.get_backend("numpy")
    expected = wdlib.linreg(ops, X, params["w"], params["b"])
    np.testing.assert_array_equal(Linear().apply(ops, params, X), expected)


def test_mlp_problem_keeps_the_data_of_the_linear_one() -> None:
    linear = wdlib.make_problem(wdlib.make_config())
    mlp = wdlib.make_problem(wdlib.make_config(model="mlp"))
    np.testing.assert_array_equal(linear.X_train, mlp.X_train)
    np.testing.assert_array_equal(linear.batch_order, mlp.batch_order)
    assert mlp.init["W1"].shape == (200, 256) and mlp.init["W2"].shape == (256, 1)


@pytest.mark.parametrize(("fields", "name"), [
    ({"hidden": (8,)}, "hidden"),
    ({"model": "mlp", "hidden": (0,)}, "hidden"),
    ({"model": "cnn"}, "model"),
    ({"model": "mlp", "penalize": ("w",)}, "penalize"),
    ({"model": "mlp", "rng": "native"}, "model"),
])
def test_model_fields_are_validated(fields: dict, name: str) -> None:
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.make_config(**fields)
    assert err.value.field == name


def test_fused_engine_is_refused_for_the_mlp() -> None:
    with pytest.raises(wdlib.ConfigError, match="fused"):
        wdlib.train("numpy", model="mlp", engine="fused")
