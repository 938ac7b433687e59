"""The JAX backend's fast path: the whole run as one compiled ``lax.scan``.

All epochs (an outer scan) of all minibatches (an inner scan over precomputed index arrays, the short
last batch padded and masked), then the per-epoch train and test losses of every epoch's parameters
in one batched product after the scan: one ``jax.jit`` call per chunk of epochs (the whole chapter is
one), compiled once per shape and reused. λ and lr enter only through the per-minibatch decay
factors and the update matrix, which are arguments, so a new λ or lr never recompiles. The update is
the matrix-form SGD of :mod:`wdlib.vectorized` on ``theta`` of shape (q, k): a λ sweep is the same
compiled function with k columns (the batched form ``jax.vmap`` would produce). Where a column's loss
first becomes NaN or infinite, the driver (:mod:`wdlib.fastpath`) keeps that epoch's parameters, as
the eager loop stops there. float64 runs enable x64 inside the backend's ``context`` only.

A run whose snapshots fit one evaluation chunk (the chapter's, of one λ or many) skips the plan and
this driver: :mod:`wdlib_jax.direct` runs the same minibatch loop (:func:`epochs`); this module
runs large data and longer runs, and any plan given to ``fit_plan``.

Arguments are passed to the compiled function as NumPy arrays (jit's C++ dispatch transfers them;
``jnp.asarray`` on each first cost more than the whole chapter's run).

Equal to the eager path (``jax.grad`` per minibatch) within rounding, not bitwise: float64 1e-12
relative on w and the test loss, float32 1e-4 (tests/test_fused.py).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from wdlib import fastpath
from wdlib import vectorized as vec


@functools.cache
def compiled(loops: bool) -> Any:
    """The jitted chunk of epochs, one per product form (``loops``: the minibatch products as
    broadcast multiply + sum, which XLA fuses into one loop, instead of dots, which call a GEMM
    routine whose fixed cost dominates small batched products: see ``options.fused_product_max``);
    jax caches one executable per shape and dtype."""
    import jax
    import jax.numpy as jnp

    def losses(L: Any, n: Any, snaps: Any) -> Any:  # (C, k): ||L theta||^2 / (2 n) for every snapshot
        return jnp.sum(jnp.square(jnp.einsum("nq,cqk->nck", L, snaps)), axis=0) / (2 * n)

    def run(Z, U, theta, idx, keep, decay, decayed, L_train, L_test, n_train, n_test):
        snaps = epochs(Z, U, theta, idx, keep, decay, decayed, loops)
        # one output array (one transfer to the host instead of three): the losses, then the snapshots
        return jnp.concatenate([losses(L_train, n_train, snaps), losses(L_test, n_test, snaps),
                                snaps.reshape(snaps.shape[0], -1)], axis=1)

    return jax.jit(run)


def epochs(Z: Any, U: Any, theta: Any, idx: Any, keep: Any, decay: Any, decayed: Any, loops: bool) -> Any:
    """Traced: the snapshots (E, q, k) after each epoch of the minibatches ``idx`` (E, nb, bs) from
    ``theta`` (q, k), as an outer scan over epochs of an inner scan over minibatches. ``keep`` (nb, bs, 1)
    zeroes the padded rows of a short last batch (None: no short batch), ``decay`` (nb, 1, k) is each
    minibatch's factor on the ``decayed`` rows (a (q, 1) mask); ``loops`` as in :func:`compiled`."""
    import jax
    import jax.numpy as jnp

    def minibatch(theta: Any, xs: Any) -> tuple[Any, None]:
        rows, kp, d = xs
        Zb, Ub = Z[rows], U[rows]
        if loops:
            r = jnp.sum(Zb[:, :, None] * theta[None], axis=1)
        else:
            r = Zb @ theta  # residuals
        if kp is not None:
            r = r * kp  # padded rows of a short last batch contribute 0
        g = jnp.sum(Ub[:, :, None] * r[:, None, :], axis=0) if loops else Ub.T @ r
        return jnp.where(decayed, theta * d, theta) - g, None

    def epoch(theta: Any, rows_e: Any) -> tuple[Any, Any]:
        theta, _ = jax.lax.scan(minibatch, theta, (rows_e, keep, decay))
        return theta, theta

    return jax.lax.scan(epoch, theta, idx)[1]


def fit_plan(plan: vec.Plan) -> vec.Result:
    """Run ``plan`` (call inside the backend's ``context(dtype)``)."""
    return fastpath.run(Scan(plan))


class Scan(fastpath.Kernels):
    """Every strategy as the one compiled scan over minibatches: inside it, the two small products of
    a step cost no more than the one of a step matrix, so "step_matrices" and "scan" plans run it
    too (XLA's batched (q, q) products on CPU cost more than the whole loop: benchmarks/results.md,
    "Tuning measurements"), and
    "blocks" plans (large data) run it on JAX's own ``[X, 1, -y]`` and U. The losses come out of
    the same compiled call as the snapshots."""

    def __init__(self, plan: vec.Plan) -> None:
        super().__init__(plan)
        dt = plan.Z_train.dtype
        E, n, bs, q, k = plan.num_epochs, plan.n_train, plan.batch_size, plan.q, plan.k
        nb = -(-n // bs)
        idx = np.zeros((E, nb * bs), dtype=np.int32)
        idx[:, :n] = plan.batch_order
        self.idx = idx.reshape(E, nb, bs)
        self.keep = None
        if nb * bs > n:
            keep = np.ones((nb * bs, 1), dtype=dt)
            keep[n:] = 0
            self.keep = keep.reshape(nb, bs, 1)
        ones = np.ones((1, k), dtype=dt)
        self.decay = np.stack([plan.decay(t - s).astype(dt) if plan.penalized else ones
                               for s, t in plan.bounds()])
        self.decayed = np.arange(q)[:, None] < plan.decayed_rows
        self.U = plan.U_train if plan.U_train is not None else plan.Z_train * plan.step_rows().astype(dt).T
        self.theta = np.repeat(plan.theta0, k, axis=1)
        # the losses' matrices with at most q rows (the chapter's 100 test rows become 23: see loss_rows)
        self.L_train, self.L_test = plan.loss_rows(plan.Z_train), plan.loss_rows(plan.Z_test)
        self.counts = dt.type(n), dt.type(len(plan.Z_test))
        self.run = compiled(k > 1 and bs * q * k <= plan.options.fused_product_max)

    def train(self, e0: int, e1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = np.asarray(self.run(self.plan.Z_train, self.U, self.theta, self.idx[e0:e1], self.keep,
                                  self.decay, self.decayed, self.L_train, self.L_test, *self.counts))
        q, k = self.theta.shape
        snaps = out[:, 2 * k :].reshape(len(out), q, k)
        self.theta = snaps[-1]
        return out[:, :k].astype(np.float64), out[:, k : 2 * k].astype(np.float64), snaps

    def losses(self, out: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return out[0], out[1]

    def snapshots(self, out: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        return out[2]
