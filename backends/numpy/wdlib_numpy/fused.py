"""The NumPy backend's fast path: the kernels of each strategy of :mod:`wdlib.vectorized`, in BLAS
calls, run by :func:`wdlib.fastpath.run`.

- ``"scan"`` (one column of a small state, the chapter's runs): the update matrices multiplied out by
  a few batched ``np.matmul`` calls (:class:`Scan`, the blocked scan of :mod:`wdlib.scan`).
- ``"step_matrices"`` (one small column): a step is one ``np.dot`` with that minibatch's update
  matrix, ping-ponging between two buffers.
- ``"minibatches"`` (λ sweeps, larger states): two BLAS products and one or two in-place updates per
  minibatch, on views of buffers that one ``take`` per epoch fills.
- ``"blocks"`` (large data): :class:`wdlib.large.BlockKernels`, with the compiled kernel of
  :mod:`wdlib_numpy.kernel` where numba is installed and the run is long enough to repay it
  (:func:`large_ops`).

Losses are evaluated a chunk of epochs at a time: one column's from one product over both sets'
rows (:func:`one_column_losses`), several columns' from both sets' :meth:`~wdlib.vectorized.Plan.loss_rows`
a few epochs at a time in a small reused buffer (:class:`Evaluation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from wdlib import fastpath
from wdlib import vectorized as vec
from wdlib.scan import block_size

if TYPE_CHECKING:
    from wdlib.large import LargeOps


#: ``np.dot`` without its ``__array_function__`` dispatch, a Python call on every use in NumPy >= 1.25
#: (0.3 µs of a 1.1 µs small product: the λ sweep's 800 products a run); the same C function.
_dot = getattr(np.dot, "_implementation", np.dot)


def fit_plan(plan: vec.Plan) -> vec.Result:
    """Every column of ``plan`` in one run."""
    if plan.strategy == "blocks":
        from wdlib.large import BlockKernels

        return fastpath.run(BlockKernels(plan, large_ops(plan)))
    kinds = {"scan": Scan, "step_matrices": StepMatrices, "minibatches": Minibatches}
    return fastpath.run(kinds[plan.strategy](plan))


def large_ops(plan: vec.Plan) -> LargeOps | None:
    """The compiled kernel's operations for a one-column run reading at least
    ``options.kernel_min_bytes``, if numba is installed; None (BLAS on blocks of rows, the same
    numbers to rounding) otherwise. A function of the run alone, so a run's numbers never depend on
    what the process did before."""
    if plan.k != 1 or plan.num_epochs * plan.X_train.nbytes < plan.options.kernel_min_bytes:
        return None
    try:
        from wdlib_numpy.kernel import KernelOps
    except (ImportError, RuntimeError):  # numba missing, or with nowhere to write its cache
        return None
    return KernelOps()


class _Small(fastpath.Kernels):
    """What both small-data strategies share: the state, the snapshot buffer and the evaluation."""

    def __init__(self, plan: vec.Plan, theta: np.ndarray, max_chunk: int | None = None) -> None:
        super().__init__(plan)
        self.chunk = min(self.chunk, max_chunk or self.chunk)
        self.theta = theta
        self.snaps = np.empty((self.chunk, *theta.shape), dtype=theta.dtype)
        #: One small column: both sets' rows for one product (a QR's fewer rows would cost more).
        self.both = both_sets(plan) if plan.strategy in ("scan", "step_matrices") else None
        if self.both is None:
            self.evaluation = Evaluation(plan, self.chunk)

    def context(self) -> Any:
        # divergence is recorded, not warned about; all="ignore" (the kernels divide by nothing but
        # set sizes) also spares NumPy 1.x reading the floating-point status after every ufunc
        return np.errstate(all="ignore")

    def losses(self, snaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.both is not None:
            return one_column_losses(self.both, self.plan.n_train, snaps)
        return self.evaluation.losses(snaps)


class StepMatrices(_Small):
    """``theta <- A theta`` for each minibatch's update matrix ``A``."""

    def __init__(self, plan: vec.Plan) -> None:
        self.A = plan.step_matrices()
        super().__init__(plan, plan.theta0.astype(self.A.dtype))
        self.spare = np.empty((plan.q, 1), dtype=self.A.dtype)

    def train(self, e0: int, e1: int) -> np.ndarray:
        theta, spare, snaps, matmul = self.theta, self.spare, self.snaps, np.matmul
        for e in range(e0, e1):
            for A_s in self.A[e]:
                matmul(A_s, theta, out=spare)
                theta, spare = spare, theta
            snaps[e - e0] = theta
        self.theta, self.spare = theta, spare
        return snaps[: e1 - e0]


