"""Fused and λ-vectorized training: the plan every backend's fast path runs.

The eager loop (``wdlib.training.fit``) differentiates the books' objective minibatch by minibatch. The
fast paths run the *same* minibatch SGD, but written as the closed-form update it amounts to, on the
augmented matrix ``Z = [X, 1, -y]`` and parameter column ``theta = [w; b; 1]`` (shape ``(p + 2, k)``,
one column per λ, so many weight decays train at once as one matrix product)::

    r     = Z_B theta                                   # = X_B w + b - y_B, the minibatch residuals
    theta = D_m * theta - (lr / batch_size) * U_B^T r   # U = [X, 1, 0]: the last row stays 1

with the L2 decay ``D_m = 1 - lr * m * λ / batch_size`` on the rows of ``w`` (and of ``b`` with
``decay_bias=True``), ``m`` the number of rows of the minibatch: a short last batch decays less,
exactly as in the books' code, where the penalty is broadcast onto each example and the step divides
by ``batch_size``. Only the L2 penalty has a fast path: with L1 the subgradient ``sign(w)`` flips for
the weights oscillating around 0, which amplifies any rounding difference into O(lr λ) differences, so
only the eager loop's exact operation sequence reproduces it.

A :class:`Plan` fixes two choices, each an explicit field:

- ``layout``: ``"primal"`` (the state above) or ``"dual"``, when there are fewer training examples
  than features (the chapter: 20 and 200): every update adds rows of X to w, so the same iteration
  runs on the n + 3 numbers ``[a; alpha; b; 1]`` with ``w = alpha w0 + X^T a`` (``Z = [X X^T, X w0,
  1, -y]``, ``U = (lr/bs) [I, 0, 1, 0]``); identical in exact arithmetic, far fewer multiply-adds.
- ``strategy``: how a backend runs the minibatches. ``"step_matrices"``: one column and a small
  state, so each minibatch's step is one matrix ``A = D_m - U_B^T Z_B`` (all made up front), one
  product per step: the chapter's runs are bound by the per-call overhead of their tiny products,
  not by the multiply-adds. ``"scan"``: the same matrices, with a smaller state (the chapter's
  q = 23), multiplied out by a few batched products (:mod:`wdlib.scan`), some twenty calls for the
  whole run instead of one per minibatch. ``"minibatches"``: two products and an update per minibatch, on rows
  gathered once per epoch. ``"blocks"``: large data (more than ``gather_bytes``), the primal form on
  X itself, never copied, each minibatch in cache-sized blocks of rows (:mod:`wdlib.large`).

:mod:`wdlib.fastpath` is the one driver (epochs, snapshots, evaluation, recording, divergence); each
backend's ``fused`` module supplies the kernels of each strategy. Tuning constants live in
:data:`wdlib.fastpath.OPTIONS` (a plan keeps the options it was made with).

Exactness: the eager loop's operations regrouped, so results differ from it only by rounding:
float64 about 1e-15 relative on w and the test loss (asserted: 1e-12, the cross-backend tolerance),
float32 about 1e-6 (asserted: 1e-4).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .config import Config
from .fastpath import FastPathOptions
from .planning import augment, make_plan  # noqa: F401 - make_plan is wdlib.vectorized.make_plan too

LAYOUTS = ("primal", "dual")
STRATEGIES = ("scan", "step_matrices", "minibatches", "blocks")


def supports(config: Config) -> bool:
    """Whether the fast paths reproduce the eager loop for ``config`` (within the tolerances above).

    They implement the books' from-scratch SGD of the linear model with the L2 penalty on wdlib's
    inputs (drawn or the user's): ``mode="scratch"``, ``rng="numpy"``, ``penalty="l2"``,
    ``model="linear"``, ``optimizer="sgd"`` without optimizer decay, with or without bias decay,
    both dtypes.
    """
    return (config.mode == "scratch" and config.rng == "numpy" and config.penalty == "l2"
            and config.model == "linear" and config.optimizer == "sgd" and config.wd == 0
            and not config.penalize)


@dataclass(frozen=True, eq=False)
class Plan:
    """One fused run's inputs, cast to the run's dtype and laid out for the matrix form (a state
    ``theta`` (q, k), ``r = Z_B theta``, ``theta <- D theta - U_B^T r``: see the module docstring).
    ``X_train`` and ``X_test`` hold the features of the layout: X itself in the primal one (never
    copied), ``[A X^T, A w0]`` in the dual one."""

    X_train: np.ndarray  # (n_train, q - 2)
    y_train: np.ndarray  # (n_train, 1)
    X_test: np.ndarray  # (n_test, q - 2)
    y_test: np.ndarray  # (n_test, 1)
    theta0: np.ndarray  # (q, 1)
    batch_order: np.ndarray  # (num_epochs, n_train)
    lambdas: np.ndarray  # (k,), float64
    config: Config
    layout: str  # one of LAYOUTS
    strategy: str  # one of STRATEGIES
    options: FastPathOptions
    U_train: np.ndarray | None = None  # (n_train, q); None for "blocks" (it would copy X)
    basis: np.ndarray | None = None  # dual: X_train^T (p, n_train), to map theta back to w
    w0: np.ndarray | None = None  # dual: (p, 1)

    @functools.cached_property
    def Z_train(self) -> np.ndarray:
        """``[X, 1, -y]`` (n_train, q), made on first use: the "blocks" strategy works on ``X_train``
        and ``y_train`` instead, so a large X is never copied."""
        return augment(self.X_train, self.y_train)

    @functools.cached_property
    def Z_test(self) -> np.ndarray:
        return augment(self.X_test, self.y_test)

    @property
    def p(self) -> int:
        return self.config.num_inputs

    @property
    def q(self) -> int:
        """Rows of theta."""
        return self.X_train.shape[1] + 2

    @property
    def itemsize(self) -> int:
        return self.X_train.itemsize

    @property
    def k(self) -> int:
        return len(self.lambdas)

    @property
    def n_train(self) -> int:
        return self.X_train.shape[0]

    @property
    def num_epochs(self) -> int:
        return self.batch_order.shape[0]

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    @property
    def step(self) -> float:
        """The gradient's factor in the update, ``lr / batch_size``."""
        return self.config.lr / self.config.batch_size

    @property
    def bias_row(self) -> int:
        """The row of theta holding b (every row before it decays with w)."""
        return self.q - 2

    @property
    def decayed_rows(self) -> int:
        """Leading rows of ``theta`` the penalty acts on: ``w`` (or a, alpha), and ``b`` with
        ``decay_bias``."""
        return self.bias_row + 1 if self.config.decay_bias else self.bias_row

    @property
    def penalized(self) -> bool:
        return bool(np.any(self.lambdas != 0))

    def bounds(self) -> list[tuple[int, int]]:
        """(start, stop) of each minibatch within an epoch's permutation."""
        n, bs = self.n_train, self.batch_size
        return [(s, min(s + bs, n)) for s in range(0, n, bs)]

    def decay(self, m: int | np.ndarray) -> np.ndarray:
        """Per-λ L2 decay factor ``1 - lr m λ / bs`` for a minibatch of ``m`` rows, (1, k) float64
        (``m`` a column of sizes: one row per size)."""
        return (1 - self.config.lr * m * self.lambdas / self.batch_size)[None, :]

    def step_rows(self) -> np.ndarray:
        """(q, 1) float64: ``lr / bs`` on every row but the constant one (primal form's U = Z * this)."""
        c = np.full((self.q, 1), self.step)
        c[-1] = 0
        return c

    def step_products(self) -> np.ndarray:
        """(num_epochs, minibatches, q, q): ``M = U_B^T Z_B`` for every minibatch, so that a step is
        ``theta <- D theta - M theta`` (the same step regrouped; exact arithmetic gives the same
        iterates), made by one batched product (two with a short last batch)."""
        bounds, E, q = self.bounds(), self.num_epochs, self.q
        Z, U, bs, n = self.Z_train, self.U_train, self.batch_size, self.n_train
        assert U is not None, "the blocks strategy has no update matrices"
        M = np.empty((E, len(bounds), q, q), dtype=Z.dtype)
        full = n // bs  # minibatches of batch_size rows, then maybe one shorter
        rows = self.batch_order[:, : full * bs].reshape(E, full, bs)
        np.matmul(U[rows].transpose(0, 1, 3, 2), Z[rows], out=M[:, :full])
        if full < len(bounds):
            rows = self.batch_order[:, full * bs :]
            np.matmul(U[rows].transpose(0, 2, 1), Z[rows], out=M[:, full])
        return M

    def step_matrices(self) -> np.ndarray:
        """(num_epochs, minibatches, q, q), one column: every minibatch's update as one matrix,
        ``theta <- A theta`` with ``A = D_m - U_B^T Z_B`` (:meth:`step_products` with the decay; in the
        dual layout from tables of rows, :func:`wdlib.scan.dual_step_matrices`)."""
        assert self.k == 1, "several columns decay differently: use step_products"
        if self.layout == "dual":
            from .scan import dual_step_matrices

            return dual_step_matrices(self)
        A = self.step_products()
        np.negative(A, out=A)
        q = self.q
        A[:, :, np.arange(q), np.arange(q)] += self.decay_diagonals().astype(A.dtype)
        return A

    def decay_diagonals(self) -> np.ndarray:
        """(minibatches, q) float64, one column: the diagonal of each minibatch's ``D_m``, its
        :meth:`decay` on the decayed rows and 1 on the others."""
        sizes = np.array([[t - s] for s, t in self.bounds()])
        d = np.ones((len(sizes), self.q))
        d[:, : self.decayed_rows] = self.decay(sizes)[0]  # (minibatches, 1): one call for all sizes
        return d

    def small_state(self) -> bool:
        """Whether every minibatch's q x q matrix is worth making (``options.small_state``)."""
        minibatches = self.num_epochs * len(self.bounds())
        return self.strategy != "blocks" and self.options.small_state(self.q, minibatches, self.itemsize)

    def loss_rows(self, Z: np.ndarray) -> np.ndarray:
        """:func:`loss_rows` of ``Z``."""
        return loss_rows(Z)

    def block_rows(self) -> int:
        """Rows per block of a large minibatch (see ``options.block_bytes``)."""
        return max(1, self.options.block_bytes // (self.q * self.itemsize))

    def minibatch_views(self, buf: np.ndarray, transpose: bool = False) -> list[np.ndarray]:
        """Views of the minibatches of an (n_train, q) buffer holding an epoch's rows in order."""
        bs, q = self.batch_size, self.q
        if self.n_train % bs == 0:  # views made by iterating over the first axis, in C
            blocks = buf.reshape(-1, bs, q)
            return list(blocks.transpose(0, 2, 1) if transpose else blocks)
        return [buf[s:t].T if transpose else buf[s:t] for s, t in self.bounds()]

    def eval_chunk(self) -> int:
        """How many epochs' snapshots are evaluated at once."""
        per_epoch = self.k * (self.q + self.n_train + len(self.X_test)) * self.itemsize
        return int(max(1, min(self.num_epochs, self.options.eval_chunk_bytes // per_epoch)))

    def params(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """w (k, p, 1) and b (k, 1) of a state (q, k)."""
        if self.layout == "primal":
            w = theta[: self.p]
        else:
            assert self.basis is not None and self.w0 is not None
            n = self.n_train
            w = self.basis @ theta[:n] + self.w0 * theta[n : n + 1]
        return np.ascontiguousarray(w.T[:, :, None]), np.ascontiguousarray(theta[self.bias_row][:, None])


def loss_rows(Z: np.ndarray) -> np.ndarray:
    """A matrix with ``||L theta|| = ||Z theta||`` for every state, at most q rows: Z itself, or the R
    of Z's QR factorization (computed in float64) when Z has more rows than columns. QR is backward
    stable, so ``R theta`` is as accurate as ``Z theta`` (unlike ``theta^T Z^T Z theta``, which squares
    the cancellation): the chapter's 100 test rows evaluate as 23."""
    if Z.shape[0] <= Z.shape[1]:
        return Z
    return np.linalg.qr(Z.astype(np.float64), mode="r").astype(Z.dtype)


Result = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]


def single(result: Result) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The one column of a k=1 result, in the shapes of :meth:`wdlib.Backend.fused_fit`."""
    train, test, params = result
    return train[0], test[0], {"w": params["w"][0], "b": params["b"][0]}
