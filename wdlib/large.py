"""The fast path on large data, for NumPy and (through :class:`LargeOps`) any framework.

Large means more than :data:`wdlib.vectorized.GATHER_BYTES` of training data: the primal form of
:mod:`wdlib.vectorized` on X itself, never copied, each minibatch in cache-sized blocks of rows, X
read from memory once per epoch with the evaluation included (see :func:`fit_large`).
"""

from __future__ import annotations

import contextlib
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .vectorized import Plan, Recorder, Result

#: A large minibatch is split into this many parts (whole blocks each), each with its own buffer and
#: partial gradient, summed in a fixed order: the numbers never depend on how many threads ran them.
SLOTS = 2
#: Threads working on the parts at once (the gather is memory-latency bound, so two cores reading two
#: rows at a time go ~1.6x faster than one: measured 15-16.5 vs 9.2-10 GB/s on a 2-core machine).
THREADS = min(SLOTS, os.cpu_count() or 1)


class LargeOps:
    """The handful of array operations :func:`fit_large` needs, here for NumPy; a backend with a
    large-data path subclasses this for its framework (arrays must support slicing, in-place
    ``+= -= *=`` and ``.sum(axis=0)``, as NumPy arrays and PyTorch tensors do)."""

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """Entered around the run: NumPy quiet about overflow (divergence is recorded), BLAS on one
        thread (see :func:`one_blas_thread`)."""
        stack = contextlib.ExitStack()
        stack.enter_context(np.errstate(over="ignore", invalid="ignore"))
        stack.enter_context(one_blas_thread())
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


def fit_large(plan: Plan, ops: LargeOps | None = None) -> Result:
    """The fast path on large data (NumPy by default, any framework through ``ops``): X is read from
    memory once per epoch, evaluation included.

    Works on ``X`` itself (no ``[X, 1, -y]`` copy). Each minibatch goes in blocks of rows of about
    BLOCK_BYTES: a block is gathered once into a buffer that stays in cache and used there for every
    product: its residuals ``X_b w + b - y_b``, its part of ``X_B^T r``, and ``X_b w_prev`` with the
    previous epoch's weights. Every row is visited once per epoch, so the pass that trains epoch e
    also gives the training loss of epoch e - 1 (one last pass gives that of the final weights). A
    pass runs at the speed of a copy of X's rows in random order (benchmarks/run.py measures it
    against a C loop); ``ops`` whose :meth:`LargeOps.minibatch` reads the rows in place, as the NumPy
    backend's compiled kernel does (:mod:`wdlib_numpy.kernel`), save that copy.

    A minibatch is split into :data:`SLOTS` parts of whole blocks (``ops.part_rows``), run on
    :data:`THREADS` threads at once (each part's gradient in its own buffer, the parts summed in a
    fixed order, so the bits do not depend on the thread count).
    """
    ops = ops or LargeOps()
    (n, p), k, E, bs = plan.X_train.shape, plan.k, plan.num_epochs, plan.batch_size
    X, y, X_test, y_test, orders = (ops.asarray(a) for a in (plan.X_train, plan.y_train, plan.X_test,
                                                              plan.y_test, plan.batch_order))
    theta = ops.asarray(np.ascontiguousarray(np.repeat(plan.theta0, k, axis=1)))
    w, b, rows = theta[:p], theta[p], theta[: plan.decayed_rows]
    prev = ops.copy(theta)  # the weights at the end of the previous epoch
    w_prev, b_prev = prev[:p], prev[p]
    block = min(bs, plan.block_rows())
    slots = [(ops.empty((block, p), X), ops.empty((p, k), X), ops.empty((p, k), X)) for _ in range(SLOTS)]
    G = slots[0][1]
    parts = {t - s: split_rows(t - s, ops.part_rows(block), SLOTS) for s, t in plan.bounds()}
    R = ops.empty((bs, k), X)
    offset = ops.empty((bs, k), X)  # b - y_b of the minibatch
    y_epoch = ops.empty(tuple(y.shape), y)
    previous = ops.empty((n, k), X)  # the previous weights' residuals, in the epoch's row order
    decay = {t - s: ops.asarray(plan.decay(t - s).astype(plan.X_train.dtype)) for s, t in plan.bounds()}
    step = plan.X_train.dtype.type(plan.step)
    rec = Recorder(plan)
    pending: tuple[np.ndarray, np.ndarray] | None = None  # (test loss, snapshot) of epoch e - 1

    def losses(X: Any, y: Any) -> np.ndarray:
        R = ops.empty((X.shape[0], k), X)
        _run_all(pool, [functools.partial(ops.matmul, X[a:z], w, R[a:z])  # a whole pass over X: threads
                        for a, z in split_rows(X.shape[0], 1, SLOTS)])
        R += b
        R -= y
        return ops.mean_square(R)[None]

    def part(i: int, s: int, a: int, z: int) -> None:  # rows a..z of the minibatch starting at s
        Xbuf, G_i, Gb_i = slots[i]
        ops.minibatch(X, order[s + a : s + z], Xbuf, w, w_prev, offset[a:z], R[a:z], previous[s + a : s + z],
                      G_i, Gb_i)

    with ops.context(), _threads(THREADS, ops.thread_init) as pool:
        for e in range(E):
            order = orders[e]
            ops.take_rows(y, order, y_epoch)
            for s, t in plan.bounds():
                r = R[: t - s]
                ops.subtract(b, y_epoch[s:t], offset[: t - s])
                ranges = parts[t - s]
                _run_all(pool, [functools.partial(part, i, s, a, z) for i, (a, z) in enumerate(ranges)])
                for i in range(1, len(ranges)):
                    G += slots[i][1]
                if plan.penalized:
                    rows *= decay[t - s]
                G *= step
                w -= G
                b -= r.sum(axis=0) * step
            if pending is not None:
                previous += b_prev
                previous -= y_epoch
                rec.add(e - 1, ops.mean_square(previous)[None], *pending)
            pending = losses(X_test, y_test), ops.to_numpy(theta).copy()[None]
            prev[:] = theta
        rec.add(E - 1, losses(X, y), *pending)
    return rec.result()


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


@functools.cache
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController  # imported on first use, like a framework

    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """BLAS on one thread, for the duration of a ``with`` block. The large-data path calls BLAS on
    cache-sized blocks: handing those to a second thread costs more than it gains, and on a busy
    machine OpenBLAS's waiting threads made a pass ten times slower (measured: 0.7 vs 9.8 GB/s).
    One thread also makes the results independent of the thread settings."""
    return _blas().limit(limits=1, user_api="blas")
