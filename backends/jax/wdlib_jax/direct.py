"""JAX's fused runs (``wdlib.fit`` of one λ, ``wdlib.train_lambdas`` of many) in as few host steps as
the run allows.

The same run as :class:`wdlib_jax.fused.Scan` (the same compiled minibatch loop, the same layouts,
the state's update ``theta <- D theta - U_B^T Z_B theta``), without what a chapter-sized run spent
around its compiled call: no :class:`wdlib.vectorized.Plan`, no driver; the few arrays the loop reads
made directly (:mod:`wdlib_jax.inputs`; a λ sweep's remembered for data of the same bytes, already on
the device).

The compiled call returns only the snapshots (E, q, k; a sweep's in parts, :data:`PART_BYTES`); the
losses, each column's first non-finite epoch and its parameters there (the Recorder's rule) follow
in NumPy, which multiplies the snapshots by the sets' rows faster than XLA's CPU dot does (one λ: Z
itself; k λ: the QR rows of :func:`wdlib.vectorized.loss_rows`, a few epochs at a time into one
small buffer). A one-λ call's HLO cost (the loop body, counted once) so stays under
:data:`INLINE_FLOPS`, below which XLA's CPU client runs a call in the calling thread instead of
handing it to a worker thread and waiting, which on the 2-core machine cost more than a third of the
chapter's run (benchmarks/results.md).

Used in the "scan", "step_matrices" and "minibatches" strategies when all epochs' snapshots and
residuals fit in one evaluation chunk (``options.eval_chunk_bytes``); other runs go through the plan
(:func:`fit` returns None). Same numbers as the plan's path up to rounding (one λ: the losses from Z
itself rather than from its QR rows): tests/test_jax_direct.py.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from wdlib import fastpath, planning
from wdlib.config import Config
from wdlib.data import Problem

from . import inputs
from .fused import epochs

#: XLA's CPU client runs a computation whose HLO cost analysis counts fewer flops than this in the
#: calling thread, and hands the others to a worker thread (xla/pjrt/cpu/cpu_client.cc,
#: ``cheap_computation_``); a loop's body counts once.
INLINE_FLOPS = 1000

#: At most this many bytes of a λ sweep's residuals at once (:func:`_losses`): few enough that
#: malloc hands the buffer back from memory the process already touched on the previous call, enough
#: epochs at a time that the loop's Python steps stay few (the chapter's 64 λ: 23 epochs, 5 steps).
CHUNK_BYTES = 256 * 1024

#: A sweep's snapshots come out of the compiled call in as few parts as keep each within this many
#: bytes (whole steps of :func:`_losses`; at most :data:`MAX_PARTS` parts): XLA's CPU compiler (jax
#: 0.7) splits the zero fill of a scan output above 512 KiB into tasks for its thread pool, hand-offs
#: on every call that cost more than the fill on the 2-core machine; each part's own fill is another
#: task, so more parts than needed cost too (benchmarks/results.md).
PART_BYTES = 512 * 1024
MAX_PARTS = 8

Result = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]


def _loop(Z: Any, U: Any, order: Any, theta0: Any, decay: Any, bs: int, decayed_rows: int,
          loops: bool, parts: tuple[int, ...] | None) -> Any:
    """Traced: the snapshots (E, q, k) of the run (padding and masking a short last batch) from
    ``theta0`` (q, 1) in every column, or with ``parts`` (epochs per part) a tuple of them, in order."""
    import jax.numpy as jnp

    (E, n), q = order.shape, Z.shape[1]
    nb = -(-n // bs)
    keep = None
    if nb * bs > n:  # a short last batch: padded with row 0, masked
        order = jnp.pad(order, ((0, 0), (0, nb * bs - n)))
        keep = (jnp.arange(nb * bs) < n).astype(Z.dtype).reshape(nb, bs, 1)
    decayed = jnp.arange(q)[:, None] < decayed_rows
    order = order.reshape(E, nb, bs)
    theta = jnp.broadcast_to(theta0, (q, decay.shape[-1]))
    if parts is None:
        return epochs(Z, U, theta, order, keep, decay, decayed, loops)
    out, e = [], 0
    for m in parts:
        out.append(epochs(Z, U, theta, order[e : e + m], keep, decay, decayed, loops))
        theta, e = out[-1][-1], e + m
    return tuple(out)


@functools.cache
def snapshots(batch_size: int, decayed_rows: int, loops: bool) -> Any:
    """``run(Z, U, order, theta0, decay, parts=None) -> (E, q, k)``, the state after every epoch, or
    a tuple of parts of ``parts`` epochs each (static), jit-compiled (one executable per shape, dtype
    and parts); ``loops`` as in :func:`wdlib_jax.fused.compiled`."""
    import jax

    def run(Z: Any, U: Any, order: Any, theta0: Any, decay: Any, parts: Any = None) -> Any:
        return _loop(Z, U, order, theta0, decay, batch_size, decayed_rows, loops, parts)

    return jax.jit(run, static_argnames="parts")


def fit(problem: Problem, config: Config, lambdas: Sequence[float] | None = None) -> Result | None:
    """``(train_loss (k, E), test_loss (k, E), {"w": (k, p, 1), "b": (k, 1)})`` of the runs of
    ``config`` at each λ of ``lambdas`` (default: ``config.lambd`` alone), as
    :meth:`wdlib.Backend.fit_plan` returns them, or None where the plan's path runs them (call inside
    the backend's context and ``fastpath.one_blas_thread``)."""
    lam, dual, strategy = planning.choose(problem, config, lambdas)
    dt = np.dtype(config.dtype)
    (n, p), n_test, E, k = problem.X_train.shape, len(problem.X_test), problem.batch_order.shape[0], len(lam)
    q = n + 3 if dual else p + 2
    if strategy == "blocks" or E * k * (q + n + n_test) * dt.itemsize > fastpath.OPTIONS.eval_chunk_bytes:
        return None
    bs = config.batch_size
    # the decay of each minibatch of m rows, 1 - lr m λ / bs, in float64 as Plan.decay, then cast
    sizes = np.array([min(s + bs, n) - s for s in range(0, n, bs)], dtype=np.float64)[:, None, None]
    decay = (1 - config.lr * sizes * lam / bs).astype(dt)  # (nb, 1, k)
    loops = k > 1 and bs * q * k <= fastpath.OPTIONS.fused_product_max
    if k == 1:  # Z itself, in one product each (a QR would cost more than it saves)
        x = inputs.make(problem, config, dual)
        run = snapshots(bs, x.bias + 1 if config.decay_bias else x.bias, loops)
        S = np.asarray(run(x.Z, x.U, problem.batch_order, x.theta0, decay))  # (E, q, 1)
        with np.errstate(all="ignore"):  # a diverged run's products overflow: its losses are inf or NaN
            train, test = _loss1(x.Z, S[:, :, 0].T)[None], _loss1(x.Zt, S[:, :, 0].T)[None]
        parts = [S]
    else:  # the sets' QR rows, a few epochs at a time; the snapshots in parts of whole such steps
        x = inputs.cached(problem, config, dual)
        assert x.loss_rows is not None and x.device is not None
        run = snapshots(bs, x.bias + 1 if config.decay_bias else x.bias, loops)
        c = _chunk(sum(len(r) for r in x.loss_rows), k, dt.itemsize)
        parts = [np.asarray(s) for s in run(*x.device, decay, parts=_parts(E, c, q * k * dt.itemsize))]
        with np.errstate(all="ignore"):
            train, test = _losses(*x.loss_rows, parts)
            train /= 2 * n
            test /= 2 * n_test
    finite = np.isfinite(train) & np.isfinite(test)  # (k, E)
    thetaT = parts[-1][-1].T.copy()  # (k, q): each column's last state, laid out as S[last, :, range(k)]
    for j in np.flatnonzero(~finite.all(axis=1)):  # the first non-finite epoch's parameters, NaN after
        last = int(np.argmin(finite[j]))
        train[j, last + 1 :] = np.nan
        test[j, last + 1 :] = np.nan
        for S in parts:  # the part holding epoch `last`
            if last < len(S):
                thetaT[j] = S[last, :, j]
                break
            last -= len(S)
    theta = thetaT.T  # (q, k)
    w = x.X.T @ theta[:n] + x.w0 * theta[n : n + 1] if dual else theta[:p]
    return train, test, {"w": np.ascontiguousarray(w.T[:, :, None]), "b": theta[x.bias][:, None].copy()}


