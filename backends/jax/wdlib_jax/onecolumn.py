"""JAX's one-λ fused runs (``wdlib.fit`` of one config) in as few host steps as the run allows.

The same run as :class:`wdlib_jax.fused.Scan` (the same compiled minibatch loop, the same layouts,
the state's update ``theta <- D theta - U_B^T Z_B theta``), without what a chapter-sized run spent
around its compiled call: no :class:`wdlib.vectorized.Plan`, no driver; the few arrays the loop reads
made directly (the dual layout's features as one product with ``[X^T, w0]``); the losses and the
divergence check after the call in NumPy. The compiled call returns only the snapshots: its HLO cost
(the loop body, counted once) stays under the :data:`INLINE_FLOPS` below which XLA's CPU client runs a call in
the calling thread instead of handing it to a worker thread and waiting, which on the 2-core machine
cost more than a third of the chapter's run (benchmarks/results.md). The products with every
snapshot, which would put it above, cost a few microseconds in NumPy.

Used for one column in the "scan", "step_matrices" and "minibatches" strategies when all epochs'
snapshots and residuals fit in one evaluation chunk (``options.eval_chunk_bytes``); other runs go
through the plan (:func:`fit` returns None). Same numbers as the plan's path up to rounding (the
losses from Z itself rather than from its QR rows): tests/test_jax_onecolumn.py.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from wdlib import fastpath, planning
from wdlib.config import Config
from wdlib.data import Problem

from .fused import epochs

#: XLA's CPU client runs a computation whose HLO cost analysis counts fewer flops than this in the
#: calling thread, and hands the others to a worker thread (xla/pjrt/cpu/cpu_client.cc,
#: ``cheap_computation_``); a loop's body counts once.
INLINE_FLOPS = 1000

@functools.cache
def snapshots(batch_size: int, decayed_rows: int) -> Any:
    """``run(Z, U, order, theta0, decay) -> (E, q)``: the state after every epoch, jit-compiled (one
    executable per shape and dtype)."""
    import jax
    import jax.numpy as jnp

    def run(Z: Any, U: Any, order: Any, theta0: Any, decay: Any) -> Any:
        (E, n), q, bs = order.shape, Z.shape[1], batch_size
        nb = -(-n // bs)
        keep = None
        if nb * bs > n:  # a short last batch: padded with row 0, masked
            order = jnp.pad(order, ((0, 0), (0, nb * bs - n)))
            keep = (jnp.arange(nb * bs) < n).astype(Z.dtype).reshape(nb, bs, 1)
        decayed = jnp.arange(q)[:, None] < decayed_rows
        return epochs(Z, U, theta0, order.reshape(E, nb, bs), keep, decay, decayed, False)[:, :, 0]

    return jax.jit(run)


def fit(problem: Problem, config: Config) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None:
    """``(train_loss (1, E), test_loss (1, E), {"w": (1, p, 1), "b": (1, 1)})`` of the one-λ run, as
    :meth:`wdlib.Backend.fit_plan` returns it, or None where the plan's path runs it (call inside the
    backend's context and ``fastpath.one_blas_thread``)."""
    lam, dual, strategy = planning.choose(problem, config)
    dt = np.dtype(config.dtype)
    X, Xt = np.asarray(problem.X_train, dt), np.asarray(problem.X_test, dt)
    (n, p), n_test, E = X.shape, len(Xt), problem.batch_order.shape[0]
    q = n + 3 if dual else p + 2
    if strategy == "blocks" or E * (q + n + n_test) * dt.itemsize > fastpath.OPTIONS.eval_chunk_bytes:
        return None
    bs, step = config.batch_size, config.lr / config.batch_size
    w0 = np.asarray(problem.w0, dt).reshape(-1, 1)
    theta0 = np.zeros((q, 1), dt)
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
        Z, Zt = planning.augment(X, np.asarray(problem.y_train, dt)), planning.augment(
            Xt, np.asarray(problem.y_test, dt))
        scale = np.full(q, step, dtype=dt)
        scale[-1] = 0
        U = Z * scale
        theta0[:p], theta0[-1] = w0, 1
        bias = p
    theta0[bias] = np.ravel(problem.b0)[0]
    # the decay of each minibatch of m rows, 1 - lr m λ / bs, in float64 as Plan.decay, then cast
    sizes = [min(s + bs, n) - s for s in range(0, n, bs)]
    decay = np.array([1 - config.lr * m * lam[0] / bs for m in sizes], dt)[:, None, None]
    run = snapshots(bs, bias + 1 if config.decay_bias else bias)
    S = np.asarray(run(Z, U, problem.batch_order, theta0, decay)).T  # (q, E)
    with np.errstate(all="ignore"):  # a diverged run's products overflow: its losses are inf or NaN
        train, test = _loss(Z, S), _loss(Zt, S)
    finite = np.isfinite(train) & np.isfinite(test)
    last = E - 1
    if not finite.all():  # keep the first non-finite epoch's parameters, NaN after it (as the Recorder)
        last = int(np.argmin(finite))
        train[last + 1 :] = np.nan
        test[last + 1 :] = np.nan
    theta = S[:, last]
    w = X.T @ theta[:n] + w0[:, 0] * theta[n] if dual else theta[:p].copy()
    return train[None], test[None], {"w": w.reshape(1, p, 1), "b": theta[bias : bias + 1].reshape(1, 1)}


def _features(A: np.ndarray, B: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[A B, 1, -y]``: the dual layout's rows of examples A."""
    Z = np.empty((A.shape[0], B.shape[1] + 2), A.dtype)
    np.matmul(A, B, out=Z[:, :-2])
    Z[:, -2] = 1
    Z[:, -1] = -np.ravel(y)
    return Z


def _loss(Z: np.ndarray, S: np.ndarray) -> np.ndarray:
    """(E,) float64: ``||Z theta||^2 / (2 n)`` of every snapshot (a column of S)."""
    R = Z @ S
    return np.einsum("ij,ij->j", R, R).astype(np.float64) / (2 * len(Z))
