"""MXNet λ sweeps of a small state as cached graphs: the two operators per minibatch of
:class:`wdlib_mxnet.fused.StepProducts` (``D theta`` and one ``linalg.gemm`` with ``U_B^T Z_B``),
unrolled over a segment of epochs into one hybridized Gluon block (a CachedOp) and run by one call.

Why: imperatively every ``nd`` operator costs its Python front end and an engine push, tens of
microseconds, against a few microseconds for the same node inside a cached graph (static memory,
no Python per node). The minibatch order is shared by every λ and λ enters only through the decay,
so one graph serves the whole sweep and every sweep of the same shape (its inputs packed into one
NumPy array, handed over without a copy: :func:`packed`); it is built once per process, shape and
thread (a block's static memory is not shared between threads), at a cost of
a few milliseconds per segment's nodes. Segments of about ``options.graph_steps`` minibatches keep
that first call short and the graph calls few.

Each node is the imperative operator on the same operands, so the numbers are those of
:class:`~wdlib_mxnet.fused.StepProducts` (tests/test_vectorized.py compares them bitwise).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from wdlib import fastpath
from wdlib import vectorized as vec
from wdlib_mxnet.fused import _Kernels

_local = threading.local()
#: Blocks kept per thread (a process running many shapes of sweep builds each again past this).
MAX_BLOCKS = 16


def segment(epochs: int, nb: int, decay_of: tuple[int, ...] | None, q: int, k: int, dtype: str) -> Any:
    """The hybridized block training ``epochs`` epochs of ``nb`` minibatches each (``decay_of``: the
    decay input of each minibatch; None without a penalty), for a (q, k) state: called as
    ``block(theta, M, *decays)`` with the segment's ``M`` (epochs * minibatches, q, q), it returns
    the snapshots (q, epochs * k) and the last state (q, k). Made once per thread and key (the last
    ``MAX_BLOCKS`` kept)."""
    cache = getattr(_local, "blocks", None)
    if cache is None:
        cache = _local.blocks = {}
    key = (epochs, nb, decay_of, q, k, dtype)
    if key not in cache:
        if len(cache) >= MAX_BLOCKS:  # each holds its static memory: the oldest goes
            del cache[next(iter(cache))]
        cache[key] = _make_block(epochs, nb, decay_of)
    return cache[key]


def packed(nd: Any, dtype: str, arrays: list[np.ndarray]) -> list[Any]:
    """``arrays`` as MXNet arrays of ``dtype``: views of one flat array made by one zero-copy
    ``nd.from_numpy`` (``nd.array`` costs tens of microseconds a call, whatever the size)."""
    flat = np.concatenate([np.ravel(a).astype(dtype, copy=False) for a in arrays])
    whole, views, at = nd.from_numpy(flat, zero_copy=True), [], 0  # flat is read-only from now on
    for a in arrays:
        views.append(whole[at : at + a.size].reshape(a.shape))
        at += a.size
    return views


def _make_block(epochs: int, nb: int, decay_of: tuple[int, ...] | None) -> Any:
    from mxnet import gluon

    class Segment(gluon.HybridBlock):  # type: ignore[misc]
        def __init__(self, minibatches: int) -> None:
            super().__init__()
            self.nb = minibatches

        def hybrid_forward(self, F: Any, theta: Any, M: Any, *decays: Any) -> tuple[Any, Any]:
            steps = epochs * self.nb
            Ms = F.split(M, num_outputs=steps, axis=0, squeeze_axis=True) if steps > 1 else [
                F.reshape(M, shape=(-3, -2))]
            snaps = []
            for i in range(steps):
                decayed = theta if decay_of is None else F.broadcast_mul(theta, decays[decay_of[i % self.nb]])
                theta = F.linalg.gemm(Ms[i], theta, decayed, alpha=-1.0, beta=1.0)
                if (i + 1) % self.nb == 0:
                    snaps.append(theta)
            S = F.reshape(F.stack(*snaps, axis=1), shape=(0, -1))  # (q, epochs * k)
            return S, theta

    block = Segment(nb)
    block.hybridize(static_alloc=True, static_shape=True)
    return block


class GraphSteps(_Kernels):
    """:class:`~wdlib_mxnet.fused.StepProducts` run as cached graphs (:func:`segment`), a few
    graph calls per chunk of epochs; the losses of both sets from one ``dot`` with the
    :meth:`~wdlib.vectorized.Plan.loss_rows` (at most q rows per set), squares summed in NumPy."""

    def __init__(self, nd: Any, plan: vec.Plan) -> None:  # no Z in MXNet: L holds both sets
        fastpath.Kernels.__init__(self, plan)
        self.nd, self.dt = nd, plan.config.dtype
        q, k, sizes = plan.q, plan.k, [t - s for s, t in plan.bounds()]
        self.nb = len(sizes)
        distinct = list(dict.fromkeys(sizes)) if plan.penalized else []  # each size once, in order
        self.decay_of = tuple(distinct.index(m) for m in sizes) if plan.penalized else None
        decays = []
        for m in distinct:  # the (q, k) decay factors of each minibatch size (float64, then cast)
            D = np.ones((q, k))
            D[: plan.decayed_rows] = plan.decay(m)
            decays.append(D)
        L_train, L_test = plan.loss_rows(plan.Z_train), plan.loss_rows(plan.Z_test)
        self.theta, self.M, self.L, *self.D = packed(nd, self.dt, [
            np.repeat(plan.theta0, k, axis=1), plan.step_products().reshape(-1, q, q),
            np.concatenate([L_train, L_test]), *decays])  # L: both sets, one dot
        self.epochs = max(1, min(self.chunk, round(plan.options.graph_steps / self.nb)))
        self.rows = len(L_train)

    def train(self, e0: int, e1: int) -> Any:
        plan, nb, theta, outs = self.plan, self.nb, self.theta, []
        for a in range(e0, e1, self.epochs):
            b = min(e1, a + self.epochs)
            block = segment(b - a, nb, self.decay_of, plan.q, plan.k, self.dt)
            S, theta = block(theta, self.M[a * nb : b * nb], *self.D)
            outs.append(S)
        self.theta = theta
        return self.nd.concat(*outs, dim=1) if len(outs) > 1 else outs[0]  # (q, C * k)

    def context(self) -> Any:
        return np.errstate(over="ignore", invalid="ignore")  # divergence is recorded, not warned about

    def losses(self, S: Any) -> tuple[np.ndarray, np.ndarray]:
        plan, k = self.plan, self.plan.k
        R = self.nd.dot(self.L, S).asnumpy()  # (rows of both sets, C * k)
        np.square(R, out=R)  # in place: a second array of R's size cost more than the squares
        train = R[: self.rows].sum(axis=0, dtype=np.float64) / (2 * plan.n_train)
        test = R[self.rows :].sum(axis=0, dtype=np.float64) / (2 * len(plan.X_test))
        return train.reshape(-1, k), test.reshape(-1, k)
