"""The PyTorch backend's fast path: the kernels of each strategy of :mod:`wdlib.vectorized` in tensor
calls without autograd, run by :func:`wdlib.fastpath.run` under ``torch.no_grad`` on one intra-op
thread.

- ``"scan"`` (one column of a small state, the chapter's runs): the update matrices multiplied out
  by a few ``torch.bmm`` calls (the blocked scan of :mod:`wdlib.scan`, :func:`scan_snapshots`).
- ``"step_matrices"`` (one small column): one ``torch.mm`` per minibatch with its update matrix,
  the loop in TorchScript (:func:`scripted_steps`).
- ``"minibatches"``: ``torch.mm(Z_B, theta, out=r)`` and ``theta.addmm_(U_B^T, r, alpha=-1)`` (plus
  ``mul_`` for the decay when λ > 0) on views of buffers that one ``index_select`` per epoch refills,
  the epochs loop in TorchScript (:func:`scripted_epochs`).
- ``"blocks"`` (large data): :class:`wdlib.large.BlockKernels` in torch ops, on X itself, never
  copied, read from memory once per epoch; long one-column runs, where numba is installed, on NumPy's
  kernel path itself on the same memory (fewer per-call costs: :mod:`wdlib_torch.large`).

TorchScript halves the per-call overhead of these loops; where it is unavailable the same loops run
in Python. Losses: one batched product per chunk of epochs, with at most q rows per set
(:func:`_losses`).

Equal to the eager path within rounding, not bitwise (the update is regrouped): float64 1e-12
relative on w and the test loss, float32 1e-4 (tests/test_fused.py).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from wdlib import fastpath, large
from wdlib import vectorized as vec
from wdlib.scan import block_size
from wdlib_torch.large import TorchOps, large_ops, script, scripted_minibatch  # noqa: F401  (large data)

if TYPE_CHECKING:
    from torch import Tensor
else:
    Tensor = Any


def _losses(torch: Any, L: Tensor, rows: int, sizes: tuple[int, int], snaps: Tensor) -> tuple[np.ndarray,
                                                                                          np.ndarray]:
    """The train and test losses (C, k) float64 of snapshots (C, q, k), the mean of the squared
    residuals / 2 of each set, from ``L`` (both sets' :meth:`~wdlib.vectorized.Plan.loss_rows`, the
    training set's ``rows`` first): one batched product for both sets and every snapshot, the
    squares summed in the run's dtype (as the eager loop's mean)."""
    C, q, k = snaps.shape
    if k == 1:  # one plain product: a batch of matrix-vector products costs a call each
        R = torch.mm(snaps.view(C, q), L.t()).unsqueeze_(2).square_()
    else:
        R = torch.matmul(L, snaps).square_()  # (C, rows of both sets, k)
    train = R[:, :rows].sum(1).double().numpy() / (2 * sizes[0])
    test = R[:, rows:].sum(1).double().numpy() / (2 * sizes[1])
    return train, test


def fit_plan(plan: vec.Plan) -> vec.Result:
    """Run ``plan`` on one intra-op thread: the fast path's products are either tiny or
    memory-bound, and thread hand-offs cost more than a second thread gains (on a busy machine many
    times more: benchmarks/results.md)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(torch, plan)
    finally:
        torch.set_num_threads(threads)


@functools.cache
def scripted_epochs() -> Any:
    """The "minibatches" epochs loop compiled by TorchScript (once per process). None where
    TorchScript is unavailable."""
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

    return script(epochs)


@functools.cache
def scripted_steps() -> Any:
    """The one-matrix-per-minibatch loop (:meth:`wdlib.vectorized.Plan.step_matrices`) compiled by
    TorchScript: one ``mm`` per minibatch, ping-ponging between two buffers. None where TorchScript
    is unavailable."""
    global Tensor
    import torch

    Tensor = torch.Tensor

    def steps(As: list[Tensor], nb: int, theta: Tensor, spare: Tensor, snaps: Tensor, e0: int,
              e1: int) -> tuple[Tensor, Tensor]:
        for e in range(e0, e1):
            for i in range(e * nb, (e + 1) * nb):
                torch.mm(As[i], theta, out=spare)
                theta, spare = spare, theta
            snaps[e - e0].copy_(theta)
        return theta, spare

    return script(steps)


def _steps(torch: Any, As: list, nb: int, theta: Any, spare: Any, snaps: Any, e0: int, e1: int) -> tuple:
    """:func:`scripted_steps` in Python."""
    mm = torch.mm
    for e in range(e0, e1):
        for A_s in As[e * nb : (e + 1) * nb]:
            mm(A_s, theta, out=spare)
            theta, spare = spare, theta
        snaps[e - e0].copy_(theta)
    return theta, spare


def _fit(torch: Any, plan: vec.Plan) -> vec.Result:
    if plan.strategy == "blocks":
        return fastpath.run(large.BlockKernels(plan, large_ops(torch, plan)))
    kinds = {"scan": Scan, "step_matrices": StepMatrices, "minibatches": Minibatches}
    return fastpath.run(kinds[plan.strategy](torch, plan))