def _chunk(rows: int, k: int, itemsize: int) -> int:
    """Epochs of a sweep's residuals (``rows`` each) per step of :func:`_losses`."""
    return max(1, CHUNK_BYTES // (rows * k * itemsize))


def _parts(E: int, chunk: int, state_bytes: int) -> tuple[int, ...]:
    """Epochs per part of a sweep's snapshots: whole steps of :func:`_losses`, each part at most
    :data:`PART_BYTES` unless that makes more than :data:`MAX_PARTS` parts."""
    per = max(1, PART_BYTES // (chunk * state_bytes), -(-E // (chunk * MAX_PARTS)))
    m = per * chunk
    return tuple(min(m, E - e) for e in range(0, E, m))


def _loss1(Z: np.ndarray, S: np.ndarray) -> np.ndarray:
    """(E,) float64: ``||Z theta||^2 / (2 n)`` of every snapshot (a column of S)."""
    R = Z @ S
    return np.einsum("ij,ij->j", R, R).astype(np.float64) / (2 * len(Z))


def _losses(A: np.ndarray, B: np.ndarray, parts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(k, E) float64 each: ``||A theta||^2`` and ``||B theta||^2`` of every snapshot in the parts
    (E_i, q, k) of the snapshots (an array: one part), in steps of :func:`_chunk` epochs counted from
    the first (every part but the last holds whole steps).

    The residuals of a step go into one buffer of at most :data:`CHUNK_BYTES`, their squares summed
    by ``einsum`` (one pass, no squared copy): the whole (E, rows, k) products at once were new memory
    on every call (the chapter's 64 λ: two 1.1 MB arrays), whose first touch, one page fault per 4 KiB
    page, cost more than the products themselves (benchmarks/results.md)."""
    if isinstance(parts, np.ndarray):
        parts = [parts]
    C = np.concatenate([A, B])
    (_, _, k), m, dt = parts[0].shape, len(A), parts[0].dtype
    E = sum(len(S) for S in parts)
    c = _chunk(len(C), k, dt.itemsize)
    sums = np.empty((2, E, k), dt)
    buf = np.empty((min(c, E), len(C), k), dt)
    e = 0
    for S in parts:
        for s in range(0, len(S), c):
            R = buf[: min(c, len(S) - s)]
            np.matmul(C, S[s : s + c], out=R)
            np.einsum("erk,erk->ek", R[:, :m], R[:, :m], out=sums[0, e : e + len(R)])
            np.einsum("erk,erk->ek", R[:, m:], R[:, m:], out=sums[1, e : e + len(R)])
            e += len(R)
    return sums[0].T.astype(np.float64), sums[1].T.astype(np.float64)
