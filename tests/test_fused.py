"""The fast paths (engine="fused") give the eager loop's numbers, on every installed backend.

Not bitwise: every fast path runs the matrix-form update of ``wdlib.vectorized`` (the same SGD,
regrouped), so it agrees with the eager path within the cross-backend tolerances of
``tests/test_cross_backend.py``: float64 1e-12 relative on w (against max|w|) and on the test loss,
1e-9 on the training loss; float32 1e-4, and 2e-2 on the training loss (its tail is a cancellation).
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import numpy as np
import pytest

import wdlib
from wdlib import fastpath, large, vectorized

TOL = {"float64": (1e-12, 1e-9), "float32": (1e-4, 2e-2)}
SETTINGS = [
    {"lambd": 0.0},
    {"lambd": 3.0},
    {"lambd": 3.0, "decay_bias": True},
]


def assert_runs_close(a: wdlib.Run, b: wdlib.Run, dtype: str) -> None:
    tol, train_tol = TOL[dtype]
    assert a.train_loss.shape == b.train_loss.shape
    np.testing.assert_allclose(a.test_loss, b.test_loss, rtol=tol, atol=0, err_msg="test loss")
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=train_tol, atol=0, err_msg="train loss")
    atol = tol * np.abs(b.params["w"]).max()
    for name in ("w", "b"):
        assert a.params[name].shape == b.params[name].shape
        assert a.params[name].dtype == b.params[name].dtype == np.dtype(dtype)
        np.testing.assert_allclose(a.params[name], b.params[name], rtol=tol, atol=atol, err_msg=name)


def set_options(monkeypatch: pytest.MonkeyPatch, **changes: object) -> None:
    """The fast-path options (wdlib.fastpath.OPTIONS) changed for one test."""
    monkeypatch.setattr(fastpath, "OPTIONS", fastpath.OPTIONS.replace(**changes))


def use_loop(loop: str, config: wdlib.Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small one-column runs train with one matrix per minibatch ("step_matrices"); "minibatch"
    turns that off, so the two products and update per minibatch of every other run are tested too."""
    if loop == "minibatch":
        set_options(monkeypatch, step_matrix_max_q=0)
    plan = vectorized.make_plan(wdlib.make_problem(config), config)
    assert plan.strategy == {"step_matrices": "step_matrices", "minibatch": "minibatches"}[loop]


@pytest.mark.parametrize("loop", ["step_matrices", "minibatch"])
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


@pytest.mark.parametrize("loop", ["step_matrices", "minibatch"])
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


