"""A model or penalty of your own checked at the boundary: what a model's ``init`` returns (when a
Config names it), and what its ``apply`` and ``backward`` and a penalty's ``__call__`` and ``grad``
return on the backend that trains them (before the first step), so a mistake reads as a ConfigError
naming the object and the shape, not as a framework's error mid-run or a silently wrong run."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError
from .model import USER_MODELS, decay_mask
from .penalty import BUILTIN_PENALTIES, PENALTIES

if TYPE_CHECKING:
    from .backend import Backend
    from .config import Config
    from .data import Problem

#: Rows of the training data the model is first called on.
PROBE_ROWS = 2


def user_parameters(name: str, num_inputs: int) -> dict[str, np.ndarray]:
    """The parameters a registered model's ``init`` draws (from a fixed seed), checked: a dict of
    named float arrays. Their names and sizes are what a Config's checks need."""
    params = USER_MODELS[name].init(np.random.default_rng(0), num_inputs)
    expected = "a model whose init(rng, num_inputs) returns a dict of named float NumPy arrays"
    if not isinstance(params, dict) or not params or not all(isinstance(k, str) for k in params):
        raise ConfigError("model", name, expected, f"it returned {type(params).__name__}")
    for key, value in params.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            got = f"dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ConfigError("model", name, expected, f"its {key!r} is {got}"
                              + (": draw it as floats, e.g. np.zeros(1)" if got.startswith("dtype") else ""))
    return params


def check_model_call(backend: Backend, problem: Problem, config: Config) -> None:
    """Call the model of ``config`` (one of the user's) on the first rows of the training data, on
    ``backend``: ``apply`` must return (n, 1) predictions, and ``backward`` (where the backend trains by
    it) one gradient of each parameter's shape."""
    model = USER_MODELS[config.model]
    n = min(PROBE_ROWS, problem.n_train)
    with backend.run_context(config):
        X = backend.asarray(problem.X_train[:n], config.dtype)
        params = {k: backend.asarray(v, config.dtype) for k, v in problem.init.items()}
        out = _called(config, "model", "apply(ops, params, X)", model.apply, backend, params, X)
        shape = _shape(backend, config, "model", "apply", out)
        if shape != (n, 1):
            raise ConfigError("model", config.model, f"a model whose apply(ops, params, X) returns (n, 1) "
                              f"predictions on X of shape (n, {problem.num_inputs})",
                              f"it returned shape {shape} for n = {n}")
        if backend.autodiff:
            return
        dout = backend.asarray(np.ones((n, 1)), config.dtype)
        grads = _called(config, "model", "backward(ops, params, X, dout)", model.backward, backend, params,
                        X, dout)
        wanted = {k: tuple(v.shape) for k, v in problem.init.items()}
        got = ({k: _shape(backend, config, "model", "backward", v) for k, v in grads.items()}
               if isinstance(grads, dict) else type(grads).__name__)
        if got != wanted:
            raise ConfigError("model", config.model, "a model whose backward(ops, params, X, dout) returns "
                              f"one gradient per parameter, of its shape: {wanted}", f"it returned {got}")


def check_penalty_call(backend: Backend, problem: Problem, config: Config) -> None:
    """Call the penalty of ``config`` (one of the user's) on each parameter it acts on, on
    ``backend``: its value must be a scalar (a sum), and its ``grad`` (where the backend trains by
    it) of the parameter's shape."""
    penalty = PENALTIES[config.penalty]
    mask = decay_mask(problem.init, config.decay_bias, config.penalize)
    with backend.run_context(config):
        for key in (k for k, on in mask.items() if on):
            p = backend.asarray(problem.init[key], config.dtype)
            value = _called(config, "penalty", "__call__(ops, w)", penalty, backend, p)
            shape = _shape(backend, config, "penalty", "__call__", value)
            if math.prod(shape) != 1:  # a scalar; MXNet's sum is of shape (1,)
                raise ConfigError("penalty", config.penalty, "a penalty whose __call__(ops, w) returns a "
                                  "scalar (e.g. (w**2).sum() / 2)", f"on {key!r} it returned shape {shape}")
            if not backend.autodiff:
                grad = _called(config, "penalty", "grad(ops, w)", penalty.grad, backend, p)
                got = _shape(backend, config, "penalty", "grad", grad)
                if got != problem.init[key].shape:
                    raise ConfigError("penalty", config.penalty, "a penalty whose grad(ops, w) has w's "
                                      "shape", f"on {key!r} of shape {problem.init[key].shape} it "
                                      f"returned shape {got}")


def check_user_objects(backend: Backend, problem: Problem, config: Config) -> None:
    """:func:`check_model_call` and :func:`check_penalty_call` for a user's model and penalty."""
    if config.model in USER_MODELS:
        check_model_call(backend, problem, config)
    if config.penalty not in BUILTIN_PENALTIES and config.lambd:
        check_penalty_call(backend, problem, config)


def _shape(backend: Backend, config: Config, field: str, method: str, out: Any) -> tuple[int, ...]:
    """The shape of what a user's method returned, which must be the backend's array."""
    try:
        return tuple(np.shape(backend.to_numpy(out)))
    except Exception as err:
        raise ConfigError(field, getattr(config, field), f"a {field} whose {method} returns "
                          f"{config.backend} arrays, {_WITH_OPS}", f"it returned {type(out).__name__}"
                          ) from err


def _called(config: Config, field: str, what: str, method: Any, *args: Any) -> Any:
    """``method(*args)``, a user's model's or penalty's (``field``), any error it raises named."""
    try:
        return method(*args)
    except Exception as err:
        raise ConfigError(field, getattr(config, field), f"a {field} whose {what} runs on "
                          f"{config.backend} arrays, {_WITH_OPS}", f"it raised {type(err).__name__}: {err}"
                          ) from err


_WITH_OPS = "computed with ops (ops.dot, ops.relu, ...) and the arrays' operators, not NumPy functions"