class _Small(fastpath.Kernels):
    """What both small-data strategies share: the state, the snapshot tensor and the evaluation."""

    def __init__(self, torch: Any, plan: vec.Plan) -> None:
        super().__init__(plan)
        self.torch = torch
        # at most q rows per set for many columns; one column's product is too small for the
        # factorization's own cost to pay
        rows = plan.loss_rows if plan.k > 1 else (lambda Z: Z)
        L_train, L_test = rows(plan.Z_train), rows(plan.Z_test)
        self.L = torch.from_numpy(np.concatenate([L_train, L_test]))  # both sets: one product
        self.loss_rows, self.sizes = len(L_train), (plan.n_train, len(plan.X_test))
        self.theta = torch.from_numpy(np.repeat(plan.theta0, plan.k, axis=1)).contiguous()
        self.snaps = torch.empty((self.chunk, plan.q, plan.k), dtype=getattr(torch, plan.config.dtype))

    def context(self) -> Any:
        return self.torch.no_grad()

    def losses(self, snaps: Any) -> tuple[np.ndarray, np.ndarray]:
        return _losses(self.torch, self.L, self.loss_rows, self.sizes, snaps)

    def snapshots(self, snaps: Any) -> np.ndarray:
        return snaps.numpy()


class StepMatrices(_Small):
    """One ``mm`` per minibatch with its update matrix (:func:`scripted_steps`)."""

    def __init__(self, torch: Any, plan: vec.Plan) -> None:
        super().__init__(torch, plan)
        A = plan.step_matrices()
        self.As, self.nb = list(torch.from_numpy(A).view(-1, plan.q, plan.q).unbind(0)), A.shape[1]
        self.steps = scripted_steps() or functools.partial(_steps, torch)
        self.spare = torch.empty_like(self.theta)

    def train(self, e0: int, e1: int) -> Any:
        self.theta, self.spare = self.steps(self.As, self.nb, self.theta, self.spare, self.snaps, e0, e1)
        return self.snaps[: e1 - e0]


def scan_snapshots(torch: Any, A: Tensor, theta: Tensor, block: int) -> Tensor:
    """The states after each epoch, (C, q, 1), from the step matrices ``A`` (C, nb, q, q) and the
    state before them (q, 1): the blocked scan of :mod:`wdlib.scan` in ``bmm`` calls."""
    C, nb, q = A.shape[0], A.shape[1], A.shape[2]
    P = A[:, 0]
    for j in range(1, nb):
        P = torch.bmm(A[:, j], P)
    blocks = -(-C // block)
    if blocks * block > C:  # the last block padded with zeros (its extra snapshots are dropped)
        P = torch.cat([P, P.new_zeros((blocks * block - C, q, q))])
    P = P.view(blocks, block, q, q)
    Q = [P[:, 0]]
    for j in range(1, block):
        Q.append(torch.bmm(P[:, j], Q[-1]))
    prefix = torch.stack(Q, 1)  # (blocks, block, q, q)
    snaps = []
    for b in range(blocks):
        S = torch.matmul(prefix[b], theta)  # (block, q, 1)
        snaps.append(S)
        theta = S[-1]
    return torch.cat(snaps)[:C]


class Scan(_Small):
    """The blocked scan (:func:`scan_snapshots`) on the plan's step matrices."""

    def __init__(self, torch: Any, plan: vec.Plan) -> None:
        super().__init__(torch, plan)
        self.A = torch.from_numpy(plan.step_matrices())
        self.block = block_size(plan)

    def train(self, e0: int, e1: int) -> Any:
        snaps = scan_snapshots(self.torch, self.A[e0:e1], self.theta, self.block)
        self.theta = snaps[-1]
        return snaps


class Minibatches(_Small):
    """Two products and an update per minibatch, on views of buffers that one ``index_select`` per
    epoch refills (:func:`scripted_epochs`)."""

    def __init__(self, torch: Any, plan: vec.Plan) -> None:
        super().__init__(torch, plan)
        theta = self.theta
        dt, bs, q, bounds = theta.dtype, plan.batch_size, plan.q, plan.bounds()
        rows = theta[: plan.decayed_rows]
        decay = ({t - s: torch.from_numpy(plan.decay(t - s)).to(dt) for s, t in bounds}
                 if plan.penalized else None)
        R = torch.empty((bs, plan.k), dtype=dt)
        orders = torch.from_numpy(plan.batch_order)
        Z, U = torch.from_numpy(plan.Z_train), torch.from_numpy(plan.U_train)
        Zbuf, Ubuf = torch.empty_like(Z), torch.empty_like(U)
        if plan.n_train % bs == 0:  # every minibatch view made by one unbind call
            Zs = list(Zbuf.view(-1, bs, q).unbind(0))
            Us = list(Ubuf.view(-1, bs, q).transpose(1, 2).unbind(0))
        else:
            Zs = list(Zbuf.split(bs))
            Us = [Ub.T for Ub in Ubuf.split(bs)]
        sizes = [t - s for s, t in bounds]
        Rs = [R[:m] for m in sizes]
        Ds = [decay[m] for m in sizes] if decay is not None else []
        scripted = scripted_epochs()
        self.epochs = scripted if scripted is not None else functools.partial(_epochs, torch)
        self.args = (Z, U, orders, Zbuf, Ubuf, Zs, Us, Rs, Ds, theta, rows, self.snaps)

    def train(self, e0: int, e1: int) -> Any:
        self.epochs(*self.args, e0, e1)
        return self.snaps[: e1 - e0]


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
