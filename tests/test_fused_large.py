"""The large-data fast path (strategy "blocks": X read once per epoch in cache-sized blocks, on NumPy,
PyTorch, and NumPy's compiled kernel, which PyTorch's long one-column runs use too: NumPy's kernel
path itself, the same bits) gives the eager loop's numbers, never copies X, and computes the same
bits on any number of threads (tolerances: tests/test_fused.py)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from fused_support import (
    LARGE_PATHS,
    SETTINGS,
    assert_runs_close,
    compiled_kernel,
    kernel_module,
    large_data_path,
    set_options,
    use_large_path,
)

import wdlib
from wdlib import large, vectorized


def test_large_data_code_path(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Primal form, minibatches gathered block by block (2 rows: 3 blocks per minibatch)."""
    large_data_path(monkeypatch)
    set_options(monkeypatch, eval_chunk_bytes=3 * 8 * (202 + 20 + 100))  # 3 epochs a chunk
    for dtype in ("float64", "float32"):
        kw = {"lambd": 3.0, "dtype": dtype, "num_epochs": 10, "decay_bias": True}
        eager = wdlib.train(backend, engine="eager", **kw)
        fused = wdlib.train(backend, engine="fused", **kw)
        assert_runs_close(fused, eager, dtype)


@pytest.mark.parametrize("path", [*(b for b in ("numpy", "torch") if b in wdlib.installed_backends()),
                                  "numpy-kernel", "torch-kernel"])
