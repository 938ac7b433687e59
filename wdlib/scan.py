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


def dual_step_matrices(plan: Plan) -> np.ndarray:
    """Every minibatch's update matrix ``A = D_m - U_B^T Z_B`` in the dual layout, (E, nb, q, q),
    without a matrix product: there ``U_B^T Z_B`` is ``(lr / bs) Z_i`` in the row of each example i of
    the minibatch and their sum in b's row (``U = (lr/bs) [I, 0, 1, 0]``), so A is the decay's diagonal
    ``D_m`` with those rows put in (:meth:`~wdlib.vectorized.Plan.step_matrices`).

    Made from tables: each minibatch's D_m copied in by one broadcast, its examples' rows (each with
    its diagonal entry added, from a small (nb, n, q) table) by one gather and one scatter, b's rows
    summed over whole (E, nb, q) slices. The numbers are those of scattering ``-(lr/bs) Z_i`` into
    zeros, adding ``np.add.reduceat``'s sums of the b rows and then the diagonal, bit for bit
    (tests/test_scan.py): reduceat adds a minibatch's first row to the sequential sum of the others
    (minibatches of at most 8 rows; a larger one keeps reduceat itself)."""
    E, n, q = plan.num_epochs, plan.n_train, plan.q
    bounds = plan.bounds()
    nb, bias = len(bounds), plan.bias_row
    dt = plan.Z_train.dtype
    rows = np.negative(plan.Z_train)
    rows *= dt.type(plan.step)  # -(lr/bs) Z_i, each example's row of -U_B^T Z_B
    bs = plan.batch_size
    d = plan.decay_diagonals().astype(dt)
    diag = np.arange(q)
    D = np.zeros((nb, q, q), dtype=dt)
    D[:, diag, diag] = d
    A = np.empty((E, nb, q, q), dtype=dt)
    A[...] = D  # the rows of the examples outside the minibatch, of a and b's decay, and the last one
    table = np.empty((nb, n, q), dtype=dt)  # an example's row in minibatch j: its diagonal + d_j
    table[...] = rows
    table[:, diag[:n], diag[:n]] += d[:, :n]
    order = plan.batch_order
    which = np.arange(n) // bs  # each position's minibatch
    flat = (np.arange(E)[:, None] * nb + which) * q + order
    A.reshape(E * nb * q, q)[flat.ravel()] = table.reshape(nb * n, q).take((which * n + order).ravel(), 0)
    _bias_rows(rows, order, bounds, bs, A[:, :, bias])
    A[:, :, bias, bias] += d[:, bias]
    return A


def _bias_rows(rows: np.ndarray, order: np.ndarray, bounds: list[tuple[int, int]], bs: int,
               out: np.ndarray) -> None:
    """``out`` (E, nb, q) = ``0 + np.add.reduceat(rows[order], starts, axis=1)``, the sums of each
    minibatch's rows as reduceat adds them: its first row plus the others summed one after another
    (NumPy's pairwise sum of fewer than 8 numbers), each term a whole (E, ...) slice of one gather.
    Adding 0 first to the others' sum gives the zeros' sign of ``0 + ...``: never -0.0."""
    E, n = order.shape
    zero = rows.dtype.type(0)
    if bs > 8:
        np.add(np.add.reduceat(rows.take(order, 0), [s for s, _ in bounds], axis=1), zero, out=out)
        return
    full = n // bs
    parts = [(order[:, : full * bs].reshape(E, full, bs).transpose(2, 0, 1), out[:, :full])]
    if full < len(bounds):
        parts.append((order[:, full * bs :].T, out[:, full]))
    for idx, dest in parts:
        terms = rows.take(idx, 0)  # (m, E, ...): the minibatch's i-th rows
        if len(terms) == 1:
            np.add(terms[0], zero, out=dest)
            continue
        rest = terms[1] + zero
        for term in terms[2:]:
            rest += term
        np.add(terms[0], rest, out=dest)
