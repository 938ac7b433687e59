"""The chapter's math, written once for every framework: models, losses, penalties, the objective.

``ops`` is a backend: these functions use only its ``dot``, ``sign`` and ``relu`` plus the arithmetic
operators and ``.sum``/``.mean``/``.T`` that NumPy, PyTorch, MXNet ``nd`` and JAX arrays all share.
Each is written as the books write it, so autodiff sees the same expression as the books' code.

A model is two functions (micrograd's ``__call__`` plus ``parameters()``, made pure):
``init(rng, num_inputs) -> params``, a dict of named NumPy arrays, and ``apply(ops, params, X)``, the
predictions. ``backward`` is its hand-derived gradient, which the NumPy backend (no autodiff) uses.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .penalty import (  # noqa: F401 (re-exported: these names were first defined here)
    BUILTIN_PENALTIES,
    PENALTIES,
    ElasticNet,
    L1Penalty,
    L2Penalty,
    Penalty,
    l1_penalty,
    l2_penalty,
    make_penalty,
    register_penalty,
)

Array = Any  # an array of whichever framework ``ops`` belongs to
Params = dict[str, Array]  # the linear model: {"w": (num_inputs, 1), "b": (1,)}


class Ops(Protocol):
    def dot(self, a: Array, b: Array) -> Array: ...
    def sign(self, a: Array) -> Array: ...
    def relu(self, a: Array) -> Array: ...


# --- models ----------------------------------------------------------------------------------------


class Model(Protocol):
    name: str

    def init(self, rng: np.random.Generator, num_inputs: int) -> dict[str, np.ndarray]: ...
    def apply(self, ops: Ops, params: Params, X: Array) -> Array: ...
    def backward(self, ops: Ops, params: Params, X: Array, dout: Array) -> Params: ...


def linreg(ops: Ops, X: Array, w: Array, b: Array) -> Array:
    """The linear model X w + b."""
    return ops.dot(X, w) + b


@dataclass(frozen=True)
class Linear:
    """The chapter's linear regression ``X w + b``: w drawn from N(0, 1), b = 0, as both books do."""

    name = "linear"

    def init(self, rng: np.random.Generator, num_inputs: int) -> dict[str, np.ndarray]:
        return {"w": rng.standard_normal((num_inputs, 1)), "b": np.zeros(1)}

    def apply(self, ops: Ops, params: Params, X: Array) -> Array:
        return ops.dot(X, params["w"]) + params["b"]

    def backward(self, ops: Ops, params: Params, X: Array, dout: Array) -> Params:
        return {"w": ops.dot(X.T, dout), "b": dout.sum(axis=0)}


@dataclass(frozen=True)
class MLP:
    """d2l's multilayer perceptron: ``hidden`` ReLU layers, then a linear output of one unit.

    Parameters ``W1, b1, ..., WL, bL``; weights drawn from N(0, 2 / fan_in) (He) for the ReLU layers
    and N(0, 1 / fan_in) for the output, biases 0.
    """

    hidden: tuple[int, ...] = (256,)
    name = "mlp"

    def init(self, rng: np.random.Generator, num_inputs: int) -> dict[str, np.ndarray]:
        widths = (num_inputs, *self.hidden, 1)
        params = {}
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths), start=1):
            gain = 1.0 if i == len(widths) - 1 else 2.0
            params[f"W{i}"] = rng.standard_normal((fan_in, fan_out)) * math.sqrt(gain / fan_in)
            params[f"b{i}"] = np.zeros(fan_out)
        return params

    def _forward(self, ops: Ops, params: Params, X: Array) -> tuple[Array, list[Array], list[Array]]:
        """Output, the input of each layer, and the pre-activations of the hidden layers."""
        h, inputs, pre = X, [], []
        for i in range(1, len(self.hidden) + 1):
            inputs.append(h)
            z = ops.dot(h, params[f"W{i}"]) + params[f"b{i}"]
            pre.append(z)
            h = ops.relu(z)
        inputs.append(h)
        last = len(self.hidden) + 1
        return ops.dot(h, params[f"W{last}"]) + params[f"b{last}"], inputs, pre

    def apply(self, ops: Ops, params: Params, X: Array) -> Array:
        return self._forward(ops, params, X)[0]

    def backward(self, ops: Ops, params: Params, X: Array, dout: Array) -> Params:
        _, inputs, pre = self._forward(ops, params, X)
        grads: Params = {}
        g = dout
        for i in range(len(self.hidden) + 1, 0, -1):
            grads[f"W{i}"] = ops.dot(inputs[i - 1].T, g)
            grads[f"b{i}"] = g.sum(axis=0)
            if i > 1:
                g = ops.dot(g, params[f"W{i}"].T) * (pre[i - 2] > 0)
        return {k: grads[k] for k in params}


#: The models a Config names out of the box; a user's own is added by :func:`register_model`.
BUILTIN_MODELS = ("linear", "mlp")
#: Models registered by name (``model=MyModel()``): objects with ``name``, ``init`` and ``apply`` (and
#: ``backward`` for a backend without autodiff, NumPy).
USER_MODELS: dict[str, Model] = {}


