"""PyTorch backend: gradients by ``torch.autograd``, as the d2l chapter's from-scratch code."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wdlib import Backend, Config, Objective, Problem
from wdlib.model import MLP, Params, decay_mask
from wdlib.penalty import BUILTIN_PENALTIES

torch: Any = None  # imported by load()
book: Any = None


class TorchBackend(Backend):
    name = "torch"
    framework = "torch"
    install = "pip install torch==2.13.0"

    def load(self) -> None:
        global torch, book
        import torch

        book = importlib.import_module(f"{__name__}.book")  # imports torch.nn and torch.utils.data

    #: A run whose minibatch step is at most this many multiply-adds (batch_size x the parameters)
    #: runs its operators on one thread (:meth:`run_context`).
    one_thread_work = 2**22

    def run_context(self, config: Config) -> contextlib.AbstractContextManager[Any]:
        """The eager loop of a small model on one intra-op thread, the user's thread count restored
        after: each operator of such a step takes microseconds, and handing it to a second thread
        costs more than the thread gains, on a busy machine (another process on the other core)
        tens of times more (benchmarks/results.md). Larger steps keep torch's threads."""
        from wdlib.limits import parameter_count

        if config.batch_size * parameter_count(config) > self.one_thread_work:
            return self.context(config.dtype)
        return _one_thread(torch)

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        return torch.tensor(x, dtype=getattr(torch, dtype))

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().numpy()

    def index(self, idx: np.ndarray) -> Any:
        return torch.from_numpy(idx)

    def take(self, x: Any, idx: Any) -> Any:
        return x.index_select(0, idx)

    def dot(self, a: Any, b: Any) -> Any:
        return torch.matmul(a, b)

    def sign(self, a: Any) -> Any:
        return torch.sign(a)

    def relu(self, a: Any) -> Any:
        return torch.relu(a)

    def sqrt(self, a: Any) -> Any:
        return torch.sqrt(a)

    def zeros_like(self, a: Any) -> Any:
        return torch.zeros_like(a)

    def make_grad(self, objective: Objective) -> Callable[[Params, Any, Any], Params]:
        """For the built-in MLP with a built-in penalty, autograd differentiates the loss alone and the
        penalty's gradient is added in closed form, ``n * lambd * penalty.grad(w)`` (as
        :meth:`wdlib.Objective.gradient` does): the penalty's nodes in the graph cost a quarter of
        the MLP's eager step (benchmarks/results.md). The linear model keeps the books' graph, which
        reproducing d2l bit for bit needs; a model or penalty of your own keeps autograd."""
        if not (objective.lambd and isinstance(objective.model, MLP)
                and objective.penalty.name in BUILTIN_PENALTIES):
            return super().make_grad(objective)
        loss_only = dataclasses.replace(objective, lambd=0.0)
        lambd, penalty = objective.lambd, objective.penalty

        def grad(params: Params, X: Any, y: Any) -> Params:
            grads = self.grad(loss_only, params, X, y)
            scale = X.shape[0] * lambd  # the summed objective holds the penalty once per example
            for k, on in decay_mask(params, objective.decay_bias, objective.penalize).items():
                if on:
                    grads[k] = grads[k] + scale * penalty.grad(self, params[k])
            return grads

        return grad

    def grad(self, objective: Objective, params: Params, X: Any, y: Any) -> Params:
        # backward() into fresh leaves, as d2l does: the same gradients as torch.autograd.grad, whose
        # Python wrapper costs a few percent of this chapter's eager step.
        leaves = {k: p.detach().requires_grad_() for k, p in params.items()}
        with torch.enable_grad():
            objective(self, leaves, X, y).sum().backward()
        # A parameter the loss does not use gets no .grad: its gradient is 0 (as JAX and MXNet give).
        return {k: p.grad if p.grad is not None else torch.zeros_like(p) for k, p in leaves.items()}

    # The d2l chapter's own ways (wdlib_torch.book): concise training and native random draws.
    #: mode="concise" trains on nn.MSELoss, twice the scratch loss: concise(wd, lr) = scratch(wd/2, 2 lr).
    concise_loss_scale = 2.0
    native_presets = ("d2l",)

    def norm_text(self, w: np.ndarray) -> str:
        return str(torch.norm(torch.from_numpy(w)).item())  # d2l: torch.norm(w).item()

    def concise_step(self, config: Config, params: Params) -> Callable[[Params, Any, Any], Params]:
        return book.concise_step(config, params)

    def concise_loss(self, params: Params, X: Any, y: Any) -> Any:
        return book.concise_loss(params, X, y)

    def native_problems(self, configs: Sequence[Config]) -> list[Problem]:
        return book.d2l_problems(configs)

    # Fast path (wdlib_torch.fused): matrix-form SGD without autograd, two tensor calls per minibatch.

    def fit_plan(self, plan: Any) -> Any:
        from .fused import fit_plan

        return fit_plan(plan)


@contextlib.contextmanager
def _one_thread(torch: Any) -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
