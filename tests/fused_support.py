"""What the fast-path tests share (tests/test_fused.py, tests/test_fused_large.py): tolerances, the
settings, the comparison of two runs, and the switches onto each fast-path variant."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import wdlib
from wdlib import fastpath, vectorized

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
    """Small one-column runs multiply their step matrices out ("scan"); "step_matrices" turns that
    off (one product per minibatch, the runs of a larger state), and "minibatch" both, so the two
    products and update per minibatch of every other run are tested too."""
    if loop in ("step_matrices", "minibatch"):
        set_options(monkeypatch, scan_max_q=0)
    if loop == "minibatch":
        set_options(monkeypatch, step_matrix_max_q=0)
    plan = vectorized.make_plan(wdlib.make_problem(config), config)
    assert plan.strategy == {"minibatch": "minibatches"}.get(loop, loop)


def large_data_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send the chapter's small runs down the large-data path (primal form, minibatches in blocks)."""
    set_options(monkeypatch, gather_bytes=0, dual_ratio=0, block_bytes=2 * 8 * 202)


def kernel_module() -> Any:
    """``wdlib_numpy.kernel`` (the tests using it are skipped where numba, an optional extra, is not
    installed; both CI environments have it)."""
    pytest.importorskip("numba", reason="numba is optional: pip install wdlib-numpy[numba]")
    from wdlib_numpy import kernel

    return kernel


def compiled_kernel(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Large-data runs on the compiled kernel (numba), NumPy's and PyTorch's (which runs NumPy's
    kernel path), whatever their size (the tests' runs are far below KERNEL_MIN_BYTES). Returns a
    list of the arguments of each call of ``KernelOps.minibatch`` (``X`` first)."""
    kernel = kernel_module()
    set_options(monkeypatch, kernel_min_bytes=0)
    calls: list[tuple] = []
    original = kernel.KernelOps.minibatch

    def counted(self: object, *args: object) -> None:
        calls.append(args)
        original(self, *args)

    monkeypatch.setattr(kernel.KernelOps, "minibatch", counted)
    return calls


LARGE_PATHS = [*(b for b in ("numpy", "torch") if b in wdlib.installed_backends()), "numpy-kernel"]


def use_large_path(path: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The large-data path of backend ``path`` ("numpy-kernel": NumPy's compiled kernel); the backend."""
    large_data_path(monkeypatch)
    if path == "numpy-kernel":
        compiled_kernel(monkeypatch)
    return path.split("-")[0]


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
