"""The NumPy backend's fast path: the matrix-form SGD of :mod:`wdlib.vectorized` in BLAS calls.

Small data, one small column (the chapter's runs): one update matrix per minibatch
(:meth:`wdlib.vectorized.Plan.step_matrices`), so a step is one ``np.matmul``, ping-ponging between
two buffers. Small data otherwise (λ sweeps, larger states): two BLAS products and one or two
in-place updates per minibatch, on views of buffers that one ``np.take`` per epoch fills. Large
data: :func:`wdlib.large.fit_large`, with the compiled kernel of :mod:`wdlib_numpy.kernel` where
numba is installed and the run is long enough to repay it (:func:`large_ops`). Losses are evaluated
a chunk of epochs at a time, one product per chunk with :meth:`~wdlib.vectorized.Plan.loss_rows`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wdlib import vectorized as vec

if TYPE_CHECKING:
    from wdlib.large import LargeOps

#: Large data trains with the compiled kernel (:mod:`wdlib_numpy.kernel`) when a run reads at least
#: this many bytes of X in all (epochs x X). Its cost, ~0.5 s per process (importing numba and
#: loading the kernel from numba's disk cache; compiling it the first time, ~1-2 s per dtype), is
#: repaid at ~0.03 s per GB read (measured: 22-25 vs 12-15 GB/s), so from ~15 GB on. A function of
#: the run alone, so a run's numbers never depend on what the process did before; lower it for many
#: smaller runs in one process.
KERNEL_MIN_BYTES = 2**34


def fit_plan(plan: vec.Plan) -> vec.Result:
    """Every column of ``plan`` in one run."""
    if not plan.gather_epochs():
        from wdlib.large import fit_large

        return fit_large(plan, large_ops(plan))
    A = plan.step_matrices()
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is recorded, not warned about
        return _fit_step_matrices(plan, A) if A is not None else _fit_minibatches(plan)


def large_ops(plan: vec.Plan) -> LargeOps | None:
    """The compiled kernel's operations for a one-column run of at least KERNEL_MIN_BYTES, if numba
    is installed; None (BLAS on blocks of rows, the same numbers to rounding) otherwise."""
    if plan.k != 1 or plan.num_epochs * plan.X_train.nbytes < KERNEL_MIN_BYTES:
        return None
    try:
        from wdlib_numpy.kernel import KernelOps
    except (ImportError, RuntimeError):  # numba missing, or with nowhere to write its cache
        return None
    return KernelOps()


def _fit_step_matrices(plan: vec.Plan, A: np.ndarray) -> vec.Result:
    """``theta <- A theta`` for each minibatch."""
    theta, spare = plan.theta0.astype(A.dtype), np.empty((plan.q, 1), dtype=A.dtype)
    snaps = Snapshots(plan, theta)
    matmul = np.matmul
    for e, A_e in enumerate(A):
        for A_s in A_e:
            matmul(A_s, theta, out=spare)
            theta, spare = spare, theta
        snaps.add(e, theta)
    return snaps.result()


def _fit_minibatches(plan: vec.Plan) -> vec.Result:
    """``r = Z_B theta``, ``theta = D theta - U_B^T r`` for each minibatch."""
    dt = plan.X_train.dtype
    theta = np.ascontiguousarray(np.repeat(plan.theta0, plan.k, axis=1))
    rows = theta[: plan.decayed_rows]
    R = np.empty((plan.batch_size, plan.k), dtype=dt)
    G = np.empty_like(theta)
    Z, U = plan.Z_train, plan.U_train
    Zbuf = np.empty_like(Z)
    Ubuf = np.empty_like(Z)  # the update's rows, (lr / bs) U, its constant column 0
    steps = list(zip(plan.minibatch_views(Zbuf), plan.minibatch_views(Ubuf, transpose=True),
                     [R[: t - s] for s, t in plan.bounds()],
                     [plan.decay(t - s).astype(dt) if plan.penalized else None for s, t in plan.bounds()],
                     strict=True))
    snaps = Snapshots(plan, theta)
    dot = np.dot
    for e, order in enumerate(plan.batch_order):
        np.take(Z, order, axis=0, out=Zbuf)
        np.take(U, order, axis=0, out=Ubuf)
        for Zb, UbT, r, d in steps:
            dot(Zb, theta, r)
            dot(UbT, r, G)
            if d is not None:
                rows *= d
            theta -= G
        snaps.add(e, theta)
    return snaps.result()


class Snapshots:
    """Each epoch's parameters, kept a chunk of epochs at a time (``plan.eval_chunk()``) and then
    evaluated with one product per set into a :class:`wdlib.vectorized.Recorder`."""

    def __init__(self, plan: vec.Plan, theta: np.ndarray) -> None:
        self.chunk, self.last = plan.eval_chunk(), plan.num_epochs - 1
        self.snaps = np.empty((self.chunk, *theta.shape), dtype=theta.dtype)
        self.sets = [(plan.loss_rows(Z), len(Z)) for Z in (plan.Z_train, plan.Z_test)]
        self.recorder = vec.Recorder(plan)

    def add(self, e: int, theta: np.ndarray) -> None:
        """Keep epoch ``e``'s parameters; evaluate the chunk when it is full or the run ends."""
        i = e % self.chunk
        self.snaps[i] = theta
        if i == self.chunk - 1 or e == self.last:
            snaps = self.snaps[: i + 1]
            train, test = (squared_losses(L, n, snaps) for L, n in self.sets)
            self.recorder.add(e - i, train, test, snaps)

    def result(self) -> vec.Result:
        return self.recorder.result()


def squared_losses(L: np.ndarray, n: int, thetas: np.ndarray) -> np.ndarray:
    """Mean of the n squared residuals / 2 for each snapshot of ``thetas`` (C, q, k) -> (C, k), from
    ``L = plan.loss_rows(Z)`` (``||L theta|| = ||Z theta||``): one matrix product for all of them,
    the squares summed in float64."""
    C, q, k = thetas.shape
    R = L @ np.ascontiguousarray(thetas.transpose(1, 0, 2)).reshape(q, C * k)
    np.square(R, out=R)
    return (R.sum(axis=0, dtype=np.float64) / (2 * n)).reshape(C, k)
