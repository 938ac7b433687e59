"""A model of your own checked at the boundary: what its ``init`` returns (when a Config names it) and
what its ``apply`` and ``backward`` return on the backend that trains it (before the first step), so a
mistake reads as a ConfigError naming the model and the shape, not as a framework's error mid-run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError
from .model import USER_MODELS

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
        out = _called(config, "apply(ops, params, X)", lambda: model.apply(backend, params, X))
        shape = tuple(np.shape(backend.to_numpy(out)))
        if shape != (n, 1):
            raise ConfigError("model", config.model, f"a model whose apply(ops, params, X) returns (n, 1) "
                              f"predictions on X of shape (n, {problem.num_inputs})",
                              f"it returned shape {shape} for n = {n}")
        if backend.autodiff:
            return
        dout = backend.asarray(np.ones((n, 1)), config.dtype)
        grads = _called(config, "backward(ops, params, X, dout)",
                        lambda: model.backward(backend, params, X, dout))
        wanted = {k: tuple(v.shape) for k, v in problem.init.items()}
        got = ({k: tuple(np.shape(backend.to_numpy(v))) for k, v in grads.items()}
               if isinstance(grads, dict) else type(grads).__name__)
        if got != wanted:
            raise ConfigError("model", config.model, "a model whose backward(ops, params, X, dout) returns "
                              f"one gradient per parameter, of its shape: {wanted}", f"it returned {got}")


def _called(config: Config, what: str, call: Any) -> Any:
    try:
        return call()
    except Exception as err:
        raise ConfigError("model", config.model, f"a model whose {what} runs on {config.backend} arrays",
                          f"it raised {type(err).__name__}: {err}") from err
