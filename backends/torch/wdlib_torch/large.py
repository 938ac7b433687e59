"""The PyTorch backend's large-data path (strategy "blocks"): :class:`wdlib.large.BlockKernels` on X
itself, never copied, read from memory once per epoch; run by ``wdlib_torch.fused.fit_plan`` on one
intra-op thread.

Two variants, chosen by :func:`large_ops` by the NumPy backend's rule:

- torch calls on gathered blocks of rows (:class:`TorchOps`, :func:`scripted_minibatch`), under
  ``torch.no_grad``: λ sweeps, short runs, or where numba is not installed;
- for long one-column runs where numba is installed, NumPy's kernel path itself: ``BlockKernels``
  with :class:`wdlib_numpy.kernel.KernelOps` on the same memory (the plan's NumPy arrays, which
  the tensors would only have wrapped), so the run is the NumPy backend's kernel run, bit for bit.
  Once the kernel does the rows, what is left per minibatch is a dozen small operations on (p, 1)
  vectors (offset, the parts' gradients summed, decay, update, bias step), and in torch each costs
  a call's dispatch, plus ``.numpy()`` views for the kernel's arguments: GIL-held time that made a
  minibatch slower than NumPy's (benchmarks/results.md), and PyTorch has nothing to add there.

The same numbers to rounding either way.
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from wdlib import large

if TYPE_CHECKING:
    from torch import Tensor

    from wdlib import vectorized as vec
else:
    Tensor = Any


class TorchOps(large.LargeOps):
    """:class:`wdlib.large.BlockKernels` in PyTorch (the "blocks" strategy): tensors sharing the
    NumPy arrays' memory, ``index_select`` and ``mm`` into preallocated buffers."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def context(self) -> Any:
        return self.torch.no_grad()

    def asarray(self, a: np.ndarray) -> Any:
        return self.torch.from_numpy(a)

    def copy(self, a: Any) -> Any:
        return a.clone()

    def empty(self, shape: tuple[int, ...], like: Any) -> Any:
        return self.torch.empty(shape, dtype=like.dtype)

    def take_rows(self, X: Any, idx: Any, out: Any) -> Any:
        return self.torch.index_select(X, 0, idx, out=out)

    def matmul(self, a: Any, b: Any, out: Any) -> Any:
        return self.torch.mm(a, b, out=out)

    def subtract(self, a: Any, b: Any, out: Any) -> Any:
        return self.torch.sub(a, b, out=out)

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.numpy()

    def mean_square(self, R: Any) -> np.ndarray:
        return (R.double().square_().mean(0) / 2).numpy()

    def minibatch(self, *args: Any) -> None:
        (scripted_minibatch() or super().minibatch)(*args)


def large_ops(torch: Any, plan: vec.Plan) -> large.LargeOps:
    """NumPy's kernel path (:class:`wdlib_numpy.kernel.KernelOps`) where the NumPy backend would use
    it (one column, at least ``options.kernel_min_bytes`` of X read in all, numba and wdlib_numpy
    installed: ``pip install wdlib-torch[numba]``); torch calls (:class:`TorchOps`) otherwise. A
    function of the run alone, so a run's numbers never depend on what the process did before."""
    if plan.k == 1 and plan.num_epochs * plan.X_train.nbytes >= plan.options.kernel_min_bytes:
        try:
            from wdlib_numpy.kernel import KernelOps
        except (ImportError, RuntimeError):  # numba or wdlib_numpy missing, or numba has no cache dir
            pass
        else:
            return KernelOps()
    return TorchOps(torch)


@functools.cache
def scripted_minibatch() -> Any:
    """:meth:`TorchOps.minibatch` compiled by TorchScript (per-call overhead: a block is a few
    tensor calls; the GIL is released for the whole call, so the driver's threads run it at once).
    The residuals and their offset in one ``addmm``: four calls per block. None where TorchScript is
    unavailable."""
    global Tensor
    import torch

    Tensor = torch.Tensor

    def minibatch(X: Tensor, rows: Tensor, Xbuf: Tensor, w: Tensor, w_prev: Tensor, c: Tensor, r: Tensor,
                  previous: Tensor, G: Tensor, Gb: Tensor) -> None:
        block, m = Xbuf.shape[0], rows.shape[0]
        G.zero_()
        for b0 in range(0, m, block):
            b1 = min(m, b0 + block)
            Xb = Xbuf[: b1 - b0]
            torch.index_select(X, 0, rows[b0:b1], out=Xb)
            rb = r[b0:b1]
            torch.addmm(c[b0:b1], Xb, w, out=rb)  # r = X_b w + c in one call (the offset added by the gemm)
            torch.mm(Xb, w_prev, out=previous[b0:b1])
            G.addmm_(Xb.t(), rb)

    return script(minibatch)


def script(f: Any) -> Any:
    """``f`` compiled by TorchScript, or None where TorchScript cannot (the Python loop then runs)."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.script(f)
    except Exception:  # TorchScript is optional: the Python loops do the same
        return None
