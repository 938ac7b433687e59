"""The chapter's math, written once for every framework.

``ops`` is a backend: these functions use only its ``dot`` and ``sign`` plus the arithmetic operators
and ``.sum``/``.mean`` that NumPy, PyTorch, MXNet ``nd`` and JAX arrays all share. Each is written as
the books write it, so autodiff sees the same expression as the books' code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

Array = Any  # an array of whichever framework ``ops`` belongs to
Params = dict[str, Array]  # {"w": (num_inputs, 1), "b": (1,)}


class Ops(Protocol):
    def dot(self, a: Array, b: Array) -> Array: ...
    def sign(self, a: Array) -> Array: ...


def linreg(ops: Ops, X: Array, w: Array, b: Array) -> Array:
    """The linear model X w + b."""
    return ops.dot(X, w) + b


def squared_loss(y_hat: Array, y: Array) -> Array:
    """Per-example squared loss (y_hat - y)^2 / 2."""
    # The books' y.reshape(y_hat.shape), skipped when y has that shape already (the labels come as a
    # column): a reshape is a framework call. Inline, as the eager loop runs this every minibatch.
    return (y_hat - (y if y.shape == y_hat.shape else y.reshape(y_hat.shape))) ** 2 / 2


class Penalty(Protocol):
    name: str

    def __call__(self, ops: Ops, w: Array) -> Array: ...
    def grad(self, ops: Ops, w: Array) -> Array: ...


class L2Penalty:
    """||w||_2^2 / 2: its gradient is w, so SGD shrinks w by a constant factor (weight decay)."""

    name = "l2"

    def __call__(self, ops: Ops, w: Array) -> Array:
        return (w**2).sum() / 2

    def grad(self, ops: Ops, w: Array) -> Array:
        return w


class L1Penalty:
    """||w||_1: its (sub)gradient is sign(w), pulling every weight toward 0 by the same amount."""

    name = "l1"

    def __call__(self, ops: Ops, w: Array) -> Array:
        # |w| written as w * sign(w): autodiff then gives sign(w), 0 at w = 0, in every framework
        # (d|w|/dw at 0 is 1 in JAX but 0 elsewhere, and the bias starts at exactly 0).
        return (w * ops.sign(w)).sum()

    def grad(self, ops: Ops, w: Array) -> Array:
        return ops.sign(w)


l2_penalty = L2Penalty()
l1_penalty = L1Penalty()
PENALTIES: dict[str, Penalty] = {"l2": l2_penalty, "l1": l1_penalty}


@dataclass(frozen=True)
class Objective:
    """The from-scratch minibatch objective: per-example loss plus ``lambd * penalty(w)``.

    As in the books the penalty is broadcast onto every example, so the summed minibatch objective
    holds it ``batch_size`` times and the SGD step's division by ``batch_size`` leaves ``lambd``.
    """

    lambd: float
    penalty: Penalty
    decay_bias: bool = False

    def __call__(self, ops: Ops, params: Params, X: Array, y: Array) -> Array:
        """Per-example objective, shape (n, 1); a backend differentiates its sum."""
        w, b = params["w"], params["b"]
        l = squared_loss(linreg(ops, X, w, b), y) + self.lambd * self.penalty(ops, w)
        if self.decay_bias:
            l = l + self.lambd * self.penalty(ops, b)
        return l

    def gradient(self, ops: Ops, params: Params, X: Array, y: Array) -> Params:
        """Hand-derived gradient of the summed objective."""
        w, b = params["w"], params["b"]
        y_hat = linreg(ops, X, w, b)
        residual = y_hat - (y if y.shape == y_hat.shape else y.reshape(y_hat.shape))  # as squared_loss
        n = len(residual)
        grad_w = ops.dot(X.T, residual) + n * self.lambd * self.penalty.grad(ops, w)
        grad_b = residual.sum(axis=0)
        if self.decay_bias:
            grad_b = grad_b + n * self.lambd * self.penalty.grad(ops, b)
        return {"w": grad_w, "b": grad_b}


def example_loss(ops: Ops, params: Params, X: Array, y: Array) -> Array:
    """Per-example squared loss of the linear model, no penalty."""
    return squared_loss(linreg(ops, X, params["w"], params["b"]), y)


def mean_loss(ops: Ops, params: Params, X: Array, y: Array) -> Array:
    """The loss the books record per epoch: mean squared loss over a whole data set, no penalty."""
    return squared_loss(linreg(ops, X, params["w"], params["b"]), y).mean()  # example_loss, inlined


def evaluate_loss(
    ops: Any, loss: Callable[[Params, Array, Array], Array], params: Params, X: Array, y: Array,
    order: Any, batch_size: int,
) -> float:
    """d2l's ``evaluate_loss``: the loss batch by batch in ``order`` (row indices as ``ops.index``
    returns them), summed in Python floats and divided by the number of loss values (for a loss that
    is already a batch mean, the number of batches)."""
    total, count = 0.0, 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        l = loss(params, ops.take(X, idx), ops.take(y, idx))
        total += float(ops.to_numpy(l.sum()))  # summed by the framework, as the book does
        count += math.prod(l.shape)
    return total / count


def sgd_step(params: Params, grads: Params, lr: float, batch_size: int) -> Params:
    """The books' minibatch SGD update ``param - lr * grad / batch_size``."""
    new = {}
    for k, p in params.items():  # a loop, not a dict comprehension: no function object per step
        new[k] = p - lr * grads[k] / batch_size
    return new
