"""The fast paths (engine="fused") give the eager loop's numbers, on every installed backend.

Not bitwise: every fast path runs the matrix-form update of ``wdlib.vectorized`` (the same SGD,
regrouped), so it agrees with the eager path within the cross-backend tolerances of
``tests/test_cross_backend.py``: float64 1e-12 relative on w (against max|w|) and on the test loss,
1e-9 on the training loss; float32 1e-4, and 2e-2 on the training loss (its tail is a cancellation).
"""

from __future__ import annotations

import numpy as np
import pytest
from fused_support import (
    SETTINGS,
    TOL,
    assert_divergence_recorded,
    assert_runs_close,
    compiled_kernel,
    large_data_path,
    set_options,
    use_loop,
)

import wdlib
from wdlib import fastpath, vectorized


@pytest.mark.parametrize("loop", ["scan", "step_matrices", "minibatch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("preset", ["d2l", "gluonbook"])
@pytest.mark.parametrize("setting", SETTINGS, ids=["lambd0", "lambd3", "lambd3-decay_bias"])
def test_fused_equals_eager(backend: str, preset: str, setting: dict, dtype: str, loop: str,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    use_loop(loop, wdlib.make_config(preset, dtype=dtype, seed=1, **setting), monkeypatch)
    eager = wdlib.train(backend, preset, engine="eager", dtype=dtype, seed=1, **setting)
    fused = wdlib.train(backend, preset, engine="fused", dtype=dtype, seed=1, **setting)
    assert (eager.engine, fused.engine) == ("eager", "fused")
    assert_runs_close(fused, eager, dtype)


def test_auto_picks_the_fast_path_where_it_is_exact(backend: str) -> None:
    assert wdlib.train(backend, lambd=3, num_epochs=2).engine == "fused"
    assert wdlib.train(backend, lambd=3, num_epochs=2, engine="eager").engine == "eager"
    # L1's sign(w) flips for weights oscillating around 0: only the eager sequence reproduces it.
    assert wdlib.train(backend, lambd=3, num_epochs=2, penalty="l1").engine == "eager"
    with pytest.raises(wdlib.ConfigError, match="engine"):
        wdlib.train(backend, lambd=3, num_epochs=2, penalty="l1", engine="fused")


def test_supports_fused_only_scratch_numpy_l2() -> None:
    config = wdlib.make_config()
    assert vectorized.supports(config)
    assert not vectorized.supports(config.replace(penalty="l1"))
    assert not vectorized.supports(config.replace(mode="concise", wd=3.0))


@pytest.mark.parametrize("loop", ["scan", "step_matrices", "minibatch"])
def test_short_last_batch(backend: str, loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """n_train not a multiple of batch_size: the last minibatch is short and decays less."""
    kw = {"n_train": 23, "batch_size": 5, "num_epochs": 30, "lambd": 3.0, "dtype": "float64"}
    use_loop(loop, wdlib.make_config(**kw), monkeypatch)
    eager = wdlib.train(backend, engine="eager", **kw)
    fused = wdlib.train(backend, engine="fused", **kw)
    assert_runs_close(fused, eager, "float64")


@pytest.mark.parametrize(("preset", "dtype"), [("d2l", "float64"), ("gluonbook", "float32")])
def test_primal_form(backend: str, preset: str, dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chapter's sizes use the dual form (20 examples < 200 features); the primal one as well."""
    set_options(monkeypatch, dual_ratio=0)
    problem = wdlib.make_problem(wdlib.make_config(preset))
    plan = vectorized.make_plan(problem, wdlib.make_config(preset))
    assert plan.layout == "primal" and plan.basis is None
    for setting in SETTINGS:
        eager = wdlib.train(backend, preset, engine="eager", dtype=dtype, **setting)
        fused = wdlib.train(backend, preset, engine="fused", dtype=dtype, **setting)
        assert_runs_close(fused, eager, dtype)


@pytest.mark.parametrize("path", ["small", "large"])
def test_divergence_is_recorded_like_the_eager_loop(backend: str, path: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "large":
        large_data_path(monkeypatch)
    assert_divergence_recorded(backend)


def test_numpy_compiled_kernel_records_divergence(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's inf and NaN come out as they are (no fastmath "no NaN" assumption)."""
    large_data_path(monkeypatch)
    calls = compiled_kernel(monkeypatch)
    assert_divergence_recorded("numpy")
    assert calls


def test_jax_float64_run_leaves_x64_off() -> None:
    """(Compiling once per shape is tests/test_jax_direct.py's.)"""
    if "jax" not in wdlib.installed_backends():
        pytest.skip("jax is not installed")
    wdlib.train("jax", lambd=3.0, num_epochs=3, dtype="float64")
    import jax
    import jax.numpy as jnp

    assert not jax.config.jax_enable_x64  # x64 was on for that run only
    assert jnp.zeros(1).dtype == jnp.float32


@pytest.mark.parametrize("loop", ["step_matrices", "minibatch"])
def test_torch_without_torchscript(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PyTorch fast path runs its epochs in TorchScript, or in the same loop in Python."""
    if "torch" not in wdlib.installed_backends():
        pytest.skip("torch is not installed")
    from wdlib_torch import fused

    use_loop(loop, wdlib.make_config(lambd=3.0, dtype="float64"), monkeypatch)
    compiled = {"step_matrices": "scripted_steps", "minibatch": "scripted_epochs"}[loop]
    assert getattr(fused, compiled)() is not None
    scripted = wdlib.train("torch", lambd=3.0, dtype="float64", engine="fused")
    monkeypatch.setattr(fused, compiled, lambda: None)
    plain = wdlib.train("torch", lambd=3.0, dtype="float64", engine="fused")
    eager = wdlib.train("torch", lambd=3.0, dtype="float64", engine="eager")
    assert np.array_equal(plain.params["w"], scripted.params["w"])
    assert_runs_close(plain, eager, "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("preset", ["d2l", "gluonbook"])
def test_eager_path_still_equals_the_numpy_eager_reference(backend: str, preset: str, dtype: str) -> None:
    """engine="auto" now picks the fast path, so the cross-backend tests exercise it; this keeps the
    eager (autodiff-per-step) path of every backend checked against the NumPy eager float64 run."""
    ref = wdlib.train("numpy", preset, lambd=3.0, seed=1, dtype="float64", engine="eager")
    run = wdlib.train(backend, preset, lambd=3.0, seed=1, dtype=dtype, engine="eager")
    assert run.engine == "eager"
    tol, train_tol = TOL[dtype]
    np.testing.assert_allclose(run.test_loss, ref.test_loss, rtol=tol, atol=0)
    np.testing.assert_allclose(run.train_loss, ref.train_loss, rtol=train_tol, atol=0)
    atol = tol * np.abs(ref.params["w"]).max()
    for name in ("w", "b"):
        np.testing.assert_allclose(run.params[name], ref.params[name], rtol=tol, atol=atol, err_msg=name)


def test_fast_path_runs_on_one_blas_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fused run holds NumPy's BLAS at one thread (tiny or cache-sized products: a second
    thread only costs) and gives it back afterwards; overlapping runs in two threads share the limit,
    lifted when the last one ends (BLAS has one thread setting per process)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:  # NumPy's BLAS (a framework may have loaded its own too)
        return {lib["num_threads"] for lib in threadpool_info()
                if lib["user_api"] == "blas" and "numpy" in lib["filepath"]}

    seen = []
    real = wdlib.get_backend("numpy").fit_plan

    def spy(plan: vectorized.Plan) -> vectorized.Result:
        seen.append(blas_threads())
        return real(plan)

    monkeypatch.setattr(wdlib.get_backend("numpy"), "fit_plan", spy)
    with threadpool_limits(2, user_api="blas"):  # as on a machine with two cores or more
        before = blas_threads()
        assert len(before) == 1
        wdlib.train("numpy", lambd=3.0, num_epochs=2)
        wdlib.train_lambdas("numpy", [0.0, 3.0], num_epochs=2)
        assert seen == [{1}, {1}] and blas_threads() == before
        import threading

        inside, leave = threading.Event(), threading.Event()

        def hold() -> None:
            with fastpath.one_blas_thread():
                inside.set()
                leave.wait(10)

        other = threading.Thread(target=hold)
        other.start()
        inside.wait(10)
        with fastpath.one_blas_thread():
            assert blas_threads() == {1}
        assert blas_threads() == {1}  # the other thread's run still holds it
        leave.set()
        other.join()
        assert blas_threads() == before
