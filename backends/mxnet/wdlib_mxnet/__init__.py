"""MXNet backend in the gluonbook style: ``nd`` arrays, ``attach_grad``, ``autograd.record``, ``backward``.

MXNet 1.9.1, its last release, uses ``numpy.bool``, which NumPy 1.24 removed; :meth:`MxnetBackend.load`
restores that alias (``numpy.bool = bool``) just before importing mxnet. Only this backend does that,
and it undoes the OpenMP thread count the import sets (:func:`_openmp_threads_kept`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from wdlib import Backend, Config, Objective, Problem
from wdlib.model import Params

mx: Any = None  # imported by load()
nd: Any = None
autograd: Any = None
book: Any = None


@contextlib.contextmanager
def _openmp_threads_kept() -> Iterator[None]:
    """Importing mxnet sets the OpenMP runtime's thread count to 1: PyTorch's, if torch was imported
    first, else the system libgomp it loads, which a later ``import torch`` then shares
    (``torch.get_num_threads()`` 1, and PyTorch's numbers those of one thread). Each runtime gets back
    its count from before the import, a new one OpenMP's default (``OMP_NUM_THREADS``, else the CPUs
    this process may use)."""
    from threadpoolctl import ThreadpoolController

    def runtimes() -> list[Any]:
        return ThreadpoolController().select(user_api="openmp").lib_controllers

    before = {lib.filepath: lib.num_threads for lib in runtimes()}
    try:
        yield
    finally:
        first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()  # "4,2": 4 at the top level
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        default = int(first) if first.isdigit() and int(first) >= 1 else cpus
        for lib in runtimes():
            wanted = before.get(lib.filepath, default)
            if lib.num_threads != wanted:
                lib.set_num_threads(wanted)


class MxnetBackend(Backend):
    name = "mxnet"
    framework = "mxnet"
    install = "pip install mxnet==1.9.1 'numpy<2'  (MXNet is retired: Python <= 3.11, NumPy 1.x only)"

    def load(self) -> None:
        global mx, nd, autograd, book
        if "bool" not in vars(np):  # NumPy 1.24-1.26 lack it; NumPy 2 has it again
            np.bool = bool  # type: ignore[attr-defined]  # mxnet 1.9.1 still refers to it
        with _openmp_threads_kept():
            import mxnet as mx
            from mxnet import autograd, nd

        book = importlib.import_module(f"{__name__}.book")

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        return nd.array(x, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.asnumpy()

    def index(self, idx: np.ndarray) -> Any:
        return nd.array(idx)  # float32, as the gluonbook's nd.array(indices); rows and slices are views

    def take(self, x: Any, idx: Any) -> Any:
        return x.take(idx)

    def dot(self, a: Any, b: Any) -> Any:
        return nd.dot(a, b)

    def sign(self, a: Any) -> Any:
        return nd.sign(a)

    def relu(self, a: Any) -> Any:
        return nd.relu(a)

    def sqrt(self, a: Any) -> Any:
        return nd.sqrt(a)

    def zeros_like(self, a: Any) -> Any:
        return nd.zeros_like(a)

    def grad(self, objective: Objective, params: Params, X: Any, y: Any) -> Params:
        for p in params.values():
            p.attach_grad()
        with autograd.record():
            l = objective(self, params, X, y)
        l.backward()
        return {k: p.grad for k, p in params.items()}

    def make_grad(self, objective: Objective) -> Callable[[Params, Any, Any], Params]:
        """:meth:`grad` with the gradient arrays allocated once, as the gluonbook's ``attach_grad`` before
        training: each step marks the new parameters with them (``attach_grad`` would allocate and zero
        new ones every step). A result holds until the next call, which overwrites it."""
        buffers: Params = {}

        def grad(params: Params, X: Any, y: Any) -> Params:
            if buffers.keys() != params.keys():
                buffers.clear()
                buffers.update((k, nd.zeros_like(p)) for k, p in params.items())
            autograd.mark_variables(list(params.values()), list(buffers.values()))
            with autograd.record():
                l = objective(self, params, X, y)
            l.backward()
            return dict(buffers)

        return grad

    def optimizer_step(self, config: Config, params: Params) -> Callable[[Params, Any, Any], Params] | None:
        """A float32 run's from-scratch step with MXNet's fused optimizer operators, one per parameter
        (:mod:`wdlib_mxnet.eager`); None (the core's step, exact) for float64 and the books' plain SGD."""
        from .eager import make_step

        return make_step(self, config, params)

    # The gluonbook's own ways (wdlib_mxnet.book): Gluon weight decay and native random draws.
    #: mode="concise" trains on gluon.loss.L2Loss, the scratch loss: concise(wd, lr) = scratch(wd, lr).
    concise_loss_scale = 1.0
    #: gluon's optimizers take lr, wd, momentum and 1/batch_size as float32 (and Adam adds eps before its
    #: bias correction): float64 concise runs agree with the exact update to float32's tolerance.
    concise_float64_rtol = 1e-4
    native_presets = ("gluonbook",)

    def norm_text(self, w: np.ndarray) -> str:
        return str(nd.array(w, dtype=w.dtype).norm().asscalar())  # gluonbook: w.norm().asscalar()

    def concise_step(self, config: Config, params: Params) -> Callable[[Params, Any, Any], Params]:
        return book.concise_step(config, params)

    def concise_loss(self, params: Params, X: Any, y: Any) -> Any:
        return book.concise_loss(params, X, y)

    def native_problems(self, configs: Sequence[Config]) -> list[Problem]:
        return book.gluonbook_problems(configs)

    # Fast path (wdlib_mxnet.fused): matrix-form SGD; the chapter's runs and λ sweeps in cached graphs.

    def fit_plan(self, plan: Any) -> Any:
        from .fused import fit_plan

        return fit_plan(plan)
