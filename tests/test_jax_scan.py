"""The JAX backend's compiled run (wdlib_jax.scan, one lax.scan over the epochs) equals the eager loop:
float64 1e-9 relative (XLA fuses the arithmetic, so only rounding differs; Adam's 1/sqrt(v) amplifies
relative differences by at most ~1/(1 - b1), as in tests/test_optim.py), float32 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import INSTALLED

import wdlib

pytestmark = pytest.mark.skipif("jax" not in INSTALLED, reason="JAX is not installed in this environment")

CASES = [
    {"lambd": 3.0},
    {"penalty": "l1", "lambd": 0.5, "batch_size": 3},  # a short last batch (20 = 6 * 3 + 2)
    {"optimizer": "momentum", "optimizer_args": {"nesterov": True}, "wd": 0.5},
    {"optimizer": "momentum", "optimizer_args": {"dampening": 0.5}, "wd": 0.5, "decay": "decoupled"},
    {"optimizer": "adam", "lr": 0.01, "wd": 0.5, "decay": "decoupled"},
    {"optimizer": "adam", "lr": 0.01, "lambd": 0.5, "model": "mlp", "hidden": (16, 8)},
    {"mode": "concise", "optimizer": "adam", "lr": 0.01, "wd": 0.5, "decay": "decoupled"},
    {"mode": "concise", "optimizer": "momentum", "wd": 0.5, "model": "mlp", "hidden": (8,)},
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fields", CASES, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_compiled_run_equals_eager_loop(fields: dict, dtype: str) -> None:
    eager = wdlib.train("jax", num_epochs=12, dtype=dtype, engine="eager", **fields)
    backend = wdlib.get_backend("jax")
    # engine="auto" keeps L1 on the eager loop (sign(w) flips amplify rounding over long runs), but the
    # compiled path itself reproduces a short L1 run too.
    assert backend.supports_compiled(eager.problem, eager.config) == (eager.config.penalty == "l2")
    train_loss, test_loss, params = backend.fit_compiled(eager.problem, eager.config)
    tol = 1e-9 if dtype == "float64" else 1e-4
    assert train_loss.shape == eager.train_loss.shape == (12,)
    np.testing.assert_allclose(train_loss, eager.train_loss, rtol=tol)
    np.testing.assert_allclose(test_loss, eager.test_loss, rtol=tol)
    for k, p in eager.params.items():
        np.testing.assert_allclose(params[k], p, rtol=tol, atol=tol * np.abs(p).max(), err_msg=k)
    assert not np.allclose(params[next(iter(params))], eager.problem.init[next(iter(params))])


def test_compiled_run_records_every_eval_every_epochs() -> None:
    eager = wdlib.train("jax", num_epochs=12, dtype="float64", engine="eager", lambd=3.0)
    problem = wdlib.Problem(**{**vars(eager.problem), "eval_every": 5})
    eager5 = wdlib.fit("jax", problem, eager.config)
    train_loss, test_loss, params = wdlib.get_backend("jax").fit_compiled(problem, eager.config)
    assert train_loss.shape == (2,)
    np.testing.assert_allclose(test_loss, eager5.test_loss, rtol=1e-9)
    np.testing.assert_allclose(params["w"], eager5.params["w"], rtol=1e-9, atol=1e-12)


def test_a_diverging_run_ends_with_the_parameters_where_the_eager_loop_stops() -> None:
    kw = {"num_epochs": 30, "dtype": "float64", "lambd": 1.0, "lr": 10.0, "on_divergence": "record"}
    eager = wdlib.train("jax", engine="eager", **kw)
    assert eager.diverged and eager.meta["diverged_at_epoch"] < 30
    compiled = wdlib.train("jax", engine="auto", model="mlp", hidden=(4,), **kw)  # eager and compiled: MLP
    eager_mlp = wdlib.train("jax", engine="eager", model="mlp", hidden=(4,), **kw)
    assert compiled.engine == "compiled"
    for a, b in ((wdlib.get_backend("jax").fit_compiled(eager.problem, eager.config), eager),
                 ((compiled.train_loss, compiled.test_loss, compiled.params), eager_mlp)):
        train_loss, _, params = a
        stop = b.meta["diverged_at_epoch"]
        assert stop is not None and not np.isfinite(train_loss[stop - 1])
        assert np.isnan(train_loss[stop:]).all() and np.isnan(a[1][stop:]).all()  # no epochs past it
        for k, p in b.params.items():  # the eager loop's last parameters: NaN/inf where they are
            np.testing.assert_array_equal(np.isfinite(params[k]), np.isfinite(p), err_msg=k)
            finite = np.isfinite(p)
            np.testing.assert_allclose(params[k][finite], p[finite], rtol=1e-6, err_msg=k)


def test_the_compiled_run_is_compiled_once_for_a_sweep_of_lr_lambd_and_wd() -> None:
    from wdlib_jax import scan

    base = {"model": "mlp", "hidden": (8,), "optimizer": "adam", "num_epochs": 4, "dtype": "float64"}
    wdlib.train("jax", lambd=0.5, wd=0.1, lr=0.01, **base)
    before = scan._compiled.cache_info()
    traces = []
    original = scan.make_update

    def counted(*args: object, **kwargs: object) -> object:
        traces.append(1)
        return original(*args, **kwargs)

    scan.make_update = counted
    try:
        runs = [wdlib.train("jax", lambd=lam, wd=wd, lr=lr, **base)
                for lam, wd, lr in ((1.0, 0.1, 0.01), (2.0, 0.2, 0.02), (3.0, 0.3, 0.005))]
    finally:
        scan.make_update = original
    assert all(r.engine == "compiled" for r in runs)
    assert traces == [] and scan._compiled.cache_info().hits == before.hits + 3
    eager = wdlib.train("jax", lambd=3.0, wd=0.3, lr=0.005, engine="eager", **base)
    np.testing.assert_allclose(runs[-1].test_loss, eager.test_loss, rtol=1e-9)


def test_a_malformed_compiled_result_is_refused_before_it_is_kept(monkeypatch) -> None:
    import numpy as np

    from wdlib.errors import BackendResultError

    jax_backend = wdlib.get_backend("jax")
    monkeypatch.setattr(jax_backend, "fit_compiled", lambda problem, config: (np.zeros(2), np.zeros(2), {}))
    with pytest.raises(BackendResultError, match="wrong fit_compiled result"):
        wdlib.train("jax", optimizer="adam", lr=0.01, num_epochs=5)


def test_make_problem_estimates_before_it_allocates() -> None:
    from wdlib.data import make_problem
    from wdlib.errors import ResourceError

    with pytest.raises(ResourceError, match="n_train=1000000000000 is too large"):
        make_problem(wdlib.Config(n_train=10**12, batch_size=1))
