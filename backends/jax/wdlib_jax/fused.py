"""The JAX backend's fast path: the whole run as one compiled ``lax.scan``.

All epochs (an outer scan) of all minibatches (an inner scan over precomputed index arrays, the short
last batch padded and masked), with the per-epoch train/test evaluation inside the scan, compiled once
per shape by ``jax.jit`` and reused: λ, lr and the batch sizes are traced arguments, so a new λ or lr
never recompiles. The update is the matrix-form SGD of :mod:`wdlib.vectorized` on ``theta`` of shape
(q, k): a λ sweep is the same compiled function with k columns (the batched form ``jax.vmap``
would produce). A column whose loss becomes NaN or infinite keeps the parameters of that epoch, as the
eager loop stops there. float64 runs enable x64 inside the backend's ``context`` only.

Equal to the eager path (``jax.grad`` per minibatch) within rounding, not bitwise: float64 1e-12
relative on w and the test loss, float32 1e-4 (tests/test_fused.py).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from wdlib import vectorized as vec


@functools.cache
def compiled() -> Any:
    """The jitted whole run (one per process; jax caches one executable per shape and dtype)."""
    import jax
    import jax.numpy as jnp

    def run(Z, U, Z_test, theta0, idx, mask, counts, lambdas, lr, batch_size, decayed):
        coef = lr * lambdas[None, :] / batch_size  # (1, k)

        def minibatch(theta, xs):
            rows, keep, m = xs
            r = (Z[rows] @ theta) * keep  # residuals; padded rows of a short last batch contribute 0
            decay = 1 - decayed * (m * coef)  # (q, k)
            return theta * decay - U[rows].T @ r, None

        def epoch(carry, rows_e):
            theta, done = carry
            new, _ = jax.lax.scan(minibatch, theta, (rows_e, mask, counts))
            train = jnp.mean(jnp.square(Z @ new), axis=0) / 2
            test = jnp.mean(jnp.square(Z_test @ new), axis=0) / 2
            theta = jnp.where(done[None, :], theta, new)
            done = done | ~(jnp.isfinite(train) & jnp.isfinite(test))
            return (theta, done), (train, test)

        done0 = jnp.zeros(theta0.shape[1], dtype=bool)
        (theta, _), (train, test) = jax.lax.scan(epoch, (theta0, done0), idx)
        return train, test, theta

    return jax.jit(run)


def fit_plan(plan: vec.Plan) -> vec.Result:
    """Run ``plan`` (call inside the backend's ``context(dtype)``)."""
    import jax.numpy as jnp

    dt = plan.Z_train.dtype
    E, n, bs, q = plan.num_epochs, plan.n_train, plan.batch_size, plan.q
    nb = -(-n // bs)
    pad = nb * bs - n
    idx = np.concatenate([plan.batch_order, np.zeros((E, pad), dtype=plan.batch_order.dtype)], axis=1)
    mask = np.ones((nb * bs, 1), dtype=dt)
    mask[n:] = 0
    counts = np.array([t - s for s, t in plan.bounds()], dtype=dt)
    decayed = np.zeros((q, 1), dtype=dt)
    decayed[: plan.decayed_rows] = 1
    U = plan.U_train if plan.U_train is not None else plan.Z_train * plan.step_rows().astype(dt).T
    args = (
        plan.Z_train, U, plan.Z_test, np.repeat(plan.theta0, plan.k, axis=1),
        idx.reshape(E, nb, bs).astype(np.int32), mask.reshape(nb, bs, 1), counts,
        plan.lambdas.astype(dt), dt.type(plan.config.lr), dt.type(bs), decayed,
    )
    train, test, theta = compiled()(*(jnp.asarray(a) for a in args))
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    rec = vec.Recorder(plan)
    theta = np.asarray(theta)
    rec.add(0, train, test, np.broadcast_to(theta, (E, *theta.shape)))
    return rec.result()