def test_large_data_path_never_copies_x(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """NumPy and PyTorch train large data on the problem's own X: no [X, 1, -y] copy is made; on
    the compiled kernel (NumPy's, and PyTorch's, which is NumPy's kernel path), every minibatch part
    is handed that very array."""
    name = path.split("-")[0]
    if name not in wdlib.installed_backends():
        pytest.skip(f"{name} is not installed")
    set_options(monkeypatch, gather_bytes=0, dual_ratio=0)
    calls = compiled_kernel(monkeypatch) if path.endswith("-kernel") else None
    config = wdlib.make_config(backend=name, lambd=3.0, num_epochs=3)
    problem = wdlib.make_problem(config)
    plan = vectorized.make_plan(problem, config)
    assert (plan.layout, plan.strategy) == ("primal", "blocks")
    assert plan.X_train is problem.X_train and plan.U_train is None
    train, test, params = wdlib.get_backend(name).fit_plan(plan)
    assert "Z_train" not in vars(plan)  # the lazily made augmented copy was never asked for
    if calls is not None:
        assert calls and all(args[0] is problem.X_train for args in calls)
    expected = wdlib.fit(wdlib.get_backend("numpy"), problem, config.replace(engine="eager", backend="numpy"))
    np.testing.assert_allclose(test[0], expected.test_loss, rtol=1e-4)
    np.testing.assert_allclose(train[0], expected.train_loss, rtol=2e-2)
    w = expected.params["w"]
    np.testing.assert_allclose(params["w"][0], w, rtol=1e-4, atol=1e-4 * np.abs(w).max())


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


TORCH = "torch" in wdlib.installed_backends()


def torch_kernel(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """PyTorch's large-data runs on NumPy's compiled kernel (whatever their size). Returns a list of
    the arguments of each kernel call (:func:`fused_support.compiled_kernel`)."""
    if not TORCH:
        pytest.skip("torch is not installed")
    return compiled_kernel(monkeypatch)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("n_train", "batch_size"), [(20, 5), (23, 11)])
@pytest.mark.parametrize("setting", SETTINGS, ids=["lambd0", "lambd3", "lambd3-decay_bias"])
def test_torch_compiled_kernel_is_numpys_bit_for_bit(setting: dict, n_train: int, batch_size: int, dtype: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """PyTorch's kernel path is NumPy's (wdlib_numpy.kernel.KernelOps on the same arrays): every
    minibatch in one or two parts, short last batch included, the same bits as NumPy's kernel run
    (and the eager loop's numbers to rounding)."""
    large_data_path(monkeypatch)
    calls = torch_kernel(monkeypatch)
    kw = {"n_train": n_train, "batch_size": batch_size, "num_epochs": 10, "dtype": dtype, **setting}
    torch_run = wdlib.train("torch", engine="fused", **kw)
    minibatches = 10 * -(-n_train // batch_size)
    assert minibatches <= len(calls) <= 2 * minibatches
    del calls[:]
    numpy_run = wdlib.train("numpy", engine="fused", **kw)
    assert calls  # NumPy's run on the kernel too
    for name in ("w", "b"):
        assert numpy_run.params[name].dtype == torch_run.params[name].dtype == np.dtype(dtype)
        assert np.array_equal(torch_run.params[name], numpy_run.params[name]), name
    assert np.array_equal(torch_run.train_loss, numpy_run.train_loss)
    assert np.array_equal(torch_run.test_loss, numpy_run.test_loss)
    assert_runs_close(torch_run, wdlib.train("numpy", engine="eager", **kw), dtype)


def test_torch_compiled_kernel_only_where_numpy_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """NumPy's kernel path for a long one-column run; torch calls for λ sweeps, short runs, or
    without numba, whose numbers are the eager loop's to rounding."""
    if not TORCH:
        pytest.skip("torch is not installed")
    KernelOps = kernel_module().KernelOps
    import torch

    from wdlib_torch import large as torch_large

    large_data_path(monkeypatch)
    config = wdlib.make_config(backend="torch", lambd=3.0, num_epochs=4)
    problem = wdlib.make_problem(config)
    plan = vectorized.make_plan(problem, config)
    assert type(torch_large.large_ops(torch, plan)) is torch_large.TorchOps  # 4 epochs of a 16 KB X
    set_options(monkeypatch, kernel_min_bytes=4 * plan.X_train.nbytes)
    plan = vectorized.make_plan(problem, config)
    assert type(torch_large.large_ops(torch, plan)) is KernelOps
    sweep = vectorized.make_plan(problem, config, lambdas=[0.0, 3.0])
    assert type(torch_large.large_ops(torch, sweep)) is torch_large.TorchOps
    three = config.replace(num_epochs=3)
    assert type(torch_large.large_ops(torch, vectorized.make_plan(wdlib.make_problem(three), three))) \
        is torch_large.TorchOps
    monkeypatch.setitem(sys.modules, "numba", None)  # as if numba were not installed
    monkeypatch.delitem(sys.modules, "wdlib_numpy.kernel", raising=False)
    assert type(torch_large.large_ops(torch, plan)) is torch_large.TorchOps
    set_options(monkeypatch, kernel_min_bytes=0)  # any run meets the kernel's bound: torch calls still
    for dtype in ("float64", "float32"):
        kw = {"lambd": 3.0, "num_epochs": 4, "dtype": dtype, "decay_bias": True}
        fused = wdlib.train("torch", engine="fused", **kw)
        assert_runs_close(fused, wdlib.train("numpy", engine="eager", **kw), dtype)


@pytest.mark.parametrize("path", [*LARGE_PATHS, *(["torch-kernel"] if TORCH else [])])
def test_large_data_path_same_bits_on_any_number_of_threads(path: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Minibatches split into parts run on two threads or one: the same bits, and the same run."""
    if path == "torch-kernel":
        name = use_large_path("torch", monkeypatch)
        calls = torch_kernel(monkeypatch)
    else:
        name, calls = use_large_path(path, monkeypatch), [()]
    kw = {"lambd": 3.0, "dtype": "float32", "num_epochs": 20, "decay_bias": True}
    assert large.split_rows(5, 2, large.SLOTS) == [(0, 4), (4, 5)]  # the chapter's 5 rows in 2-row blocks
    runs = {}
    for threads in (1, 2):
        set_options(monkeypatch, large_threads=threads)
        runs[threads] = wdlib.train(name, engine="fused", **kw)
    assert calls  # the kernel ran, where asked for
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


def test_torch_large_data_path_without_torchscript(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyTorch's minibatch loop (wdlib_torch.large): TorchScript, or the generic one in Python; the
    same numbers to rounding."""
    if "torch" not in wdlib.installed_backends():
        pytest.skip("torch is not installed")
    from wdlib_torch import large as torch_large

    large_data_path(monkeypatch)
    kw = {"lambd": 3.0, "dtype": "float64", "engine": "fused", "decay_bias": True}
    assert torch_large.scripted_minibatch() is not None
    scripted = wdlib.train("torch", **kw)
    monkeypatch.setattr(torch_large, "scripted_minibatch", lambda: None)
    plain = wdlib.train("torch", **kw)
    np.testing.assert_allclose(plain.params["w"], scripted.params["w"], rtol=1e-13, atol=1e-15)
    assert_runs_close(scripted, wdlib.train("numpy", **{**kw, "engine": "eager"}), "float64")


def test_fit_counts_a_given_problems_arrays_as_held_not_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """wdlib.fit of a problem already in memory checks only what the run adds: a 320 MB X under a
    200 MB limit trains (the memory available excludes X already), where making it would be refused."""
    config = wdlib.make_config(n_train=2000, num_inputs=20000, n_test=10, dtype="float64", num_epochs=1,
                               batch_size=500, lambd=1.0)
    problem = wdlib.make_problem(config)
    monkeypatch.setenv("WDLIB_MEMORY_LIMIT", "200M")
    run = wdlib.fit("numpy", problem, config)
    assert run.train_loss.shape == (1,) and np.isfinite(run.test_loss).all()
    from wdlib.errors import ResourceError
    from wdlib.limits import check_run

    with pytest.raises(ResourceError, match="num_inputs"):  # the same run with its data still to make
        check_run(config)