class Scan(_Small):
    """The blocked scan of :mod:`wdlib.scan`: epoch matrices, prefix products within blocks of
    epochs, then one batched matrix-vector product per block, each step one ``np.matmul`` over a
    whole stack (into reused buffers)."""

    def __init__(self, plan: vec.Plan) -> None:
        self.A = plan.step_matrices()
        super().__init__(plan, plan.theta0.astype(self.A.dtype))
        self.block = block_size(plan)
        blocks = -(-self.chunk // self.block)
        q, dt = plan.q, self.A.dtype
        self.P = np.empty((blocks * self.block, q, q), dtype=dt)  # epoch matrices, zero-padded
        self.P[self.chunk :] = 0  # (every epoch's is written before it is read)
        self.spare = np.empty_like(self.P)
        self.Q = np.empty_like(self.P)  # the prefix products within each block
        self.snaps = np.empty((blocks * self.block, q, 1), dtype=dt)

    def train(self, e0: int, e1: int) -> np.ndarray:
        A, C, G, matmul = self.A[e0:e1], e1 - e0, self.block, np.matmul
        nb = A.shape[1]
        P, spare = self.P[:C], self.spare[:C]
        if nb == 1:
            P[...] = A[:, 0]
        else:  # P <- A_j P, ping-ponging so the product ends in self.P
            bufs = (P, spare) if nb % 2 == 0 else (spare, P)
            matmul(A[:, 1], A[:, 0], out=bufs[0])
            for j in range(2, nb):
                matmul(A[:, j], bufs[j % 2 == 1], out=bufs[j % 2 == 0])
        blocks = -(-C // G)
        Pb = self.P[: blocks * G].reshape(blocks, G, *P.shape[1:])
        Qb = self.Q[: blocks * G].reshape(Pb.shape)
        Qb[:, 0] = Pb[:, 0]
        for j in range(1, G):
            matmul(Pb[:, j], Qb[:, j - 1], out=Qb[:, j])
        theta, snaps = self.theta, self.snaps
        for b in range(blocks):
            matmul(Qb[b], theta, out=snaps[b * G : (b + 1) * G])
            theta = snaps[min(C, (b + 1) * G) - 1]
        self.theta = theta.copy()
        return snaps[:C]


class Minibatches(_Small):
    """``r = Z_B theta``, ``theta = D theta - U_B^T r`` for each minibatch."""

    def __init__(self, plan: vec.Plan) -> None:
        theta = np.ascontiguousarray(np.repeat(plan.theta0, plan.k, axis=1))
        # the snapshots' buffer within options.scratch_bytes too (the training's bits do not depend on it)
        super().__init__(plan, theta, max(1, plan.options.scratch_bytes // theta.nbytes))
        self.snaps = np.empty((plan.q, self.chunk, plan.k), dtype=theta.dtype)  # (q, C k) for Evaluation
        dt = plan.X_train.dtype
        self.rows = self.theta[: plan.decayed_rows]
        R = np.empty((plan.batch_size, plan.k), dtype=dt)
        self.G = np.empty_like(self.theta)
        self.Z, self.U = plan.Z_train, plan.U_train
        self.Zbuf = np.empty_like(self.Z)
        self.Ubuf = np.empty_like(self.Z)  # the update's rows, (lr / bs) U, its constant column 0
        self.steps = list(zip(plan.minibatch_views(self.Zbuf),
                              plan.minibatch_views(self.Ubuf, transpose=True),
                              [R[: t - s] for s, t in plan.bounds()],
                              # each decay as a whole (rows, k) array: a same-shape multiply skips
                              # the broadcasting iterator (half the cost of a (1, k) factor)
                              [np.repeat(plan.decay(t - s).astype(dt), len(self.rows), axis=0)
                               if plan.penalized else None for s, t in plan.bounds()], strict=True))

    def train(self, e0: int, e1: int) -> np.ndarray:
        theta, rows, G, dot = self.theta, self.rows, self.G, _dot
        for e in range(e0, e1):
            order = self.plan.batch_order[e]
            self.Z.take(order, 0, self.Zbuf)  # the method: np.take's Python wrapper costs as much
            self.U.take(order, 0, self.Ubuf)
            for Zb, UbT, r, d in self.steps:
                dot(Zb, theta, r)
                dot(UbT, r, G)
                if d is not None:
                    rows *= d
                theta -= G
            self.snaps[:, e - e0] = theta
        return self.snaps[:, : e1 - e0].transpose(1, 0, 2)


class Evaluation:
    """The losses of the snapshots (C, q, k) of the "minibatches" strategy (λ sweeps, large states)
    from both sets' :meth:`~wdlib.vectorized.Plan.loss_rows` stacked (at most 2 q rows): the snapshots
    as the (q, C k) matrix they are stored as (:class:`Minibatches`), a block of its columns at a time
    into one reused buffer of at most ``options.scratch_bytes`` (new memory on every call cost more
    than the products), squared in place and summed in the run's dtype, divided in float64."""

    def __init__(self, plan: vec.Plan, chunk: int) -> None:
        train = plan.loss_rows(plan.Z_train)
        self.L = np.concatenate([train, plan.loss_rows(plan.Z_test)])
        self.m, self.sizes = len(train), (plan.n_train, len(plan.X_test))
        column = len(self.L) * self.L.itemsize  # the residuals of one snapshot column
        self.width = max(1, min(chunk * plan.k, plan.options.scratch_bytes // column))
        self.buf = np.empty(len(self.L) * self.width, dtype=self.L.dtype)

    def losses(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (C, q, k), m, w = thetas.shape, self.m, self.width
        T = thetas.transpose(1, 0, 2).reshape(q, C * k)  # a view of Minibatches' snapshots
        sums = np.empty((2, C * k), dtype=thetas.dtype)
        for c in range(0, C * k, w):
            R = self.buf[: len(self.L) * min(w, C * k - c)].reshape(len(self.L), -1)
            _dot(self.L, T[:, c : c + w], R)
            np.square(R, out=R)
            np.add.reduce(R[:m], axis=0, out=sums[0, c : c + w])
            np.add.reduce(R[m:], axis=0, out=sums[1, c : c + w])
        train = np.true_divide(sums[0], 2 * self.sizes[0], dtype=np.float64).reshape(C, k)
        return train, np.true_divide(sums[1], 2 * self.sizes[1], dtype=np.float64).reshape(C, k)


def both_sets(plan: vec.Plan) -> np.ndarray:
    """``[Z_train; Z_test]`` (n_train + n_test, q), the test rows augmented in place (as
    :func:`wdlib.planning.augment` makes them)."""
    n, q = plan.n_train, plan.q
    Z = np.empty((n + len(plan.X_test), q), dtype=plan.X_train.dtype)
    Z[:n] = plan.Z_train
    Z[n:, :-2] = plan.X_test
    Z[n:, -2] = 1
    Z[n:, -1] = -plan.y_test.reshape(-1)
    return Z


def one_column_losses(both: np.ndarray, n: int, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The train and test losses (C, 1) of one column's snapshots ``thetas`` (C, q, 1), from
    ``both = [Z_train; Z_test]``: the residuals of both sets by one product (the snapshots as the
    columns of a transposed view, no copy), squared in place and summed in the run's dtype, divided in
    float64."""
    R = np.dot(both, thetas.reshape(len(thetas), -1).T)  # (n_train + n_test, C): the residuals
    np.square(R, out=R)
    train = np.true_divide(R[:n].sum(axis=0), 2 * n, dtype=np.float64)
    test = np.true_divide(R[n:].sum(axis=0), 2 * (len(both) - n), dtype=np.float64)
    return train[:, None], test[:, None]
