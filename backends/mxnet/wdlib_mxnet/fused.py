"""The MXNet backend's fast path: the matrix-form SGD of :mod:`wdlib.vectorized` in ``nd`` operators.

Every MXNet operator costs tens of microseconds of engine overhead, so the fast path issues as few as
it can, and no ``autograd.record``: per minibatch ``nd.dot(Z_B, theta)`` and one
``nd.linalg.gemm(U_B^T, r, theta, alpha=-1)`` (plus one ``broadcast_mul`` for the decay when λ > 0)
on minibatches gathered up front and addressed as views, or, for one small column, one ``nd.dot``
with that minibatch's update matrix (:meth:`wdlib.vectorized.Plan.step_matrices`, split into one
array per minibatch by a single ``nd.split``); losses are evaluated per chunk of epochs with one
product over the concatenated snapshots. λ-vectorized: ``theta`` is (q, k) (primal or dual
form, see :class:`wdlib.vectorized.Plan`).

Equal to the eager path within rounding, not bitwise (the update is regrouped): float64 1e-12
relative on w and the test loss, float32 1e-4 (tests/test_fused.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wdlib import vectorized as vec


def _losses(nd: Any, Z: Any, S: Any, C: int, k: int) -> np.ndarray:
    R = nd.dot(Z, S)
    return (nd.mean(R * R, axis=0) / 2).asnumpy().astype(np.float64).reshape(C, k)


def fit_plan(plan: vec.Plan) -> vec.Result:
    from mxnet import nd

    dt = plan.config.dtype
    k, E, bs, q, n = plan.k, plan.num_epochs, plan.batch_size, plan.q, plan.n_train
    bounds = plan.bounds()
    nb = len(bounds)
    Z = nd.array(plan.Z_train, dtype=dt)
    Z_test = nd.array(plan.Z_test, dtype=dt)
    theta = nd.array(np.repeat(plan.theta0, k, axis=1), dtype=dt)
    A = plan.step_matrices()
    if A is not None:  # the decay is inside each minibatch's matrix
        steps = nd.split(nd.array(A.reshape(-1, q, q), dtype=dt), num_outputs=E * nb, axis=0,
                         squeeze_axis=True)
        steps = [steps] if E * nb == 1 else list(steps)
    decay = None
    if A is None and plan.penalized:
        decay = {}
        for s, t in bounds:
            D = np.ones((q, k))
            D[: plan.decayed_rows] = plan.decay(t - s)
            decay[t - s] = nd.array(D, dtype=dt)
    U = plan.U_train
    gathered = (A is None and U is not None and n % bs == 0
                and 2 * E * n * q * plan.Z_train.itemsize <= vec.GATHER_BYTES)
    if gathered:
        Zb_all = nd.array(plan.Z_train[plan.batch_order].reshape(E * nb, bs, q), dtype=dt)
        Ub = U[plan.batch_order].reshape(E * nb, bs, q).transpose(0, 2, 1)  # (lr / bs) U_B^T
        Ub_all = nd.array(np.ascontiguousarray(Ub), dtype=dt)
    elif A is None:
        orders = nd.array(plan.batch_order, dtype="int64")
        step_rows = nd.array(plan.step_rows(), dtype=dt)
        U_nd = None if U is None else nd.array(U, dtype=dt)
    C = plan.eval_chunk()
    snaps: list[Any] = []
    rec = vec.Recorder(plan)
    dot, gemm = nd.dot, nd.linalg.gemm
    for e in range(E):
        if A is not None:
            for i in range(e * nb, (e + 1) * nb):
                theta = dot(steps[i], theta)
        elif gathered:
            for i in range(e * nb, (e + 1) * nb):
                r = dot(Zb_all[i], theta)
                if decay is not None:
                    theta = theta * decay[bs]
                theta = gemm(Ub_all[i], r, theta, alpha=-1.0, beta=1.0)
        else:
            order = orders[e]
            for s, t in bounds:
                Zb = nd.take(Z, order[s:t])
                r = dot(Zb, theta)
                if decay is not None:
                    theta = theta * decay[t - s]
                if U_nd is None:  # primal form: U = (lr / bs) Z with the constant column 0
                    theta = theta - nd.broadcast_mul(dot(Zb, r, transpose_a=True), step_rows)
                else:
                    theta = theta - dot(nd.take(U_nd, order[s:t]), r, transpose_a=True)
        snaps.append(theta)
        if len(snaps) == C or e == E - 1:
            c = len(snaps)
            S = nd.concat(*snaps, dim=1) if c > 1 else snaps[0]  # (q, c * k)
            rec.add(e + 1 - c, _losses(nd, Z, S, c, k), _losses(nd, Z_test, S, c, k),
                    S.asnumpy().reshape(q, c, k).transpose(1, 0, 2))
            snaps = []
    return rec.result()
