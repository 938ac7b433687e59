"""PyTorch backend: gradients by ``torch.autograd``, as the d2l chapter's from-scratch code."""

from __future__ import annotations

from typing import Any

import numpy as np

from wdlib import Backend, Objective
from wdlib.model import Params

torch: Any = None  # imported by load()


class TorchBackend(Backend):
    name = "torch"
    framework = "torch"
    install = "pip install torch==2.13.0"

    def load(self) -> None:
        global torch
        import torch

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        return torch.tensor(x, dtype=getattr(torch, dtype))

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().numpy()

    def take(self, x: Any, idx: np.ndarray) -> Any:
        return x[torch.from_numpy(idx)]

    def dot(self, a: Any, b: Any) -> Any:
        return torch.matmul(a, b)

    def sign(self, a: Any) -> Any:
        return torch.sign(a)

    def grad(self, objective: Objective, params: Params, X: Any, y: Any) -> Params:
        leaves = {k: p.detach().requires_grad_() for k, p in params.items()}
        with torch.enable_grad():
            l = objective(self, leaves, X, y)  # noqa: E741
            grads = torch.autograd.grad(l.sum(), list(leaves.values()))
        return dict(zip(leaves, grads, strict=True))
