"""JAX's fused runs (``wdlib.fit`` of one λ, ``wdlib.train_lambdas`` of many) in as few host steps as
the run allows.

The same run as :class:`wdlib_jax.fused.Scan` (the same compiled minibatch loop, the same layouts,
the state's update ``theta <- D theta - U_B^T Z_B theta``), without what a chapter-sized run spent
around its compiled call: no :class:`wdlib.vectorized.Plan`, no driver; the few arrays the loop reads
made directly (the dual layout's features as one product with ``[X^T, w0]``).

The compiled call returns only the snapshots (E, q, k); the losses, each column's first non-finite
epoch and its parameters there (the Recorder's rule) follow in NumPy, which multiplies the snapshots
by the sets' rows faster than XLA's CPU dot does (one λ: Z itself; k λ: the QR rows of
:func:`wdlib.vectorized.loss_rows`, a few epochs at a time into one small buffer). A one-λ call's
HLO cost (the loop body, counted once) so stays under :data:`INLINE_FLOPS`, below which XLA's CPU
client runs a call in the calling thread instead of handing it to a worker thread and waiting, which
on the 2-core machine cost more than a third of the chapter's run (benchmarks/results.md).

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

from wdlib import fastpath, planning, vectorized
from wdlib.config import Config
from wdlib.data import Problem

from .fused import epochs

#: XLA's CPU client runs a computation whose HLO cost analysis counts fewer flops than this in the
#: calling thread, and hands the others to a worker thread (xla/pjrt/cpu/cpu_client.cc,
#: ``cheap_computation_``); a loop's body counts once.
INLINE_FLOPS = 1000

#: At most this many bytes of a λ sweep's residuals at once (:func:`_losses`): few enough that
#: malloc hands the buffer back from memory the process already touched on the previous call, enough
#: epochs at a time that the loop's Python steps stay few (the chapter's 64 λ: 23 epochs, 5 steps).
CHUNK_BYTES = 256 * 1024

Result = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]


def _loop(Z: Any, U: Any, order: Any, theta0: Any, decay: Any, bs: int, decayed_rows: int,
          loops: bool) -> Any:
    """Traced: the snapshots (E, q, k) of the run (padding and masking a short last batch)."""
    import jax.numpy as jnp

    (E, n), q = order.shape, Z.shape[1]
    nb = -(-n // bs)
    keep = None
    if nb * bs > n:  # a short last batch: padded with row 0, masked
        order = jnp.pad(order, ((0, 0), (0, nb * bs - n)))
        keep = (jnp.arange(nb * bs) < n).astype(Z.dtype).reshape(nb, bs, 1)
    decayed = jnp.arange(q)[:, None] < decayed_rows
    return epochs(Z, U, theta0, order.reshape(E, nb, bs), keep, decay, decayed, loops)


@functools.cache
def snapshots(batch_size: int, decayed_rows: int, loops: bool) -> Any:
    """``run(Z, U, order, theta0, decay) -> (E, q, k)``, the state after every epoch, jit-compiled (one
    executable per shape and dtype); ``loops`` as in :func:`wdlib_jax.fused.compiled`."""
    import jax

    def run(Z: Any, U: Any, order: Any, theta0: Any, decay: Any) -> Any:
        return _loop(Z, U, order, theta0, decay, batch_size, decayed_rows, loops)

    return jax.jit(run)


def fit(problem: Problem, config: Config, lambdas: Sequence[float] | None = None) -> Result | None:
    """``(train_loss (k, E), test_loss (k, E), {"w": (k, p, 1), "b": (k, 1)})`` of the runs of
    ``config`` at each λ of ``lambdas`` (default: ``config.lambd`` alone), as
    :meth:`wdlib.Backend.fit_plan` returns them, or None where the plan's path runs them (call inside
    the backend's context and ``fastpath.one_blas_thread``)."""
    lam, dual, strategy = planning.choose(problem, config, lambdas)
    dt = np.dtype(config.dtype)
    X, Xt = np.asarray(problem.X_train, dt), np.asarray(problem.X_test, dt)
    (n, p), n_test, E, k = X.shape, len(Xt), problem.batch_order.shape[0], len(lam)
    q = n + 3 if dual else p + 2
    if strategy == "blocks" or E * k * (q + n + n_test) * dt.itemsize > fastpath.OPTIONS.eval_chunk_bytes:
        return None
    bs, step = config.batch_size, config.lr / config.batch_size
    w0 = np.asarray(problem.w0, dt).reshape(-1, 1)
    theta0 = np.zeros((q, k), dt)
    if dual:  # Z = [X X^T, X w0, 1, -y], theta = [a; alpha; b; 1]
        B = np.empty((p, n + 1), dt)
        B[:, :n] = X.T
        B[:, n:] = w0
        Z, Zt = _features(X, B, problem.y_train), _features(Xt, B, problem.y_test)
        U = np.zeros((n, q), dt)
        U[np.arange(n), np.arange(n)] = step
        U[:, n + 1] = step
        theta0[n], theta0[n + 2] = 1, 1
        bias = n + 1
    else:  # Z = [X, 1, -y], theta = [w; b; 1]
        Z = planning.augment(X, np.asarray(problem.y_train, dt))
        Zt = planning.augment(Xt, np.asarray(problem.y_test, dt))
        scale = np.full(q, step, dtype=dt)
        scale[-1] = 0
        U = Z * scale
        theta0[:p], theta0[-1] = w0, 1
        bias = p
    theta0[bias] = np.ravel(problem.b0)[0]
    # the decay of each minibatch of m rows, 1 - lr m λ / bs, in float64 as Plan.decay, then cast
    sizes = np.array([min(s + bs, n) - s for s in range(0, n, bs)], dtype=np.float64)[:, None, None]
    decay = (1 - config.lr * sizes * lam / bs).astype(dt)  # (nb, 1, k)
    decayed = bias + 1 if config.decay_bias else bias
    loops = k > 1 and bs * q * k <= fastpath.OPTIONS.fused_product_max
    S = np.asarray(snapshots(bs, decayed, loops)(Z, U, problem.batch_order, theta0, decay))  # (E, q, k)
    with np.errstate(all="ignore"):  # a diverged run's products overflow: its losses are inf or NaN
        if k == 1:  # Z itself, in one product each (a QR would cost more than it saves)
            train, test = _loss1(Z, S[:, :, 0].T)[None], _loss1(Zt, S[:, :, 0].T)[None]
        else:  # the sets' QR rows, a few epochs at a time
            train, test = _losses(vectorized.loss_rows(Z), vectorized.loss_rows(Zt), S)
            train /= 2 * n
            test /= 2 * n_test
    finite = np.isfinite(train) & np.isfinite(test)  # (k, E)
    last = np.full(k, E - 1)
    for j in np.flatnonzero(~finite.all(axis=1)):  # the first non-finite epoch's parameters, NaN after
        last[j] = np.argmin(finite[j])
        train[j, last[j] + 1 :] = np.nan
        test[j, last[j] + 1 :] = np.nan
    theta = S[last, :, np.arange(k)].T  # (q, k)
    w = X.T @ theta[:n] + w0 * theta[n : n + 1] if dual else theta[:p]
    return train, test, {"w": np.ascontiguousarray(w.T[:, :, None]), "b": theta[bias][:, None].copy()}


