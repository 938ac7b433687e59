"""The large-data pass as one compiled loop (numba): X read from memory once per epoch, never copied.

:class:`wdlib.large.BlockKernels` does a minibatch in BLAS calls on blocks of rows, each block first
copied into a buffer (``np.take``), so every row is moved twice and every block costs several Python
calls; two threads then contend for the GIL between them. This kernel visits the rows in place, four
at a time: their residuals ``x.w + c`` and ``x.w_prev``, then their part of the gradient ``G += r x``,
while the four rows are still in cache, in one call per minibatch part that releases the GIL
(benchmarks/results.md compares it with the BLAS blocks and a C loop).

Used for long one-column runs (the chapter's, any λ alone: see ``wdlib_numpy.fused.large_ops``) when
numba is installed; λ sweeps (k columns) stay on BLAS, whose block products reuse each row k times.
numba is optional (``pip install wdlib-numpy[numba]``): without it the BLAS blocks run, with the
same results to rounding.
"""

from __future__ import annotations

from typing import Any

import numba

from wdlib.large import LargeOps

#: Reassociation (to vectorize the dot products and sums), contraction to FMA, no signed zeros,
#: reciprocals; not numba's full fastmath, whose "no NaN / no inf" would license the compiler to
#: mishandle the inf and NaN of a diverging run, which must come out as they are.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@numba.njit(nogil=True, fastmath=FASTMATH, cache=True)
def minibatch_rows(X: Any, rows: Any, w: Any, w_prev: Any, c: Any, r: Any, previous: Any, G: Any) -> None:
    """For the rows ``X[rows]`` of one minibatch part (1-D w, w_prev, c, r, previous, G):
    ``r = X[rows] w + c``, ``previous = X[rows] w_prev``, ``G = X[rows]^T r``, each row read once."""
    G[:] = 0
    m, p = rows.shape[0], X.shape[1]
    zero = X.dtype.type(0)
    full = m - m % 4
    for i in range(0, full, 4):  # four rows at a time: w, w_prev and G go through the core once for all four
        x0, x1, x2, x3 = X[rows[i]], X[rows[i + 1]], X[rows[i + 2]], X[rows[i + 3]]
        a0 = a1 = a2 = a3 = v0 = v1 = v2 = v3 = zero
        for j in range(p):
            wj, vj = w[j], w_prev[j]
            a0 += x0[j] * wj
            a1 += x1[j] * wj
            a2 += x2[j] * wj
            a3 += x3[j] * wj
            v0 += x0[j] * vj
            v1 += x1[j] * vj
            v2 += x2[j] * vj
            v3 += x3[j] * vj
        a0 += c[i]
        a1 += c[i + 1]
        a2 += c[i + 2]
        a3 += c[i + 3]
        r[i], r[i + 1], r[i + 2], r[i + 3] = a0, a1, a2, a3
        previous[i], previous[i + 1], previous[i + 2], previous[i + 3] = v0, v1, v2, v3
        for j in range(p):
            G[j] += a0 * x0[j] + a1 * x1[j] + a2 * x2[j] + a3 * x3[j]
    for i in range(full, m):  # the last 0-3 rows, one at a time
        x = X[rows[i]]
        a = v = zero
        for j in range(p):
            a += x[j] * w[j]
            v += x[j] * w_prev[j]
        a += c[i]
        r[i], previous[i] = a, v
        for j in range(p):
            G[j] += a * x[j]


class KernelOps(LargeOps):
    """:class:`wdlib.large.LargeOps` with each minibatch part done by :func:`minibatch_rows`, for
    one-column runs; the block buffer ``Xbuf`` and ``Gb`` go unused (nothing is gathered)."""

    def part_rows(self, block: int) -> int:
        return 4  # the kernel's row group: parts of whole groups never reach its one-row tail loop

    def minibatch(self, X: Any, rows: Any, Xbuf: Any, w: Any, w_prev: Any, c: Any, r: Any, previous: Any,
                  G: Any, Gb: Any) -> None:
        if w.shape[1] != 1:
            raise ValueError(f"KernelOps trains one column (one λ); got {w.shape[1]}: use LargeOps")
        minibatch_rows(X, rows, w[:, 0], w_prev[:, 0], c[:, 0], r[:, 0], previous[:, 0], G[:, 0])
