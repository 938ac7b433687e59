"""The "blocks" strategy of the fast path (large data), for NumPy and, through :class:`LargeOps`,
any framework.

Large means more than ``options.gather_bytes`` of training data: the primal form of
:mod:`wdlib.vectorized` on X itself, never copied, each minibatch in cache-sized blocks of rows, X
read from memory once per epoch with the evaluation included (see :class:`BlockKernels`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import fastpath
from .fastpath import Kernels
from .vectorized import Plan, Result

#: A large minibatch is split into this many parts (whole blocks each), each with its own buffer and
#: partial gradient, summed in a fixed order: the numbers never depend on how many threads ran them
#: (``options.large_threads``). Not a tuning constant: another value gives other bits.
SLOTS = 2


class LargeOps:
    """The handful of array operations :class:`BlockKernels` needs, here for NumPy; a backend with a
    large-data path subclasses this for its framework (arrays must support slicing, in-place
    ``+= -= *=`` and ``.sum(axis=0)``, as NumPy arrays and PyTorch tensors do)."""

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """Entered around the run: NumPy quiet about overflow (divergence is recorded), BLAS on one
        thread (:func:`wdlib.fastpath.one_blas_thread`)."""
        stack = contextlib.ExitStack()
        stack.enter_context(np.errstate(over="ignore", invalid="ignore"))
        stack.enter_context(fastpath.one_blas_thread())
        return stack

    def thread_init(self) -> None:
        """Run once in each helper thread: NumPy's error state is per thread, so helpers stay quiet
        about overflow too."""
        np.seterr(over="ignore", invalid="ignore")

    def asarray(self, a: np.ndarray) -> Any:
        """``a`` as a framework array, sharing its memory (X is never copied)."""
        return a

    def copy(self, a: Any) -> Any:
        return a.copy()

    def empty(self, shape: tuple[int, ...], like: Any) -> Any:
        return np.empty(shape, dtype=like.dtype)

    def take_rows(self, X: Any, idx: Any, out: Any) -> Any:
        """``out[:] = X[idx]``, unchecked and unbuffered (``mode="clip"``: the indices are valid)."""
        return np.take(X, idx, axis=0, out=out, mode="clip")

    def matmul(self, a: Any, b: Any, out: Any) -> Any:
        return np.dot(a, b, out)

    def subtract(self, a: Any, b: Any, out: Any) -> Any:
        return np.subtract(a, b, out=out)

    def to_numpy(self, a: Any) -> np.ndarray:
        return a

    def mean_square(self, R: Any) -> np.ndarray:
        """Mean of ``R^2 / 2`` over the rows, accumulated in float64: (n, k) -> (k,)."""
        return np.square(R).mean(axis=0, dtype=np.float64) / 2

    def part_rows(self, block: int) -> int:
        """A minibatch's parts are whole multiples of this many rows (here: whole blocks)."""
        return block

    def minibatch(self, X: Any, rows: Any, Xbuf: Any, w: Any, w_prev: Any, c: Any, r: Any, previous: Any,
                  G: Any, Gb: Any) -> None:
        """A minibatch's part, the rows ``rows`` of X, in blocks of ``len(Xbuf)`` rows, each gathered
        once: ``r = X_B w + c``, ``previous = X_B w_prev`` and ``G = X_B^T r``. Called from several
        threads at once (on different buffers), so it must release the GIL in its heavy calls."""
        block, m = Xbuf.shape[0], rows.shape[0]
        G[:] = 0
        for b0 in range(0, m, block):
            b1 = min(m, b0 + block)
            Xb = self.take_rows(X, rows[b0:b1], Xbuf[: b1 - b0])
            rb = r[b0:b1]
            self.matmul(Xb, w, rb)
            self.matmul(Xb, w_prev, previous[b0:b1])
            rb += c[b0:b1]
            G += self.matmul(Xb.T, rb, Gb)