def _features(A: np.ndarray, B: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[A B, 1, -y]``: the dual layout's rows of examples A."""
    Z = np.empty((A.shape[0], B.shape[1] + 2), A.dtype)
    np.matmul(A, B, out=Z[:, :-2])
    Z[:, -2] = 1
    Z[:, -1] = -np.ravel(y)
    return Z


def _loss1(Z: np.ndarray, S: np.ndarray) -> np.ndarray:
    """(E,) float64: ``||Z theta||^2 / (2 n)`` of every snapshot (a column of S)."""
    R = Z @ S
    return np.einsum("ij,ij->j", R, R).astype(np.float64) / (2 * len(Z))


def _losses(A: np.ndarray, B: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, E) float64 each: ``||A theta||^2`` and ``||B theta||^2`` of every snapshot in S (E, q, k).

    The residuals of a few epochs at a time go into one buffer of at most :data:`CHUNK_BYTES`, their
    squares summed by ``einsum`` (one pass, no squared copy): the whole (E, rows, k) products at once
    were new memory on every call (the chapter's 64 λ: two 1.1 MB arrays), whose first touch, one
    page fault per 4 KiB page, cost more than the products themselves (benchmarks/results.md)."""
    C = np.concatenate([A, B])
    (E, _, k), m = S.shape, len(A)
    c = max(1, CHUNK_BYTES // (len(C) * k * S.itemsize))
    sums = np.empty((2, E, k), S.dtype)
    buf = np.empty((min(c, E), len(C), k), S.dtype)
    for e in range(0, E, c):
        R = buf[: min(c, E - e)]
        np.matmul(C, S[e : e + c], out=R)
        np.einsum("erk,erk->ek", R[:, :m], R[:, :m], out=sums[0, e : e + c])
        np.einsum("erk,erk->ek", R[:, m:], R[:, m:], out=sums[1, e : e + c])
    return sums[0].T.astype(np.float64), sums[1].T.astype(np.float64)

