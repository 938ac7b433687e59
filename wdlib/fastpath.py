"""The one driver of every backend's fast path: epochs, snapshots, evaluation, recording, divergence.

A backend's ``fused`` module turns a :class:`wdlib.vectorized.Plan` into :class:`Kernels` (the few
framework calls of the plan's strategy) and hands them to :func:`run`, which

- trains the epochs a chunk at a time (``kernels.chunk`` epochs: the snapshots of a chunk are
  evaluated together, one product per set instead of two per epoch),
- has the chunk's per-epoch train and test losses computed from those snapshots, and
- records them with :class:`Recorder`, which also keeps, for a column whose loss becomes NaN or
  infinite, the parameters of that epoch (the eager loop stops there) and NaN after it.

Large data (``strategy="blocks"``) reads X once per epoch, evaluation included: the pass that trains
epoch e also gives the training loss of epoch e - 1, so those kernels set ``lagged_train_loss`` and
the driver records each epoch once its training loss arrives (the last one from
:meth:`Kernels.final_train_loss`).

The tuning constants of every fast path are the fields of :data:`OPTIONS`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .vectorized import Plan, Result


@dataclass(frozen=True)
class FastPathOptions:
    """The fast paths' tuning constants, in one place (why each value: benchmarks/results.md,
    "Tuning measurements"). None of them changes what a run computes beyond rounding; the
    variants they select are each tested against the eager loop."""

    #: Training data (the augmented Z and U, so twice X) of at most this many bytes is gathered an
    #: epoch at a time into reused buffers; above it, the "blocks" strategy (large data).
    gather_bytes: int = 64 * 2**20
    #: "blocks": a minibatch is processed in blocks of rows of about this many bytes, each gathered
    #: once and used from cache for all its products (about a core's L2 cache).
    block_bytes: int = 2**20
    #: Bytes of parameter snapshots and evaluation residuals held at once (sets the evaluation chunk).
    eval_chunk_bytes: int = 16 * 2**20
    #: NumPy, small data: snapshot and residual buffers of at most this many bytes (λ sweeps: a few
    #: epochs at a time). Below glibc's mmap threshold (128 KiB) malloc serves them from its heap,
    #: memory the process touched on its previous call; larger ones were fresh pages on every call,
    #: one page fault per 4 KiB (the chapter's 64 λ: ~500 a call, more time than the evaluation's
    #: products). The numbers do not depend on it.
    scratch_bytes: int = 128 * 2**10
    #: "step_matrices" for one-column runs whose state has at most this many rows, and whose matrices
    #: take at most step_matrix_bytes in all.
    step_matrix_max_q: int = 64
    step_matrix_bytes: int = 16 * 2**20
    #: "scan" (the step matrices' products formed by a few batched products instead of one small
    #: product per minibatch) for one-column runs whose state has at most this many rows: a batched
    #: (q, q) product costs q^3, against q^2 for one step, so it only pays where a call costs more
    #: than q^3 multiply-adds.
    scan_max_q: int = 32
    #: "scan": epochs per block of the blocked prefix product (0: about sqrt(num_epochs), which
    #: minimizes the number of calls, (block - 1) batched products + one per block).
    scan_block: int = 0
    #: MXNet, λ sweeps of a small state: minibatch steps per cached graph (wdlib_mxnet.graph; 0: the
    #: same operators called one by one). A graph is built once per process and shape; longer ones
    #: take fewer calls and longer to build.
    graph_steps: int = 100
    #: The dual layout when n_train + 3 <= dual_ratio * (p + 2) and n_train <= dual_max_n.
    dual_ratio: float = 0.5
    dual_max_n: int = 2048
    #: NumPy, "blocks": the compiled kernel (numba) for one-column runs reading at least this many
    #: bytes of X in all (epochs x X): it costs about half a second per process to load.
    kernel_min_bytes: float = 2**34
    #: JAX: a batched minibatch product (k > 1 columns) of at most this many multiply-adds is written
    #: as broadcast multiply + sum (one fused XLA loop) rather than a dot (a GEMM call).
    fused_product_max: int = 2**15
    #: "blocks": threads working on a minibatch's parts at once (at most wdlib.large.SLOTS). The
    #: numbers do not depend on it.
    large_threads: int = min(2, os.cpu_count() or 1)

    def replace(self, **changes: Any) -> FastPathOptions:
        return dataclasses.replace(self, **changes)

    def small_state(self, q: int, minibatches: int, itemsize: int) -> bool:
        """Whether a run's q x q matrix per minibatch is worth making: q at most step_matrix_max_q,
        all of them at most step_matrix_bytes."""
        return q <= self.step_matrix_max_q and minibatches * q * q * itemsize <= self.step_matrix_bytes

    def scan(self, q: int, minibatches: int, itemsize: int) -> bool:
        """Whether a one-column run's step matrices are multiplied out by the "scan" strategy."""
        return q <= self.scan_max_q and self.small_state(q, minibatches, itemsize)


#: The options new plans are made with (tests and experiments: ``OPTIONS.replace(...)``).
OPTIONS = FastPathOptions()


