"""NumPy backend: the reference. Gradients are the hand-derived ones of :class:`wdlib.Objective`."""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from wdlib import Backend, Config, Objective
from wdlib.model import Params, squared_loss


class NumpyBackend(Backend):
    name = "numpy"
    framework = "numpy"
    install = "pip install numpy"

    def context(self, dtype: str) -> contextlib.AbstractContextManager[Any]:
        # A diverging run overflows to inf/NaN; the core detects and reports that, so stay quiet here.
        # all="ignore" rather than over= and invalid= alone (a run divides only by batch sizes, counts
        # and 2, never by 0): with no error to report, NumPy 1.x skips reading the floating-point status
        # after every ufunc, which halves what errstate adds to this chapter's microsecond calls.
        return np.errstate(all="ignore")

    def asarray(self, x: np.ndarray, dtype: str) -> np.ndarray:
        return np.array(x, dtype=dtype)

    def take(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return x.take(idx, 0)  # x[idx], in half the time of fancy indexing for a minibatch's rows

    # np.asarray and a @ b as the C functions themselves: the eager loop calls them every minibatch, and
    # a Python method around each would add a frame to NumPy calls of about a microsecond.
    to_numpy = staticmethod(np.asarray)
    dot = staticmethod(operator.matmul)

    def sign(self, a: np.ndarray) -> np.ndarray:
        return np.sign(a)

    def relu(self, a: np.ndarray) -> np.ndarray:
        return np.maximum(a, 0)

    sqrt = staticmethod(np.sqrt)
    zeros_like = staticmethod(np.zeros_like)

    def grad(self, objective: Objective, params: Params, X: np.ndarray, y: np.ndarray) -> Params:
        return objective.gradient(self, params, X, y)

    #: mode="concise" trains on the mean of (y_hat - y)^2 / 2: concise(wd, lr) = scratch(wd, lr).
    concise_loss_scale = 1.0

    def concise_step(self, config: Config, params: Params) -> Callable[[Params, Any, Any], Params]:
        """What a framework optimizer with weight decay does, by hand: the gradient of the batch-mean
        loss plus ``wd * param``, times ``lr``."""
        lr, wd = config.lr, config.wd
        bias_wd = wd if config.decay_bias else 0.0

        def step(params: Params, X: np.ndarray, y: np.ndarray) -> Params:
            w, b = params["w"], params["b"]
            residual = X @ w + b - y
            grad_w = X.T @ residual / len(X) + wd * w
            grad_b = residual.sum(axis=0) / len(X) + bias_wd * b
            return {"w": w - lr * grad_w, "b": b - lr * grad_b}

        return step

    def concise_loss(self, params: Params, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return squared_loss(X @ params["w"] + params["b"], y).mean()

    # Fast path (wdlib_numpy.fused): the whole run as matrix-form SGD, one or two BLAS calls a step.

    def fit_plan(self, plan: Any) -> Any:
        from .fused import fit_plan

        return fit_plan(plan)
