"""The PyTorch backend's fast path: the matrix-form SGD of :mod:`wdlib.vectorized` without autograd.

The eager path runs autograd on the books' objective each minibatch (about 25 tensor operations with
the graph bookkeeping). Here each minibatch is two tensor calls on preallocated buffers,
``torch.mm(Z_B, theta, out=r)`` and ``theta.addmm_(U_B^T, r, alpha=-1)`` (plus ``mul_`` for the
decay when λ > 0), under ``torch.no_grad`` and on one intra-op thread. Small data: the minibatches
are views of buffers that one ``index_select`` per epoch refills, and the epochs loop runs in
TorchScript (in Python where TorchScript is unavailable); losses are evaluated per chunk of epochs
with one matrix product. Large data: :func:`wdlib.large.fit_large` in torch ops
(:class:`TorchOps`), on X itself, never copied, read from memory once per epoch. λ-vectorized:
``theta`` is (q, k) (primal or dual form, see :class:`wdlib.vectorized.Plan`).

Equal to the eager path within rounding, not bitwise (the update is regrouped): float64 1e-12
relative on w and the test loss, float32 1e-4 (tests/test_fused.py).
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from wdlib import large
from wdlib import vectorized as vec

if TYPE_CHECKING:
    from torch import Tensor
else:
    Tensor = Any


def _losses(torch: Any, X: Any, y: Any, snaps: Any) -> np.ndarray:
    """Mean of ``(X w + b - y)^2 / 2`` for each snapshot ``[w; b; 1]``, (C, q, k) -> (C, k) float64."""
    C, q, k = snaps.shape
    R = torch.mm(X, snaps[:, : q - 2].permute(1, 0, 2).reshape(q - 2, C * k))
    R += snaps[:, q - 2].reshape(1, C * k)
    R -= y
    return (R.square_().mean(0) / 2).reshape(C, k).double().numpy()


def fit_plan(plan: vec.Plan) -> vec.Result:
    """Run ``plan`` on one intra-op thread: the fast path's products are either tiny or
    memory-bound, and thread hand-offs cost more than a second thread gains (on a busy machine, a
    parallel ``index_select`` of a few long rows took 60 times longer than a serial one)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(torch, plan)
    finally:
        torch.set_num_threads(threads)


@functools.cache
def scripted_epochs() -> Any:
    """The small-data epochs loop compiled by TorchScript (once per process): about half the
    per-call overhead of the same loop in Python. None where TorchScript is unavailable."""
    global Tensor
    import torch

    Tensor = torch.Tensor  # the annotations below are resolved by name when scripting

    def epochs(Z: Tensor, U: Tensor, orders: Tensor, Zbuf: Tensor, Ubuf: Tensor, Zs: list[Tensor],
               Us: list[Tensor], Rs: list[Tensor], Ds: list[Tensor], theta: Tensor, rows: Tensor,
               snaps: Tensor, e0: int, e1: int) -> None:
        for e in range(e0, e1):
            torch.index_select(Z, 0, orders[e], out=Zbuf)
            torch.index_select(U, 0, orders[e], out=Ubuf)
            for i in range(len(Zs)):
                torch.mm(Zs[i], theta, out=Rs[i])
                if len(Ds) > 0:
                    rows.mul_(Ds[i])
                theta.addmm_(Us[i], Rs[i], beta=1.0, alpha=-1.0)
            snaps[e - e0].copy_(theta)

    return _script(epochs)


def _script(f: Any) -> Any:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.script(f)
    except Exception:  # TorchScript is optional: the Python loops do the same
        return None


class TorchOps(large.LargeOps):
    """:func:`wdlib.large.fit_large` in PyTorch (the large-data path): tensors sharing the
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


@functools.cache
def scripted_minibatch() -> Any:
    """:meth:`TorchOps.minibatch` compiled by TorchScript (per-call overhead: a block is a few
    tensor calls). None where TorchScript is unavailable."""
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
            torch.mm(Xb, w, out=rb)
            torch.mm(Xb, w_prev, out=previous[b0:b1])
            rb.add_(c[b0:b1])
            G.addmm_(Xb.t(), rb)

    return _script(minibatch)


def _fit(torch: Any, plan: vec.Plan) -> vec.Result:
    if not plan.gather_epochs():
        return large.fit_large(plan, TorchOps(torch))
    dt = getattr(torch, plan.config.dtype)
    k, E, bs, q = plan.k, plan.num_epochs, plan.batch_size, plan.q
    bounds = plan.bounds()
    with torch.no_grad():
        X, y, X_test, y_test = (torch.from_numpy(a) for a in (plan.X_train, plan.y_train, plan.X_test,
                                                               plan.y_test))
        theta = torch.from_numpy(np.repeat(plan.theta0, k, axis=1)).contiguous()
        rows = theta[: plan.decayed_rows]
        decay = ({t - s: torch.from_numpy(plan.decay(t - s)).to(dt) for s, t in bounds}
                 if plan.penalized else None)
        R = torch.empty((bs, k), dtype=dt)
        Rm = {t - s: R[: t - s] for s, t in bounds}
        orders = torch.from_numpy(plan.batch_order)
        C = plan.eval_chunk()
        snaps = torch.empty((C, q, k), dtype=dt)
        rec = vec.Recorder(plan)
        # an epoch's rows of Z and U in order, refilled by one index_select each
        Z, U = torch.from_numpy(plan.Z_train), torch.from_numpy(plan.U_train)
        Zbuf, Ubuf = torch.empty_like(Z), torch.empty_like(U)
        if plan.n_train % bs == 0:  # every minibatch view made by one unbind call
            Zs = list(Zbuf.view(-1, bs, q).unbind(0))
            Us = list(Ubuf.view(-1, bs, q).transpose(1, 2).unbind(0))
        else:
            Zs = list(Zbuf.split(bs))
            Us = [Ub.T for Ub in Ubuf.split(bs)]
        sizes = [t - s for s, t in bounds]
        Rs = [Rm[m] for m in sizes]
        Ds = [decay[m] for m in sizes] if decay is not None else []
        scripted = scripted_epochs()
        epochs = scripted if scripted is not None else functools.partial(_epochs, torch)
        args = (Z, U, orders, Zbuf, Ubuf, Zs, Us, Rs, Ds, theta, rows, snaps)
        for e0 in range(0, E, C):
            e1 = min(E, e0 + C)
            epochs(*args, e0, e1)
            c = e1 - e0
            rec.add(e0, _losses(torch, X, y, snaps[:c]), _losses(torch, X_test, y_test, snaps[:c]),
                    snaps[:c].numpy())
    return rec.result()


def _epochs(torch: Any, Z: Any, U: Any, orders: Any, Zbuf: Any, Ubuf: Any, Zs: list, Us: list, Rs: list,
            Ds: list, theta: Any, rows: Any, snaps: Any, e0: int, e1: int) -> None:
    """:func:`scripted_epochs` in Python."""
    steps = list(zip(Zs, Us, Rs, Ds or [None] * len(Zs), strict=True))
    mm = torch.mm
    for e in range(e0, e1):
        torch.index_select(Z, 0, orders[e], out=Zbuf)
        torch.index_select(U, 0, orders[e], out=Ubuf)
        for Zb, UbT, r, d in steps:
            mm(Zb, theta, out=r)
            if d is not None:
                rows.mul_(d)
            theta.addmm_(UbT, r, alpha=-1)
        snaps[e - e0].copy_(theta)
