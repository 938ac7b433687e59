"""The MXNet backend's fast path: the kernels of each strategy of :mod:`wdlib.vectorized` in ``nd``
operators, run by :func:`wdlib.fastpath.run`.

Every MXNet operator costs tens of microseconds of engine overhead (benchmarks/results.md), so the
fast path issues as few as it can, and no ``autograd.record``:

- ``"scan"`` (one column of a small state, the chapter's runs): the update matrices multiplied out
  by the blocked scan of :mod:`wdlib.scan` in some 30 operators for the whole run (:class:`Scan`);
- ``"step_matrices"`` (one small column): one ``nd.dot`` per minibatch with its update matrix
  (:class:`StepMatrices`);
- ``"minibatches"``: for a small state (the chapter's λ sweeps), one ``nd.linalg.gemm`` per
  minibatch with its ``U_B^T Z_B`` (plus a ``broadcast_mul`` for the decay: :class:`StepProducts`),
  those operators unrolled into cached graphs of a few hundred nodes (:mod:`wdlib_mxnet.graph`);
  otherwise ``nd.dot(Z_B, theta)`` and one ``nd.linalg.gemm`` (plus the decay) on minibatches
  gathered up front (:class:`Gathered`), or taken from Z one at a time where that is not possible
  (:class:`Taken`: a short last batch, or much data);
- ``"blocks"`` (large data): :class:`Taken` on MXNet's own copy of the data.

Losses are evaluated per chunk of epochs with one product over the concatenated snapshots.

Equal to the eager path within rounding, not bitwise (the update is regrouped): float64 1e-12
relative on w and the test loss, float32 1e-4 (tests/test_fused.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wdlib import fastpath
from wdlib import vectorized as vec
from wdlib.scan import block_size


def _losses(nd: Any, Z: Any, S: Any, C: int, k: int) -> np.ndarray:
    R = nd.dot(Z, S)
    return (nd.mean(R * R, axis=0) / 2).asnumpy().astype(np.float64).reshape(C, k)


def fit_plan(plan: vec.Plan) -> vec.Result:
    from mxnet import nd

    if plan.strategy == "scan":
        from . import scan_graph  # the same scan in one cached graph per chunk (wdlib_mxnet.scan_graph)

        return fastpath.run(scan_graph.GraphScan(nd, plan) if scan_graph.ENABLED else Scan(nd, plan))
    if plan.strategy == "step_matrices":
        return fastpath.run(StepMatrices(nd, plan))
    if plan.small_state():  # λ sweeps of a small state: two operators per minibatch instead of three,
        from .graph import GraphSteps  # the same operators in cached graphs (wdlib_mxnet.graph)

        kernels = GraphSteps if plan.options.graph_steps > 0 else StepProducts
        return fastpath.run(kernels(nd, plan))
    q, E, n, bs = plan.q, plan.num_epochs, plan.n_train, plan.batch_size
    if (plan.strategy == "minibatches" and n % bs == 0
            and 2 * E * n * q * plan.itemsize <= plan.options.gather_bytes):
        return fastpath.run(Gathered(nd, plan))
    return fastpath.run(Taken(nd, plan))


class _Kernels(fastpath.Kernels):
    """The state, the snapshots of a chunk (concatenated for one product per set) and the
    evaluation; subclasses train one epoch (:meth:`epoch`)."""

    def __init__(self, nd: Any, plan: vec.Plan) -> None:
        super().__init__(plan)
        self.nd, self.dt = nd, plan.config.dtype
        self.Z = nd.array(plan.Z_train, dtype=self.dt)
        self.Z_test = nd.array(plan.Z_test, dtype=self.dt)
        self.theta = nd.array(np.repeat(plan.theta0, plan.k, axis=1), dtype=self.dt)

    def epoch(self, e: int) -> None:
        raise NotImplementedError

    def train(self, e0: int, e1: int) -> Any:
        snaps = []
        for e in range(e0, e1):
            self.epoch(e)
            snaps.append(self.theta)
        return self.nd.concat(*snaps, dim=1) if len(snaps) > 1 else snaps[0]  # (q, C * k)

    def losses(self, S: Any) -> tuple[np.ndarray, np.ndarray]:
        C = S.shape[1] // self.plan.k
        return (_losses(self.nd, self.Z, S, C, self.plan.k), _losses(self.nd, self.Z_test, S, C, self.plan.k))

    def snapshots(self, S: Any) -> np.ndarray:
        q, k = self.plan.q, self.plan.k
        return S.asnumpy().reshape(q, -1, k).transpose(1, 0, 2)

    def decays(self) -> dict[int, Any] | None:
        """The (q, k) decay factors of each minibatch size (None without a penalty)."""
        plan = self.plan
        if not plan.penalized:
            return None
        decay = {}
        for s, t in plan.bounds():
            D = np.ones((plan.q, plan.k))
            D[: plan.decayed_rows] = plan.decay(t - s)
            decay[t - s] = self.nd.array(D, dtype=self.dt)
        return decay


def _per_minibatch(nd: Any, dt: Any, stack: Any) -> tuple[list[Any], int]:
    """``stack`` (epochs, minibatches, q, q) as one MXNet array per minibatch, made by a single
    ``nd.split``, and the number of minibatches per epoch."""
    E, nb, q = stack.shape[:3]
    parts = nd.split(nd.array(stack.reshape(-1, q, q), dtype=dt), num_outputs=E * nb, axis=0,
                     squeeze_axis=True)
    return ([parts] if E * nb == 1 else list(parts)), nb


class StepMatrices(_Kernels):
    """One ``nd.dot`` per minibatch with its update matrix (which holds the decay), the matrices
    split into one array each by a single ``nd.split``."""

    def __init__(self, nd: Any, plan: vec.Plan) -> None:
        super().__init__(nd, plan)
        self.steps, self.nb = _per_minibatch(nd, self.dt, plan.step_matrices())

    def epoch(self, e: int) -> None:
        dot, theta = self.nd.dot, self.theta
        for i in range(e * self.nb, (e + 1) * self.nb):
            theta = dot(self.steps[i], theta)
        self.theta = theta


class Scan(_Kernels):
    """The blocked scan of :mod:`wdlib.scan` with as few operators as it takes: the step matrices
    laid out in NumPy so that every operand is a view along the first axis (no slicing operator):
    minibatch-major, and the epochs of each chunk ordered by their place in a block, then by block,
    zero-padded to whole blocks. Then ``nb - 1`` ``batch_dot`` for the epoch matrices, ``block - 1``
    for the prefix products within all blocks, one small ``dot`` per block for the state it starts
    from (with the previous block's total product), and one ``batch_dot`` for every snapshot; the
    losses of a chunk are one more ``dot``."""

    def __init__(self, nd: Any, plan: vec.Plan) -> None:  # no Z in MXNet: L holds both sets
        fastpath.Kernels.__init__(self, plan)
        self.nd, self.dt = nd, plan.config.dtype
        self.theta = nd.array(plan.theta0, dtype=self.dt)
        self.A, self.block = plan.step_matrices(), block_size(plan)
        L_train, L_test = plan.loss_rows(plan.Z_train), plan.loss_rows(plan.Z_test)
        self.L = nd.array(np.concatenate([L_train, L_test]).T, dtype=self.dt)  # both sets: one dot
        self.rows = len(L_train)

    def train(self, e0: int, e1: int) -> Any:
        nd, G, q = self.nd, self.block, self.plan.q
        A = self.A[e0:e1]
        C, nb = A.shape[:2]
        B = -(-C // G)
        laid = np.zeros((nb, G, B, q, q), dtype=A.dtype)  # [j, g, b] = A[b * G + g, j]
        padded = np.zeros((B * G, nb, q, q), dtype=A.dtype)
        padded[:C] = A
        laid[...] = padded.reshape(B, G, nb, q, q).transpose(2, 1, 0, 3, 4)
        steps = nd.array(laid.reshape(nb, G * B, q, q), dtype=self.dt)
        P = steps[0]
        for j in range(1, nb):
            P = nd.batch_dot(steps[j], P)
        P = P.reshape((G, B, q, q))
        Q = [P[0]]
        for g in range(1, G):
            Q.append(nd.batch_dot(P[g], Q[-1]))
        thetas = [self.theta]  # the state before each block: one small dot per block with its total
        for b in range(B - 1):
            thetas.append(nd.dot(Q[-1][b], thetas[-1]))
        prefix = (nd.stack(*Q, axis=1) if G > 1 else Q[0]).reshape((B, G * q, q))
        start = nd.stack(*thetas) if B > 1 else thetas[0].reshape((1, q, 1))
        S = nd.batch_dot(prefix, start).reshape((B * G, q))[:C]  # every snapshot, (C, q)
        self.theta = S[C - 1].reshape((q, 1))
        return S  # (C, q)

    def context(self) -> Any:
        return np.errstate(over="ignore", invalid="ignore")  # divergence is recorded, not warned about

    def losses(self, S: Any) -> tuple[np.ndarray, np.ndarray]:
        R = np.square(self.nd.dot(S, self.L).asnumpy())  # (C, rows of L_train + L_test)
        train = R[:, : self.rows].sum(axis=1, dtype=np.float64) / (2 * self.plan.n_train)
        test = R[:, self.rows :].sum(axis=1, dtype=np.float64) / (2 * len(self.plan.X_test))
        return train[:, None], test[:, None]

    def snapshots(self, S: Any) -> np.ndarray:
        return S.asnumpy()[:, :, None]


class StepProducts(_Kernels):
    """Several columns of a small state: per minibatch ``D theta`` (one ``broadcast_mul``, λ > 0
    only) and one ``nd.linalg.gemm`` with that minibatch's ``M = U_B^T Z_B``
    (:meth:`wdlib.vectorized.Plan.step_products`), split into one array each by a single
    ``nd.split``."""

    def __init__(self, nd: Any, plan: vec.Plan) -> None:
        super().__init__(nd, plan)
        self.products, self.nb = _per_minibatch(nd, self.dt, plan.step_products())
        self.decay, self.sizes = self.decays(), [t - s for s, t in plan.bounds()]

    def epoch(self, e: int) -> None:
        gemm, theta, decay = self.nd.linalg.gemm, self.theta, self.decay
        for i, m in enumerate(self.sizes):
            decayed = theta * decay[m] if decay is not None else theta
            theta = gemm(self.products[e * self.nb + i], theta, decayed, alpha=-1.0, beta=1.0)
        self.theta = theta


class Gathered(_Kernels):
    """Every epoch's minibatches gathered up front (whole minibatches, small data): per minibatch
    ``nd.dot(Z_B, theta)`` and one ``nd.linalg.gemm`` (plus a ``broadcast_mul`` for the decay)."""

    def __init__(self, nd: Any, plan: vec.Plan) -> None:
        super().__init__(nd, plan)
        E, nb, bs, q = plan.num_epochs, len(plan.bounds()), plan.batch_size, plan.q
        self.Zb_all = nd.array(plan.Z_train[plan.batch_order].reshape(E * nb, bs, q), dtype=self.dt)
        assert plan.U_train is not None
        Ub = plan.U_train[plan.batch_order].reshape(E * nb, bs, q).transpose(0, 2, 1)  # (lr / bs) U_B^T
        self.Ub_all = nd.array(np.ascontiguousarray(Ub), dtype=self.dt)
        self.decay, self.nb, self.bs = self.decays(), nb, bs

    def epoch(self, e: int) -> None:
        dot, gemm, theta, decay = self.nd.dot, self.nd.linalg.gemm, self.theta, self.decay
        for i in range(e * self.nb, (e + 1) * self.nb):
            r = dot(self.Zb_all[i], theta)
            if decay is not None:
                theta = theta * decay[self.bs]
            theta = gemm(self.Ub_all[i], r, theta, alpha=-1.0, beta=1.0)
        self.theta = theta


class Taken(_Kernels):
    """Each minibatch taken from Z when it is trained (a short last batch, or more data than is
    worth gathering up front; for "blocks" plans, on MXNet's own copy of ``[X, 1, -y]``)."""

    def __init__(self, nd: Any, plan: vec.Plan) -> None:
        super().__init__(nd, plan)
        self.orders = nd.array(plan.batch_order, dtype="int64")
        self.step_rows = nd.array(plan.step_rows(), dtype=self.dt)
        self.U = None if plan.U_train is None else nd.array(plan.U_train, dtype=self.dt)
        self.decay = self.decays()

    def epoch(self, e: int) -> None:
        nd, theta, decay, U = self.nd, self.theta, self.decay, self.U
        order = self.orders[e]
        for s, t in self.plan.bounds():
            Zb = nd.take(self.Z, order[s:t])
            r = nd.dot(Zb, theta)
            if decay is not None:
                theta = theta * decay[t - s]
            if U is None:  # primal form: U = (lr / bs) Z with the constant column 0
                theta = theta - nd.broadcast_mul(nd.dot(Zb, r, transpose_a=True), self.step_rows)
            else:
                theta = theta - nd.dot(nd.take(U, order[s:t]), r, transpose_a=True)
        self.theta = theta