class Kernels:
    """What a backend supplies for one plan: train a chunk of epochs, evaluate snapshots."""

    #: True when :meth:`losses` returns the training loss of the previous chunk (None for the first),
    #: measured by this chunk's pass over X; the driver then asks :meth:`final_train_loss` at the end.
    lagged_train_loss = False

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        #: Epochs trained per call of :meth:`train` (and evaluated together).
        self.chunk = plan.eval_chunk()

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """Entered around the whole run (e.g. NumPy's error state, PyTorch's ``no_grad``)."""
        return contextlib.nullcontext()

    def train(self, e0: int, e1: int) -> Any:
        """Train epochs ``e0 .. e1 - 1``; the parameters after each of them, (e1 - e0, q, k), in any
        form :meth:`losses` and :meth:`snapshots` take."""
        raise NotImplementedError

    def losses(self, snaps: Any) -> tuple[np.ndarray | None, np.ndarray]:
        """The train and test loss (C, k) of each snapshot: the mean of the squared residuals / 2."""
        raise NotImplementedError

    def snapshots(self, snaps: Any) -> np.ndarray:
        """The snapshots as a NumPy array (C, q, k), valid until the next :meth:`train`."""
        return np.asarray(snaps)

    def final_train_loss(self) -> np.ndarray:
        """(1, k): the training loss of the last epoch (only with ``lagged_train_loss``)."""
        raise NotImplementedError


def run(kernels: Kernels) -> Result:
    """Train ``kernels.plan`` with ``kernels``: (train_loss (k, E), test_loss (k, E), {"w": (k, p, 1),
    "b": (k, 1)})."""
    plan = kernels.plan
    E, C = plan.num_epochs, kernels.chunk
    rec = Recorder(plan)
    pending: tuple[int, np.ndarray, np.ndarray] | None = None  # a chunk waiting for its train loss
    with kernels.context():
        for e0 in range(0, E, C):
            snaps = kernels.train(e0, min(E, e0 + C))
            train, test = kernels.losses(snaps)
            if not kernels.lagged_train_loss:
                rec.add(e0, train, test, kernels.snapshots(snaps))
                continue
            if pending is not None:
                assert train is not None
                rec.add(pending[0], train, pending[1], pending[2])
            pending = (e0, test, kernels.snapshots(snaps).copy())
        if pending is not None:
            rec.add(pending[0], kernels.final_train_loss(), pending[1], pending[2])
    return rec.result()


class Recorder:
    """Collects per-epoch losses chunk by chunk, and each column's final parameters: those of the
    last epoch, or of the first epoch whose loss is NaN or infinite (where the eager loop stops)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        E, k = plan.num_epochs, plan.k
        self.train = np.full((E, k), np.nan)
        self.test = np.full((E, k), np.nan)
        self.bad = np.full(k, -1)
        self.theta: np.ndarray | None = None

    def add(self, e0: int, train: np.ndarray, test: np.ndarray, snaps: np.ndarray) -> None:
        """Losses (C, k) of epochs ``e0 .. e0 + C - 1`` and their snapshots (C, q, k)."""
        C = len(train)
        self.train[e0 : e0 + C] = train
        self.test[e0 : e0 + C] = test
        if self.theta is None:
            self.theta = np.empty(snaps.shape[1:], dtype=snaps.dtype)
        finite = np.isfinite(train) & np.isfinite(test)
        if not finite.all():  # (the index arrays cost more than a one-λ chunk's other bookkeeping)
            for j in np.flatnonzero((self.bad < 0) & ~finite.all(axis=0)):
                first = int(np.argmin(finite[:, j]))
                self.bad[j] = e0 + first
                self.theta[:, j] = snaps[first, :, j]
        if e0 + C == self.plan.num_epochs:
            ok = self.bad < 0
            if ok.all():
                self.theta[...] = snaps[C - 1]
            else:
                self.theta[:, ok] = snaps[C - 1][:, ok]

    def result(self) -> Result:
        """(train_loss (k, E), test_loss (k, E), {"w": (k, p, 1), "b": (k, 1)})."""
        for j in np.flatnonzero(self.bad >= 0) if self.bad.max() >= 0 else ():
            self.train[self.bad[j] + 1 :, j] = np.nan
            self.test[self.bad[j] + 1 :, j] = np.nan
        assert self.theta is not None
        w, b = self.plan.params(self.theta)
        return np.ascontiguousarray(self.train.T), np.ascontiguousarray(self.test.T), {"w": w, "b": b}


@functools.cache
def _blas() -> Any:
    """The BLAS libraries' threadpoolctl controllers (each with ``num_threads`` and
    ``set_num_threads``), found once: ``ThreadpoolController.limit`` would also build every
    library's info dicts on each call, more than the chapter's run spends on its loss products."""
    from threadpoolctl import ThreadpoolController  # imported on first use, like a framework

    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


_blas_lock = threading.Lock()
_blas_users = 0  # threads inside one_blas_thread(); the limit is lifted when the last one leaves
_blas_limit: Any = None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread for the duration of a ``with`` block: every fast-path run is in one
    (:meth:`wdlib.Backend.fused_fit`). Its products are tiny (the chapter's) or cache-sized blocks
    (large data), and handing those to a second thread costs more than it gains; on a busy machine
    OpenBLAS's waiting threads made the chapter's plan 25 times slower to build (benchmarks/results.md).
    It also makes the runs' bits independent of the core count and of ``OPENBLAS_NUM_THREADS``.
    BLAS has one thread setting per process: runs in several threads at once share one limit,
    lifted when the last of them ends."""
    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            _release_blas_control()
            # each library's setting before, to restore; those already at one thread are left alone
            _blas_limit = [(lib, n) for lib in _blas() if (n := lib.num_threads) != 1]
            for lib, _ in _blas_limit:
                lib.set_num_threads(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _release_blas_control()
                for lib, n in _blas_limit:
                    lib.set_num_threads(n)
                _blas_limit = None
                _release_blas_control()


def _release_blas_control() -> None:
    """Let any thread set OpenBLAS's limit next: threadpoolctl >= 3.6 ignores the limits of every
    thread but the last one that set it, and the runs sharing one limit may start and end in
    different threads."""
    clear = _clear_controlling_thread()
    if clear is not None:
        clear(force=True)


@functools.cache
def _clear_controlling_thread() -> Any:
    import threadpoolctl

    return getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