def register_model(model: Model) -> str:
    """Make ``model`` usable as ``model=model.name``; returns the name. Another object under a name
    already taken replaces it; a Config tells them apart by fingerprint (:mod:`wdlib.named`)."""
    from .errors import ConfigError
    from .named import register_named

    name = getattr(model, "name", None)
    if not isinstance(name, str) or not name or not all(
            callable(getattr(model, m, None)) for m in ("init", "apply")):
        raise ConfigError("model", model, "'linear', 'mlp', a registered model's name, or an object with a "
                          "str `name`, init(rng, num_inputs) -> {name: array} and apply(ops, params, X)")
    return register_named("model", model, name, USER_MODELS, BUILTIN_MODELS)


def model_names() -> tuple[str, ...]:
    """Every name ``Config.model`` accepts now: the built-in models and the registered ones."""
    return (*BUILTIN_MODELS, *USER_MODELS)


def make_model(name: str, hidden: tuple[int, ...] = ()) -> Model:
    """The model of ``Config.model`` / ``Config.hidden``."""
    if name == "mlp":
        return MLP(tuple(hidden))
    return Linear() if name == "linear" else USER_MODELS[name]


def parameter_names(c: Any) -> list[str]:
    """The names of the parameters of the model of ``c`` (a Config, or a dict of its fields), drawn
    only for a registered model."""
    get = c.get if isinstance(c, dict) else lambda k: getattr(c, k)
    if get("model") == "linear":
        return ["w", "b"]
    if get("model") == "mlp":
        return [f"{kind}{i}" for i in range(1, len(get("hidden")) + 2) for kind in "Wb"]
    from .user_checks import user_parameters

    return list(user_parameters(get("model"), get("num_inputs")))


def weight_names(params: Mapping[str, Any]) -> list[str]:
    """The weight matrices (2-D parameters): what is decayed by default, and what ``w_norm`` measures."""
    return [k for k, p in params.items() if np.ndim(p) >= 2]


def decay_mask(params: Mapping[str, Any], decay_bias: bool = False,
               names: tuple[str, ...] = ()) -> dict[str, bool]:
    """Which parameters are penalized: ``names`` if given, else every weight matrix (and, with
    ``decay_bias``, every bias too)."""
    if names:
        return {k: k in names for k in params}
    weights = set(weight_names(params))
    return {k: decay_bias or k in weights for k in params}


def squared_loss(y_hat: Array, y: Array) -> Array:
    """Per-example squared loss (y_hat - y)^2 / 2."""
    # The books' y.reshape(y_hat.shape), skipped when y has that shape already (the labels come as a
    # column): a reshape is a framework call. Inline, as the eager loop runs this every minibatch.
    return (y_hat - (y if y.shape == y_hat.shape else y.reshape(y_hat.shape))) ** 2 / 2


# --- the objective ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """The from-scratch minibatch objective: per-example loss plus ``lambd * penalty(p)`` for each
    penalized parameter ``p`` (the weights; the biases too with ``decay_bias``; or ``penalize``).

    As in the books the penalty is broadcast onto every example, so the summed minibatch objective
    holds it ``batch_size`` times and the SGD step's division by ``batch_size`` leaves ``lambd``.
    """

    lambd: float
    penalty: Penalty
    decay_bias: bool = False
    model: Model = Linear()
    penalize: tuple[str, ...] = ()

    def _penalized(self, params: Params) -> list[str]:
        if not self.lambd:
            return []
        mask = decay_mask(params, self.decay_bias, self.penalize)
        return [k for k, on in mask.items() if on]

    def __call__(self, ops: Ops, params: Params, X: Array, y: Array) -> Array:
        """Per-example objective, shape (n, 1); a backend differentiates its sum."""
        l = squared_loss(self.model.apply(ops, params, X), y)
        for k in self._penalized(params):
            l = l + self.lambd * self.penalty(ops, params[k])
        return l

    def gradient(self, ops: Ops, params: Params, X: Array, y: Array) -> Params:
        """Hand-derived gradient of the summed objective."""
        y_hat = self.model.apply(ops, params, X)
        residual = y_hat - (y if y.shape == y_hat.shape else y.reshape(y_hat.shape))  # as squared_loss
        grads = self.model.backward(ops, params, X, residual)
        n = len(residual)
        for k in self._penalized(params):
            grads[k] = grads[k] + n * self.lambd * self.penalty.grad(ops, params[k])
        return grads


def example_loss(ops: Ops, params: Params, X: Array, y: Array, model: Model = Linear()) -> Array:
    """Per-example squared loss of ``model``, no penalty."""
    return squared_loss(model.apply(ops, params, X), y)


def mean_loss(ops: Ops, params: Params, X: Array, y: Array, model: Model = Linear()) -> Array:
    """The loss the books record per epoch: mean squared loss over a whole data set, no penalty."""
    return squared_loss(model.apply(ops, params, X), y).mean()  # example_loss, inlined


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
    """The books' minibatch SGD update ``param - lr * grad / batch_size`` (equal, bit for bit, to
    ``wdlib.optim.sgd``; kept as one function because the eager loop calls it every minibatch)."""
    new = {}
    for k, p in params.items():  # a loop, not a dict comprehension: no function object per step
        new[k] = p - lr * grads[k] / batch_size
    return new
