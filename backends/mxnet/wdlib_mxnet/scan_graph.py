"""MXNet's one-λ "scan" runs (the chapter's) as one cached graph per chunk of epochs: the blocked
scan of :class:`wdlib_mxnet.fused.Scan` and the loss residuals in one ``CachedOp`` call.

Why: imperatively every ``nd`` operator costs its Python front end and an engine push (tens of
microseconds), and every ``nd.array`` conversion or ``asnumpy`` another; inside a cached graph a node
costs a few microseconds (static memory, no Python per node). So a chunk is one array in (every
input packed into one flat NumPy array, handed over without a copy by ``nd.from_numpy``), one graph
call and one ``asnumpy`` out; the graph is built once per process, thread and shape (:func:`graph`),
so a second run of the same shapes pays only the call.

The step matrices stay NumPy's (:meth:`wdlib.vectorized.Plan.step_matrices`, laid out minibatch-major
with the epochs of each block side by side, as ``Scan`` lays them): made in the graph from gathered
rows (``take``, a ``batch_dot`` of the (q, bs) x (bs, q) products, the decay added by a broadcast)
they cost more than NumPy's scatter (benchmarks/results.md). The graph then runs ``Scan``'s operators
in ``Scan``'s order, and one more ``dot`` gives every snapshot's residuals with the loss rows of both
sets, output next to the snapshots so one ``asnumpy`` returns both.

Numbers: the same operators on the same operands as :class:`~wdlib_mxnet.fused.Scan`, so the same
bits (tests/test_mxnet_graph.py compares the two).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from wdlib import fastpath
from wdlib import vectorized as vec
from wdlib.scan import block_size

_local = threading.local()
#: False: :class:`wdlib_mxnet.fused.Scan`'s operators one by one instead (tests compare the two).
ENABLED = True
#: Graphs kept per thread (each holds its static memory; the oldest goes past this).
MAX_GRAPHS = 16


def graph(key: tuple[int, ...], dtype: str) -> Any:
    """The ``CachedOp`` for ``key = (q, rows, nb, C, G)`` (:func:`_symbol`), made once per
    thread, key and dtype (the last ``MAX_GRAPHS`` kept)."""
    cache = getattr(_local, "graphs", None)
    if cache is None:
        cache = _local.graphs = {}
    full = (*key, dtype)
    if full not in cache:
        import mxnet as mx

        if len(cache) >= MAX_GRAPHS:
            del cache[next(iter(cache))]
        cache[full] = mx.nd.CachedOp(_symbol(*key), flags=[("static_alloc", True), ("static_shape", True)])
    return cache[full]


def _symbol(q: int, rows: int, nb: int, C: int, G: int) -> Any:
    """The chunk's graph on one flat input ``x = steps, L^T, theta`` (:meth:`GraphScan.train`); its
    output (C, q + rows): each epoch's state, then its residuals with the loss rows."""
    import mxnet as mx

    F = mx.sym
    B = -(-C // G)
    sizes = [nb * G * B * q * q, q * rows, q]
    x, parts, at = F.var("x"), [], 0
    for size in sizes:
        parts.append(F.slice_axis(x, axis=0, begin=at, end=at + size))
        at += size
    A = F.reshape(parts[0], shape=(nb, G * B, q, q))  # [j, g * B + b]: minibatch j of epoch b * G + g
    L, theta = F.reshape(parts[1], shape=(q, rows)), F.reshape(parts[2], shape=(q, 1))
    steps = _parts(F, A, nb, (G * B, q, q))
    P = steps[0]
    for j in range(1, nb):
        P = F.batch_dot(steps[j], P)
    Ps = F.split(P, num_outputs=G, axis=0) if G > 1 else [P]  # each (B, q, q)
    Q = [Ps[0]]
    for g in range(1, G):
        Q.append(F.batch_dot(Ps[g], Q[-1]))
    thetas = [theta]  # the state before each block: one small dot per block with its total product
    last = _parts(F, Q[-1], B, (q, q))
    for b in range(B - 1):
        thetas.append(F.dot(last[b], thetas[-1]))
    prefix = F.reshape(F.stack(*Q, axis=1) if G > 1 else Q[0], shape=(B, G * q, q))
    start = F.stack(*thetas) if B > 1 else F.reshape(theta, shape=(1, q, 1))
    S = F.reshape(F.batch_dot(prefix, start), shape=(B * G, q))
    if B * G > C:
        S = F.slice_axis(S, axis=0, begin=0, end=C)
    return F.concat(S, F.dot(S, L), dim=1)


def _parts(F: Any, a: Any, n: int, shape: tuple[int, ...]) -> list[Any]:
    """``a``'s ``n`` parts along its first axis, each of ``shape`` (that axis dropped)."""
    if n == 1:
        return [F.reshape(a, shape=shape)]
    return list(F.split(a, num_outputs=n, axis=0, squeeze_axis=True))


class GraphScan(fastpath.Kernels):
    """:class:`wdlib_mxnet.fused.Scan` as one cached graph call per chunk of epochs (:func:`graph`);
    the losses summed in NumPy from the graph's residuals, as ``Scan`` does."""

    def __init__(self, nd: Any, plan: vec.Plan) -> None:
        super().__init__(plan)
        self.nd, self.dt = nd, plan.config.dtype
        self.A, self.G = plan.step_matrices(), block_size(plan)
        L_train, L_test = plan.loss_rows(plan.Z_train), plan.loss_rows(plan.Z_test)
        self.L = np.concatenate([L_train, L_test]).T.ravel()  # (q, rows of both sets): one product
        self.rows, self.theta = len(L_train), plan.theta0.ravel()

    def train(self, e0: int, e1: int) -> Any:
        q, C, G = self.plan.q, e1 - e0, min(self.G, e1 - e0)
        A, B, nb = self.A[e0:e1], -(-C // G), self.A.shape[1]
        x = np.empty(nb * G * B * q * q + len(self.L) + q, dtype=A.dtype)  # the graph's one input
        laid = x[: nb * G * B * q * q].reshape(nb, G, B, q, q)  # [j, g, b] = A[b * G + g, j]
        if B * G > C:  # zero-padded to whole blocks
            A = np.concatenate([A, np.zeros((B * G - C, *A.shape[1:]), dtype=A.dtype)])
        laid[...] = A.reshape(B, G, nb, q, q).transpose(2, 1, 0, 3, 4)
        x[len(x) - q - len(self.L) : len(x) - q] = self.L
        x[len(x) - q :] = self.theta
        op = graph((q, len(self.L) // q, nb, C, G), self.dt)
        out = op(self.nd.from_numpy(x, zero_copy=True)).asnumpy()  # x is not used after this
        self.theta = out[C - 1, :q].copy()
        return out

    def context(self) -> Any:
        return np.errstate(over="ignore", invalid="ignore")  # divergence is recorded, not warned about

    def losses(self, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q, r = self.plan.q, self.rows
        R = np.square(out[:, q:])  # (C, rows of L_train + L_test)
        train = R[:, :r].sum(axis=1, dtype=np.float64) / (2 * self.plan.n_train)
        test = R[:, r:].sum(axis=1, dtype=np.float64) / (2 * len(self.plan.X_test))
        return train[:, None], test[:, None]

    def snapshots(self, out: np.ndarray) -> np.ndarray:
        return out[:, : self.plan.q, None]