class BlockKernels(Kernels):
    """The "blocks" strategy (large data) as :mod:`wdlib.fastpath` kernels, in the array operations of
    ``ops`` (NumPy's by default): X is read from memory once per epoch, evaluation included.

    Works on ``X`` itself (no ``[X, 1, -y]`` copy). Each minibatch goes in blocks of rows of about
    ``options.block_bytes``: a block is gathered once into a buffer that stays in cache and used there
    for every product: its residuals ``X_b w + b - y_b``, its part of ``X_B^T r``, and ``X_b w_prev``
    with the previous epoch's weights. Every row is visited once per epoch, so the pass that trains
    epoch e also gives the training loss of epoch e - 1 (``lagged_train_loss``; one last pass gives
    that of the final weights). ``ops`` whose :meth:`LargeOps.minibatch` reads the rows in place, as
    the NumPy backend's compiled kernel does (:mod:`wdlib_numpy.kernel`), save the copy.

    A minibatch is split into :data:`SLOTS` parts of whole blocks (``ops.part_rows``), run on
    ``options.large_threads`` threads at once (each part's gradient in its own buffer, the parts
    summed in a fixed order, so the bits do not depend on the thread count).
    """

    lagged_train_loss = True

    def __init__(self, plan: Plan, ops: LargeOps | None = None) -> None:
        super().__init__(plan)
        self.chunk = 1  # one pass over X per epoch
        self.ops = ops = ops or LargeOps()
        (n, p), k, bs = plan.X_train.shape, plan.k, plan.batch_size
        self.X, self.y, self.X_test, self.y_test, self.orders = (
            ops.asarray(a) for a in (plan.X_train, plan.y_train, plan.X_test, plan.y_test, plan.batch_order))
        self.theta = theta = ops.asarray(np.ascontiguousarray(np.repeat(plan.theta0, k, axis=1)))
        self.w, self.b, self.rows = theta[:p], theta[p], theta[: plan.decayed_rows]
        self.prev = prev = ops.copy(theta)  # the weights at the end of the previous epoch
        self.w_prev, self.b_prev = prev[:p], prev[p]
        block = min(bs, plan.block_rows())
        X = self.X
        self.slots = [(ops.empty((block, p), X), ops.empty((p, k), X), ops.empty((p, k), X))
                      for _ in range(SLOTS)]
        self.parts = {t - s: split_rows(t - s, ops.part_rows(block), SLOTS) for s, t in plan.bounds()}
        self.R = ops.empty((bs, k), X)
        self.offset = ops.empty((bs, k), X)  # b - y_b of the minibatch
        self.y_epoch = ops.empty(tuple(self.y.shape), self.y)
        self.previous = ops.empty((n, k), X)  # the previous weights' residuals, in the epoch's row order
        dt = plan.X_train.dtype
        self.decay = {t - s: ops.asarray(plan.decay(t - s).astype(dt)) for s, t in plan.bounds()}
        self.step = dt.type(plan.step)
        self.pool: ThreadPoolExecutor | None = None
        self.lagged: np.ndarray | None = None  # the training loss of the epoch before the last pass

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        threads = min(SLOTS, self.plan.options.large_threads)
        with self.ops.context(), _threads(threads, self.ops.thread_init) as pool:
            self.pool = pool
            yield

    def train(self, e0: int, e1: int) -> np.ndarray:
        """One epoch's pass (``e1 == e0 + 1``): trains it and measures the previous epoch's training
        loss from the residuals of its weights."""
        ops, plan, G = self.ops, self.plan, self.slots[0][1]
        order = self.orders[e0]
        ops.take_rows(self.y, order, self.y_epoch)
        for s, t in plan.bounds():
            r = self.R[: t - s]
            ops.subtract(self.b, self.y_epoch[s:t], self.offset[: t - s])
            ranges = self.parts[t - s]
            _run_all(self.pool, [functools.partial(self._part, order, i, s, a, z)
                                 for i, (a, z) in enumerate(ranges)])
            for i in range(1, len(ranges)):
                G += self.slots[i][1]
            if plan.penalized:
                self.rows *= self.decay[t - s]
            G *= self.step
            self.w -= G
            self.b -= r.sum(axis=0) * self.step
        self.lagged = None
        if e0 > 0:
            self.previous += self.b_prev
            self.previous -= self.y_epoch
            self.lagged = ops.mean_square(self.previous)[None]
        snap = ops.to_numpy(self.theta).copy()[None]
        self.prev[:] = self.theta
        return snap

    def _part(self, order: Any, i: int, s: int, a: int, z: int) -> None:
        """Rows ``a .. z`` of the minibatch starting at ``s``, into slot ``i``."""
        Xbuf, G_i, Gb_i = self.slots[i]
        self.ops.minibatch(self.X, order[s + a : s + z], Xbuf, self.w, self.w_prev, self.offset[a:z],
                           self.R[a:z], self.previous[s + a : s + z], G_i, Gb_i)

    def losses(self, snaps: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        return self.lagged, self._losses(self.X_test, self.y_test)

    def final_train_loss(self) -> np.ndarray:
        return self._losses(self.X, self.y)

    def _losses(self, X: Any, y: Any) -> np.ndarray:
        """(1, k): the current weights' loss on (X, y), a whole pass over X on the threads."""
        ops, k = self.ops, self.plan.k
        R = ops.empty((X.shape[0], k), X)
        _run_all(self.pool, [functools.partial(ops.matmul, X[a:z], self.w, R[a:z])
                             for a, z in split_rows(X.shape[0], 1, SLOTS)])
        R += self.b
        R -= y
        return ops.mean_square(R)[None]


def fit_large(plan: Plan, ops: LargeOps | None = None) -> Result:
    """Run a "blocks" plan with the array operations ``ops`` (NumPy's by default)."""
    return fastpath.run(BlockKernels(plan, ops))


def split_rows(m: int, block: int, parts: int) -> list[tuple[int, int]]:
    """``m`` rows cut into at most ``parts`` non-empty ranges of whole ``block``-row blocks."""
    blocks = -(-m // block)
    per = -(-blocks // parts) * block  # rows per part: ceil(blocks / parts) whole blocks
    return [(a, min(m, a + per)) for a in range(0, m, per)]


@contextlib.contextmanager
def _threads(n: int, init: Any) -> Any:
    """A pool of ``n - 1`` helper threads (the caller is the n-th), or None for one thread."""
    if n <= 1:
        yield None
        return
    with ThreadPoolExecutor(n - 1, thread_name_prefix="wdlib-large", initializer=init) as pool:
        yield pool


def _run_all(pool: ThreadPoolExecutor | None, tasks: list[Any]) -> None:
    """Call every task, the first in this thread and the others on ``pool`` (or here, without one)."""
    futures = [pool.submit(task) for task in tasks[1:]] if pool else []
    for task in tasks[: 1 if pool else None]:
        task()
    for future in futures:
        future.result()