def test_large_data_code_path(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Primal form, minibatches gathered block by block (2 rows: 3 blocks per minibatch)."""
    large_data_path(monkeypatch)
    set_options(monkeypatch, eval_chunk_bytes=3 * 8 * (202 + 20 + 100))  # 3 epochs a chunk
    for dtype in ("float64", "float32"):
        kw = {"lambd": 3.0, "dtype": dtype, "num_epochs": 10, "decay_bias": True}
        eager = wdlib.train(backend, engine="eager", **kw)
        fused = wdlib.train(backend, engine="fused", **kw)
        assert_runs_close(fused, eager, dtype)


@pytest.mark.parametrize("name", [b for b in ("numpy", "torch") if b in wdlib.installed_backends()])
def test_large_data_path_never_copies_x(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """NumPy and PyTorch train large data on the problem's own X: no [X, 1, -y] copy is made."""
    set_options(monkeypatch, gather_bytes=0, dual_ratio=0)
    config = wdlib.make_config(backend=name, lambd=3.0, num_epochs=3)
    problem = wdlib.make_problem(config)
    plan = vectorized.make_plan(problem, config)
    assert (plan.layout, plan.strategy) == ("primal", "blocks")
    assert plan.X_train is problem.X_train and plan.U_train is None
    train, test, params = wdlib.get_backend(name).fit_plan(plan)
    assert "Z_train" not in vars(plan)  # the lazily made augmented copy was never asked for
    expected = wdlib.fit(wdlib.get_backend("numpy"), problem, config.replace(engine="eager", backend="numpy"))
    np.testing.assert_allclose(test[0], expected.test_loss, rtol=1e-4)
    np.testing.assert_allclose(train[0], expected.train_loss, rtol=2e-2)
    w = expected.params["w"]
    np.testing.assert_allclose(params["w"][0], w, rtol=1e-4, atol=1e-4 * np.abs(w).max())


def large_data_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send the chapter's small runs down the large-data path (primal form, minibatches in blocks)."""
    set_options(monkeypatch, gather_bytes=0, dual_ratio=0, block_bytes=2 * 8 * 202)


def kernel_module() -> Any:
    """``wdlib_numpy.kernel`` (the tests using it are skipped where numba, an optional extra, is not
    installed; both CI environments have it)."""
    pytest.importorskip("numba", reason="numba is optional: pip install wdlib-numpy[numba]")
    from wdlib_numpy import kernel

    return kernel


def compiled_kernel(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The NumPy backend's large-data runs on its compiled kernel (numba), whatever their size (the
    tests' runs are far below KERNEL_MIN_BYTES). Returns a list counting the kernel's calls."""
    kernel = kernel_module()
    set_options(monkeypatch, kernel_min_bytes=0)
    calls = []
    original = kernel.KernelOps.minibatch

    def counted(*args: object) -> None:
        calls.append(1)
        original(*args)

    monkeypatch.setattr(kernel.KernelOps, "minibatch", counted)
    return calls


LARGE_PATHS = [*(b for b in ("numpy", "torch") if b in wdlib.installed_backends()), "numpy-kernel"]


def use_large_path(path: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The large-data path of backend ``path`` ("numpy-kernel": NumPy's compiled kernel); the backend."""
    large_data_path(monkeypatch)
    if path == "numpy-kernel":
        compiled_kernel(monkeypatch)
    return path.split("-")[0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("n_train", "batch_size"), [(20, 5), (23, 11), (40, 40)])
@pytest.mark.parametrize("setting", SETTINGS, ids=["lambd0", "lambd3", "lambd3-decay_bias"])
def test_numpy_compiled_kernel_equals_eager(setting: dict, n_train: int, batch_size: int, dtype: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole path on the kernel: minibatches of 5, 11 and 40 rows in two parts of whole 4-row
    groups (4 + 1, 8 + 3, 20 + 20), short last batch included, against the eager loop."""
    large_data_path(monkeypatch)
    calls = compiled_kernel(monkeypatch)
    kw = {"n_train": n_train, "batch_size": batch_size, "num_epochs": 10, "dtype": dtype, **setting}
    fused = wdlib.train("numpy", engine="fused", **kw)
    minibatches = 10 * -(-n_train // batch_size)
    assert minibatches <= len(calls) <= 2 * minibatches  # every minibatch, in one or two parts
    assert_runs_close(fused, wdlib.train("numpy", engine="eager", **kw), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numpy_compiled_kernel_computes_a_minibatch_part(dtype: str) -> None:
    """``minibatch_rows`` against NumPy: odd widths, 0 to 9 rows (groups of four and every tail)."""
    minibatch_rows = kernel_module().minibatch_rows

    rng = np.random.default_rng(0)
    tol = 1e-12 if dtype == "float64" else 1e-5
    for p in (1, 3, 37, 201):
        X, w, w_prev = rng.standard_normal((12, p)), rng.standard_normal(p), rng.standard_normal(p)
        X, w, w_prev = (a.astype(dtype) for a in (X, w, w_prev))
        for m in range(10):
            rows, c = rng.permutation(12)[:m], rng.standard_normal(m).astype(dtype)
            r, previous, G = np.full(m, np.nan, dtype), np.full(m, np.nan, dtype), np.full(p, np.nan, dtype)
            minibatch_rows(X, rows, w, w_prev, c, r, previous, G)
            Xb = X[rows].astype(np.float64)
            expected_r = Xb @ w + c
            scale = (np.abs(Xb).sum(axis=1) * np.abs(np.r_[w, w_prev]).max() + np.abs(c)).max(initial=1)
            np.testing.assert_allclose(r, expected_r, rtol=0, atol=tol * scale)
            np.testing.assert_allclose(previous, Xb @ w_prev, rtol=0, atol=tol * scale)
            np.testing.assert_allclose(G, Xb.T @ r.astype(np.float64), rtol=0,
                                       atol=tol * (np.abs(Xb).T @ np.abs(r) + 1).max())


def test_numpy_compiled_kernel_refuses_several_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """KernelOps does one column; handed a λ sweep it says so instead of training only the first."""
    KernelOps = kernel_module().KernelOps

    large_data_path(monkeypatch)
    config = wdlib.make_config(num_epochs=2)
    sweep = vectorized.make_plan(wdlib.make_problem(config), config, lambdas=[0.0, 3.0])
    with pytest.raises(ValueError, match="one column"):
        large.fit_large(sweep, KernelOps())


def test_numpy_compiled_kernel_only_where_it_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    """One column and at least KERNEL_MIN_BYTES read: the kernel; λ sweeps, short runs, or no
    numba: BLAS on blocks (None)."""
    from wdlib_numpy import fused

    large_data_path(monkeypatch)
    config = wdlib.make_config(lambd=3.0, num_epochs=4)
    problem = wdlib.make_problem(config)
    plan = vectorized.make_plan(problem, config)
    assert fused.large_ops(plan) is None  # 4 epochs of a 16 KB X (float32)
    set_options(monkeypatch, kernel_min_bytes=4 * plan.X_train.nbytes)
    assert fused.large_ops(plan) is None  # a plan keeps the options it was made with
    plan = vectorized.make_plan(problem, config)
    assert plan.options.kernel_min_bytes == 4 * plan.X_train.nbytes
    assert fused.large_ops(vectorized.make_plan(problem, config, lambdas=[0.0, 3.0])) is None
    three = config.replace(num_epochs=3)
    assert fused.large_ops(vectorized.make_plan(wdlib.make_problem(three), three)) is None
    if importlib.util.find_spec("numba") is not None:
        assert type(fused.large_ops(plan)).__name__ == "KernelOps"
    monkeypatch.setitem(sys.modules, "numba", None)  # as if numba were not installed
    monkeypatch.delitem(sys.modules, "wdlib_numpy.kernel", raising=False)
    assert fused.large_ops(plan) is None
    kw = {"lambd": 3.0, "num_epochs": 4, "dtype": "float64"}
    assert_runs_close(wdlib.train("numpy", engine="fused", **kw), wdlib.train("numpy", engine="eager", **kw),
                      "float64")


@pytest.mark.parametrize("path", LARGE_PATHS)
def test_large_data_path_same_bits_on_any_number_of_threads(path: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Minibatches split into parts run on two threads or one: the same bits, and the same run."""
    name = use_large_path(path, monkeypatch)
    kw = {"lambd": 3.0, "dtype": "float32", "num_epochs": 20, "decay_bias": True}
    assert large.split_rows(5, 2, large.SLOTS) == [(0, 4), (4, 5)]  # the chapter's 5 rows in 2-row blocks
    runs = {}
    for threads in (1, 2):
        set_options(monkeypatch, large_threads=threads)
        runs[threads] = wdlib.train(name, engine="fused", **kw)
    assert np.array_equal(runs[1].params["w"], runs[2].params["w"])
    assert np.array_equal(runs[1].test_loss, runs[2].test_loss)
    assert np.array_equal(runs[1].train_loss, runs[2].train_loss)
    assert_runs_close(runs[2], wdlib.train("numpy", engine="eager", **kw), "float32")


def test_split_rows() -> None:
    """Parts are whole blocks, cover every row once, and no part is empty."""
    for m, block, parts in [(256, 13, 2), (5, 2, 2), (1, 4, 2), (26, 13, 2), (27, 13, 3), (300, 400, 2)]:
        ranges = large.split_rows(m, block, parts)
        assert 1 <= len(ranges) <= parts
        assert ranges[0][0] == 0 and ranges[-1][1] == m
        assert all(z > a for a, z in ranges)
        assert all((z - a) % block == 0 for a, z in ranges[:-1])
        assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))


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


def assert_divergence_recorded(backend: str) -> None:
    kw = {"lr": 0.5, "num_epochs": 100, "dtype": "float64", "on_divergence": "record"}
    eager = wdlib.train(backend, engine="eager", **kw)
    fused = wdlib.train(backend, engine="fused", **kw)
    assert eager.diverged and fused.diverged
    assert eager.meta["diverged_at_epoch"] == fused.meta["diverged_at_epoch"]
    assert len(eager.train_loss) == len(fused.train_loss)
    before = eager.meta["diverged_at_epoch"] - 1  # the last epoch may overflow in one and not the other
    np.testing.assert_allclose(fused.test_loss[:before], eager.test_loss[:before], rtol=1e-9)
    with pytest.raises(wdlib.DivergenceError):
        wdlib.train(backend, engine="fused", lr=0.5, num_epochs=100, dtype="float64")


def test_jax_compiles_once_per_shape() -> None:
    if "jax" not in wdlib.installed_backends():
        pytest.skip("jax is not installed")
    from wdlib_jax.fused import compiled

    wdlib.train("jax", lambd=0.0, num_epochs=3)
    size = compiled(False)._cache_size()
    for lambd, lr in ((3.0, 0.003), (7.5, 0.001), (0.25, 0.01)):
        wdlib.train("jax", lambd=lambd, lr=lr, num_epochs=3)
    assert compiled(False)._cache_size() == size  # λ and lr are traced: no recompilation
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


def test_torch_large_data_path_without_torchscript(monkeypatch: pytest.MonkeyPatch) -> None:
    """The large-data path's minibatch loop: TorchScript, or the generic one in Python; same numbers."""
    if "torch" not in wdlib.installed_backends():
        pytest.skip("torch is not installed")
    from wdlib_torch import fused

    large_data_path(monkeypatch)
    assert fused.scripted_minibatch() is not None
    scripted = wdlib.train("torch", lambd=3.0, dtype="float64", engine="fused", decay_bias=True)
    monkeypatch.setattr(fused, "scripted_minibatch", lambda: None)
    plain = wdlib.train("torch", lambd=3.0, dtype="float64", engine="fused", decay_bias=True)
    eager = wdlib.train("numpy", lambd=3.0, dtype="float64", engine="eager", decay_bias=True)
    np.testing.assert_allclose(plain.params["w"], scripted.params["w"], rtol=1e-13, atol=1e-15)
    assert_runs_close(plain, eager, "float64")
    assert_runs_close(scripted, eager, "float64")


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
