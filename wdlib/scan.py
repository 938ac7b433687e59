"""The "scan" strategy of :mod:`wdlib.vectorized`: a one-column run's snapshots from products of its
step matrices, formed by a few batched matrix products instead of one small product per minibatch.

With one λ every minibatch's update is one (q, q) matrix ``A`` (``theta <- A theta``,
:meth:`wdlib.vectorized.Plan.step_matrices`), so the parameters after epoch e are
``P_e ... P_1 theta0`` with the epoch matrices ``P_e = A_{e,nb-1} ... A_{e,0}``. A backend whose
calls cost more than a (q, q) product (every framework here, for the chapter's q = 23) forms them as

1. the epoch matrices: ``nb - 1`` batched products over all epochs at once (``P <- A_j P``);
2. a blocked prefix product over epochs (:func:`block_size` epochs a block): within every block at
   once, ``Q_j = P_j Q_{j-1}``, ``block - 1`` batched products;
3. the blocks one after another: the snapshots of block b are ``Q_b theta_b`` (one batched
   matrix-vector product), ``theta_{b+1}`` its last one.

That is (nb - 1) + (block - 1) + blocks calls (22 for the chapter's 100 epochs of 4 minibatches,
against 400), at about one (q, q) product per minibatch. A backend with a still higher per-call cost
may use a log-depth scan instead (MXNet: :mod:`wdlib_mxnet.fused`).

Rounding: the products are the eager loop's operations reassociated, each snapshot at most
``nb + block`` products deep from the last sequentially carried state, so the error does not grow
with the number of epochs beyond the eager loop's own (tests/test_scan.py measures it, float32 and
float64, converging and diverging runs). A non-finite state makes every later snapshot non-finite,
so divergence is recorded at the same epoch as by the eager loop (the driver keeps that epoch's
parameters: :class:`wdlib.fastpath.Recorder`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .vectorized import Plan


def block_size(plan: Plan) -> int:
    """Epochs per block (``options.scan_block``, or about sqrt(num_epochs): the fewest calls)."""
    if plan.options.scan_block > 0:
        return min(plan.options.scan_block, plan.num_epochs)
    return max(1, round(math.sqrt(plan.num_epochs)))


def negated_dual_products(plan: Plan) -> np.ndarray:
    """``-U_B^T Z_B`` of every minibatch in the dual layout (E, nb, q, q), without a matrix product:
    there ``U_B^T Z_B`` is ``(lr / bs) Z_i`` in the row of each example i of the minibatch and their
    sum in b's row (``U = (lr/bs) [I, 0, 1, 0]``), scattered in place (the numbers of
    :meth:`~wdlib.vectorized.Plan.step_products` up to the order of the b row's sum).
    :meth:`~wdlib.vectorized.Plan.step_matrices` adds the decay on the diagonal."""
    E, n, q = plan.num_epochs, plan.n_train, plan.q
    bounds = plan.bounds()
    nb = len(bounds)
    Z = plan.Z_train
    step = Z.dtype.type(plan.step)
    order = plan.batch_order
    A = np.zeros((E, nb, q, q), dtype=Z.dtype)
    rows = np.negative(Z, dtype=Z.dtype)
    rows *= step
    gathered = rows[order]  # (E, n, q): -(lr/bs) Z_i in the epoch's order
    which = np.repeat(np.arange(nb), [t - s for s, t in bounds])  # each position's minibatch
    flat = (np.arange(E)[:, None] * nb + which[None, :]) * q + order
    A.reshape(E * nb * q, q)[flat.ravel()] = gathered.reshape(E * n, q)
    A[:, :, plan.bias_row, :] += np.add.reduceat(gathered, [s for s, _ in bounds], axis=1)
    return A
