"""The compiled run of the MLP by SGD with its first layer in dual form (wdlib_jax.dualmlp) equals the
eager loop (float64 1e-9, float32 1e-4, as tests/test_jax_scan.py) and the generic compiled run, and
is taken only where it applies."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import INSTALLED
from fused_support import set_options

import wdlib

pytestmark = pytest.mark.skipif("jax" not in INSTALLED, reason="JAX is not installed in this environment")

MLP = {"model": "mlp", "hidden": (32,), "lambd": 0.5, "num_epochs": 12}
CASES = [
    {},
    {"decay_bias": True},
    {"lambd": 0.0},
    {"hidden": (16, 8)},
    {"batch_size": 3},  # a short last batch (20 = 6 * 3 + 2)
    {"penalize": ("W2",)},  # the first layer not penalized
    {"penalize": ("W1", "b2")},
]


def _compiled(config: wdlib.Config) -> tuple:
    from wdlib_jax import dualmlp

    problem = wdlib.make_problem(config)
    calls = []
    original = dualmlp.compiled_for
    try:
        dualmlp.compiled_for = lambda *a: calls.append(1) or original(*a)
        out = wdlib.get_backend("jax").fit_compiled(problem, config)
    finally:
        dualmlp.compiled_for = original
    return out, bool(calls)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fields", CASES, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()) or "d2l")
def test_dual_mlp_equals_the_eager_loop(fields: dict, dtype: str) -> None:
    eager = wdlib.train("jax", engine="eager", dtype=dtype, **{**MLP, **fields})
    (train_loss, test_loss, params), dual = _compiled(eager.config)
    assert dual
    tol = 1e-9 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(train_loss, eager.train_loss, rtol=tol)
    np.testing.assert_allclose(test_loss, eager.test_loss, rtol=tol)
    assert list(params) == list(eager.params)
    for k, p in eager.params.items():
        assert params[k].shape == p.shape and params[k].dtype == p.dtype
        np.testing.assert_allclose(params[k], p, rtol=tol, atol=tol * np.abs(p).max(), err_msg=k)
        assert not np.allclose(params[k], eager.problem.init[k]), k


def test_dual_mlp_equals_the_generic_compiled_run(monkeypatch: pytest.MonkeyPatch) -> None:
    config = wdlib.make_config(backend="jax", dtype="float64", engine="auto", **MLP)
    (dual_train, dual_test, dual_params), dual = _compiled(config)
    set_options(monkeypatch, dual_ratio=0)  # the generic compiled run (jax.grad of the whole MLP)
    (train, test, params), generic_dual = _compiled(config)
    assert dual and not generic_dual
    np.testing.assert_allclose(dual_test, test, rtol=1e-12)
    np.testing.assert_allclose(dual_train, train, rtol=1e-12)
    for k, p in params.items():
        np.testing.assert_allclose(dual_params[k], p, rtol=1e-12, atol=1e-12 * np.abs(p).max(), err_msg=k)


@pytest.mark.parametrize("fields", [{"optimizer": "momentum"}, {"wd": 0.1},
                                    {"mode": "concise", "lambd": 0.0, "wd": 0.5},
                                    {"model": "linear", "hidden": ()}, {"n_train": 150}],
                         ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_applies_only_to_the_mlp_by_sgd_on_few_examples(fields: dict) -> None:
    from wdlib_jax import dualmlp

    config = wdlib.make_config(backend="jax", **{**MLP, **fields})
    problem = wdlib.make_problem(config)
    assert not dualmlp.applies(problem, config)
    assert dualmlp.applies(wdlib.make_problem(wdlib.make_config(backend="jax", **MLP)),
                           wdlib.make_config(backend="jax", **MLP))


def test_a_diverging_dual_run_stops_where_the_eager_loop_does() -> None:
    kw = {**MLP, "num_epochs": 30, "dtype": "float64", "lr": 10.0, "on_divergence": "record"}
    eager = wdlib.train("jax", engine="eager", **kw)
    (train_loss, test_loss, params), dual = _compiled(eager.config)
    stop = eager.meta["diverged_at_epoch"]
    assert dual and stop is not None and stop < 30
    assert not np.isfinite(train_loss[stop - 1]) and np.isnan(train_loss[stop:]).all()
    assert np.isnan(test_loss[stop:]).all()
    for k, p in eager.params.items():
        np.testing.assert_array_equal(np.isfinite(params[k]), np.isfinite(p), err_msg=k)


def test_a_sweep_of_lr_and_lambd_compiles_once() -> None:
    from wdlib_jax import dualmlp

    base = {**MLP, "num_epochs": 4, "dtype": "float64"}
    wdlib.train("jax", lr=0.01, **{**base, "lambd": 0.5})
    run = dualmlp.compiled((32,), ("W1", "W2"), 5, 1)
    before, traced = dualmlp.compiled.cache_info(), run._cache_size()
    runs = [wdlib.train("jax", lr=lr, **{**base, "lambd": lam}) for lam, lr in ((1.0, 0.02), (2.0, 0.005))]
    assert all(r.engine == "compiled" for r in runs)
    after = dualmlp.compiled.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 2
    assert run._cache_size() == traced  # λ and lr are arguments: no new trace
