"""NumPy backend: the reference. Gradients are the hand-derived ones of :class:`wdlib.Objective`."""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from wdlib import Backend, Config, Objective
from wdlib.model import MLP, Linear, Params, decay_mask, make_model, squared_loss
from wdlib.optim import OPTIMIZER_ARGS


class NumpyBackend(Backend):
    name = "numpy"
    framework = "numpy"
    install = "pip install numpy"
    autodiff = False  # grad is the objective's hand-derived gradient (each model's backward)

    def context(self, dtype: str) -> contextlib.AbstractContextManager[Any]:
        # A diverging run overflows to inf/NaN; the core detects and reports that, so stay quiet here.
        # all="ignore" rather than over= and invalid= alone (a run divides only by batch sizes, counts
        # and 2, never by 0): with no error to report, NumPy 1.x skips reading the floating-point status
        # after every ufunc, which halves what errstate adds to this chapter's microsecond calls.
        return np.errstate(all="ignore")

    def asarray(self, x: np.ndarray, dtype: str) -> np.ndarray:
        return np.array(x, dtype=dtype)

    #: x[idx] as ``x.take(idx, axis=0)``, in half the time of fancy indexing for a minibatch's rows,
    #: called through a C partial (no Python frame per call).
    take = staticmethod(functools.partial(np.ndarray.take, axis=0))

    # np.asarray and a @ b as the C functions themselves: the eager loop calls them every minibatch, and
    # a Python method around each would add a frame to NumPy calls of about a microsecond.
    to_numpy = staticmethod(np.asarray)
    dot = staticmethod(operator.matmul)

    def sign(self, a: np.ndarray) -> np.ndarray:
        return np.sign(a)

    def relu(self, a: np.ndarray) -> np.ndarray:
        return np.maximum(a, 0)

    sqrt = staticmethod(np.sqrt)

    def scalar(self, x: float, like: np.ndarray) -> np.ndarray:
        """The run's constant ``x`` as a 0-d array of ``like``'s dtype: ``x * a`` rounds ``x`` to that
        dtype either way (value-based casting in NumPy 1.x, weak scalars in 2.x), and a 0-d array
        skips the inspection of a Python scalar that NumPy 1.x makes on every call."""
        return np.asarray(x, like.dtype)

    zeros_like = staticmethod(np.zeros_like)

    def grad(self, objective: Objective, params: Params, X: np.ndarray, y: np.ndarray) -> Params:
        return objective.gradient(self, params, X, y)

    def optimizer_step(self, config: Config, params: Params) -> Callable[[Params, Any, Any], Params] | None:
        """The books' step (plain SGD, no ``wd``) of the linear model as one function: the gradient of
        :meth:`make_grad` and :func:`wdlib.model.sgd_step`'s update, the same operations in the same
        order; None (the core's step) for every other setting."""
        if (config.optimizer != "sgd" or config.wd or config.model != "linear"
                or type(self).grad is not NumpyBackend.grad):  # a subclass's own gradient is used as is
            return None
        from wdlib.steps import objective_for

        objective = objective_for(config)
        lambd, penalty_grad = objective.lambd, objective.penalty.grad
        penalized = objective._penalized(params)
        lr, bs = config.lr, float(config.batch_size)  # the int's quotient; a float divides sooner

        def step(params: Params, X: np.ndarray, y: np.ndarray) -> Params:
            w, b = params["w"], params["b"]
            residual = X @ w + b
            residual = residual - (y if y.shape == residual.shape else y.reshape(residual.shape))
            grads = {"w": X.T @ residual, "b": residual.sum(axis=0)}
            n = len(residual)
            for k in penalized:
                grads[k] = grads[k] + n * lambd * penalty_grad(self, params[k])
            new = {}
            for k, p in params.items():
                new[k] = p - lr * grads[k] / bs
            return new

        return step

    def make_grad(self, objective: Objective) -> Callable[[Params, np.ndarray, np.ndarray], Params]:
        """:meth:`Objective.gradient`, the same operations in the same order, with what does not change
        within a run (the penalized names, the bound methods) looked up once: the eager loop calls it
        every minibatch, and NumPy's own work there is a few microseconds."""
        if type(objective) is not Objective or type(self).grad is not NumpyBackend.grad:
            return super().make_grad(objective)
        model, lambd, penalty_grad = objective.model, objective.lambd, objective.penalty.grad
        linear, mlp = type(model) is Linear, type(model) is MLP
        layers = len(model.hidden) + 1 if mlp else 0
        apply, backward = model.apply, model.backward
        penalized: list[str] | None = None

        def grad(params: Params, X: np.ndarray, y: np.ndarray) -> Params:
            nonlocal penalized
            if penalized is None:  # the parameter names are the run's, the same at every step
                penalized = objective._penalized(params)
            if linear:  # Linear.apply and Linear.backward, inline
                residual = X @ params["w"] + params["b"]
                residual = residual - (y if y.shape == residual.shape else y.reshape(residual.shape))
                grads = {"w": X.T @ residual, "b": residual.sum(axis=0)}
            elif mlp:  # MLP.backward with the forward pass of MLP.apply, computed once, not twice
                y_hat, inputs, pre = model._forward(self, params, X)
                residual = y_hat - (y if y.shape == y_hat.shape else y.reshape(y_hat.shape))
                grads = {}
                g = residual
                for i in range(layers, 0, -1):
                    grads[f"W{i}"] = inputs[i - 1].T @ g
                    grads[f"b{i}"] = g.sum(axis=0)
                    if i > 1:
                        g = (g @ params[f"W{i}"].T) * (pre[i - 2] > 0)
                grads = {k: grads[k] for k in params}
            else:
                y_hat = apply(self, params, X)
                residual = y_hat - (y if y.shape == y_hat.shape else y.reshape(y_hat.shape))
                grads = backward(self, params, X, residual)
            n = len(residual)
            for k in penalized:
                grads[k] = grads[k] + n * lambd * penalty_grad(self, params[k])
            return grads

        return grad

    #: mode="concise" trains on the mean of (y_hat - y)^2 / 2: concise(wd, lr) = scratch(wd, lr).
    concise_loss_scale = 1.0

    def concise_step(self, config: Config, params: Params) -> Callable[[Params, Any, Any], Params]:
        """What a framework optimizer with weight decay does, by hand, for any model: the gradient of
        the batch-mean loss, then PyTorch's SGD (momentum, dampening, Nesterov) or Adam update, with
        ``wd`` coupled (added to the gradient), decoupled (``p -= lr * wd * p``) or independent
        (``p -= wd * p``) on the decayed parameters."""
        model = make_model(config.model, config.hidden)
        mask = decay_mask(params, config.decay_bias, config.penalize)
        a = {**OPTIMIZER_ARGS[config.optimizer], **dict(config.optimizer_args)}
        lr, optimizer = config.lr, config.optimizer
        decay = {k: config.wd if on else 0.0 for k, on in mask.items()}
        coupled = config.decay == "coupled"
        shrink = {"coupled": 0.0, "decoupled": lr, "independent": 1.0}[config.decay]
        state: dict[str, Any] = {"t": 0, "buf": {}, "m": {}, "v": {}}

        def direction(k: str, g: np.ndarray, t: int) -> np.ndarray:
            if optimizer == "sgd":
                return g
            if optimizer == "momentum":
                buf = g if t == 1 else a["beta"] * state["buf"][k] + (1 - a["dampening"]) * g
                state["buf"][k] = buf
                return g + a["beta"] * buf if a["nesterov"] else buf
            m = a["b1"] * state["m"].get(k, 0.0) + (1 - a["b1"]) * g
            v = a["b2"] * state["v"].get(k, 0.0) + (1 - a["b2"]) * (g * g)
            state["m"][k], state["v"][k] = m, v
            return (m / (1 - a["b1"] ** t)) / (np.sqrt(v / (1 - a["b2"] ** t)) + a["eps"])

        def step(params: Params, X: np.ndarray, y: np.ndarray) -> Params:
            state["t"] = t = state["t"] + 1
            residual = model.apply(self, params, X) - y.reshape(len(X), -1)
            grads = model.backward(self, params, X, residual)
            new = {}
            for k, p in params.items():
                g = grads[k] / len(X) + decay[k] * p if coupled else grads[k] / len(X)
                new[k] = p - lr * direction(k, g, t) - (shrink * decay[k]) * p if shrink else \
                    p - lr * direction(k, g, t)
            return new

        return step

    def concise_loss(self, params: Params, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return squared_loss(X @ params["w"] + params["b"], y).mean()

    # Fast path (wdlib_numpy.fused): the whole run as matrix-form SGD, one or two BLAS calls a step.

    def fit_plan(self, plan: Any) -> Any:
        from .fused import fit_plan

        return fit_plan(plan)
