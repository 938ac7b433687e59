"""The pieces of the eager loop (:func:`wdlib.training.fit`): one minibatch's update, built from the
from-scratch objective and the core optimizer or the framework's own, and the per-epoch evaluation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import optim
from .backend import Backend
from .config import Config
from .data import Problem
from .model import (
    Array,
    Objective,
    Params,
    decay_mask,
    evaluate_loss,
    example_loss,
    make_model,
    make_penalty,
    mean_loss,
    sgd_step,
)


def make_step(backend: Backend, config: Config, params: Params) -> Callable[[Params, Array, Array], Params]:
    """The update of one minibatch: the from-scratch objective (model, penalty) and the core optimizer
    (:mod:`wdlib.optim`), or the framework's own optimizer with weight decay (``mode="concise"``)."""
    if config.mode == "concise":
        return backend.concise_step(config, params)
    own = getattr(backend, "optimizer_step", None)  # a backend may supply (compile) the whole step
    step = None if own is None else own(config, params)
    if step is not None:
        return step
    grad = backend.make_grad(objective_for(config))
    scalar = scalar_for(backend, params) or float
    lr, batch_size = scalar(config.lr), scalar(float(config.batch_size))  # the int's quotient, sooner
    if config.optimizer == "sgd" and not config.wd:
        def sgd(params: Params, X: Array, y: Array) -> Params:  # optim.sgd, bit for bit, but one call
            return sgd_step(params, grad(params, X, y), lr, batch_size)

        return sgd
    optimizer = optimizer_for(backend, config, params)
    state = optimizer.init(params)

    def step(params: Params, X: Array, y: Array) -> Params:
        nonlocal state
        updates, state = optimizer.update(grad(params, X, y), state, params)
        return optim.apply_updates(params, updates)

    return step


def objective_for(config: Config) -> Objective:
    """The from-scratch objective of ``config``: its model's squared loss plus ``lambd`` x penalty."""
    return Objective(config.lambd, make_penalty(config.penalty, config.l1_ratio), config.decay_bias,
                     make_model(config.model, config.hidden), config.penalize)


def optimizer_for(ops: Any, config: Config, params: Params) -> optim.Transform:
    """The core optimizer of ``config`` (on summed minibatch gradients), its decay on the same
    parameters as the penalty."""
    return optim.make_optimizer(
        ops, config.optimizer, config.lr, config.batch_size, dict(config.optimizer_args),
        wd=config.wd, decay=config.decay, mask=decay_mask(params, config.decay_bias, config.penalize),
        scalar=scalar_for(ops, params),
    )


def scalar_for(ops: Any, params: Params) -> Callable[[float], Any] | None:
    """A constant of the run as its arrays multiply it fastest: the backend's ``scalar(x, like)``
    where it has one (NumPy: a 0-d array of the parameters' dtype, the same rounding as the float);
    None where it has not (the floats themselves)."""
    own = getattr(ops, "scalar", None)
    if own is None or not params:
        return None
    like = next(iter(params.values()))
    return lambda x: own(x, like)


def make_evaluate(
    backend: Backend, problem: Problem, config: Config, X: Array, y: Array, X_test: Array, y_test: Array
) -> Callable[[Params, int], tuple[float, float]]:
    """``evaluate(params, k)``: train and test loss at the k-th evaluation.

    Whole-set means of the squared loss, or (when the problem carries the book's loader orders) d2l's
    ``evaluate_loss`` with the loss the run trains on.
    """
    model = make_model(config.model, config.hidden)
    compiled = getattr(backend, "mean_loss_function", None)  # a backend may compile the evaluation
    if problem.eval_orders is None and compiled is not None:
        mean = compiled(model)

        def whole_compiled(params: Params, k: int) -> tuple[float, float]:
            return (backend.to_numpy(mean(params, X, y)).item(),
                    backend.to_numpy(mean(params, X_test, y_test)).item())

        return whole_compiled
    if problem.eval_orders is None:
        def whole(params: Params, k: int) -> tuple[float, float]:
            return (backend.to_numpy(mean_loss(backend, params, X, y, model)).item(),
                    backend.to_numpy(mean_loss(backend, params, X_test, y_test, model)).item())

        return whole

    if config.mode == "concise":
        loss = backend.concise_loss
    else:
        def loss(params: Params, Xb: Array, yb: Array) -> Array:
            return example_loss(backend, params, Xb, yb, model)

    eval_orders = backend.index(problem.eval_orders)
    test_order = backend.index(np.arange(len(problem.X_test)))

    def batched(params: Params, k: int) -> tuple[float, float]:
        return (evaluate_loss(backend, loss, params, X, y, eval_orders[k], config.batch_size),
                evaluate_loss(backend, loss, params, X_test, y_test, test_order, config.batch_size))

    return batched
