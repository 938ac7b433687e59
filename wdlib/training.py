"""The one training loop and the public training calls (the record of a run: :mod:`wdlib.run`; the
pieces of a step and of an evaluation: :mod:`wdlib.steps`)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .backend import Backend, get_backend
from .config import Config, make_config, with_lambdas
from .data import Problem, data_config, make_problem
from .errors import ConfigError
from .limits import check_run, check_runs
from .model import parameter_names
from .named import check_current
from .run import Run, record
from .steps import make_evaluate, make_step, objective_for, optimizer_for  # noqa: F401 (also from here)
from .user_checks import check_user_objects
from .validate import check_compiled, check_problem, check_supported, lambda_values


def fit(backend: Backend | str, problem: Problem, config: Config | None = None, **fields: Any) -> Run:
    """Train on ``problem`` with minibatch SGD (or ``config.optimizer``), recording losses every
    ``problem.eval_every`` epochs.

    The problem is the one source of truth for its sizes: without ``config``, one is made from
    ``fields`` with n_train, n_test, num_inputs, batch_size, num_epochs, the model and the backend
    taken from ``problem`` and ``backend``; a ``config`` that disagrees with them is refused.
    """
    impl = get_backend(backend) if isinstance(backend, str) else backend
    if not isinstance(impl, Backend):
        raise ConfigError("backend", backend, "a backend name such as 'numpy', or a wdlib.Backend")
    if not isinstance(problem, Problem):
        raise ConfigError("problem", type(problem).__name__, "a wdlib.Problem",
                          "make one with wdlib.Problem.from_arrays(X, y) or wdlib.make_problem(config)")
    config = _config_of(impl, problem, config, fields)
    check_problem(problem, config)
    return _fit(impl, problem, config)


def _config_of(backend: Backend, problem: Problem, config: Config | None, fields: dict[str, Any]) -> Config:
    """``config`` checked against ``problem`` and ``backend``, or made from them and ``fields``."""
    facts = {
        "backend": backend.name, "n_train": problem.n_train, "n_test": len(problem.X_test),
        "num_inputs": problem.num_inputs, "batch_size": problem.batch_size,
        "num_epochs": problem.num_epochs,
        "data_fingerprint": problem.data_fingerprint,
    }
    if config is None:
        dataset = "arrays" if problem.data_fingerprint else "synthetic"
        config = make_config(**{"dataset": dataset, **fields, **facts})
    elif fields:
        raise ConfigError(next(iter(fields)), fields[next(iter(fields))], "no field keywords with config=...",
                          "use config.replace(...)")
    if not isinstance(config, Config):
        raise ConfigError("config", type(config).__name__, "a wdlib.Config (see wdlib.make_config)")
    check_current(config)
    for name, value in facts.items():
        if getattr(config, name) != value:
            raise ConfigError(f"config.{name}", getattr(config, name),
                              f"{value!r}, as the {'backend' if name == 'backend' else 'problem'} has")
    names = parameter_names(config)
    shapes = {k: tuple(v.shape) for k, v in problem.init.items()}
    if sorted(shapes) != sorted(names):
        raise ConfigError("config.model", config.model, f"the model of the problem's parameters "
                          f"({', '.join(shapes)})")
    return config


def _fit(backend: Backend, problem: Problem, config: Config) -> Run:
    """The one training loop (or the backend's fast path, where it gives the same numbers)."""
    check_user_objects(backend, problem, config)
    if config.engine != "eager" and backend.supports_fused(config):
        start = time.perf_counter()
        train_loss, test_loss, final = backend.fused_fit(problem, config)
        return record(backend, problem, config, train_loss, test_loss, final,
                       time.perf_counter() - start, "fused")
    _check_engine(backend, config)
    if config.engine == "auto" and backend.supports_compiled(problem, config):
        start = time.perf_counter()
        train_loss, test_loss, final = check_compiled(backend.name, backend.fit_compiled(problem, config),
                                                      problem, config)
        return record(backend, problem, config, train_loss, test_loss, final,
                       time.perf_counter() - start, "compiled")
    num_evals = config.num_epochs // problem.eval_every
    train_loss = np.full(num_evals, np.nan)
    test_loss = np.full(num_evals, np.nan)
    with backend.run_context(config):
        X, y, X_test, y_test = (
            backend.asarray(a, config.dtype)
            for a in (problem.X_train, problem.y_train, problem.X_test, problem.y_test)
        )
        params = {k: backend.asarray(v, config.dtype) for k, v in problem.init.items()}
        step = make_step(backend, config, params)
        evaluate = make_evaluate(backend, problem, config, X, y, X_test, y_test)
        take, eval_every = backend.take, problem.eval_every
        n_train, batch_size = problem.batch_order.shape[1], problem.batch_size
        start = time.perf_counter()
        order = backend.index(problem.batch_order)
        for epoch in range(config.num_epochs):
            epoch_order = order[epoch]
            for first in range(0, n_train, batch_size):  # the minibatches of Problem.batches(epoch)
                idx = epoch_order[first : first + batch_size]
                params = step(params, take(X, idx), take(y, idx))
            if (epoch + 1) % eval_every:
                continue
            k = (epoch + 1) // eval_every - 1
            train, test = evaluate(params, k)
            train_loss[k], test_loss[k] = train, test
            if not (math.isfinite(train) and math.isfinite(test)):
                break
        seconds = time.perf_counter() - start
        final = {k: backend.to_numpy(p).copy() for k, p in params.items()}
    return record(backend, problem, config, train_loss, test_loss, final, seconds, "eager")


def _check_engine(backend: Backend, config: Config) -> None:
    if config.engine == "fused" and not backend.supports_fused(config):
        raise ConfigError("engine", "fused", f"'auto' or 'eager': backend {backend.name!r} has no "
                          "fused path for this configuration")


def train(
    backend: str = "numpy", preset: str = "d2l", *, lambd: float = 0.0, data: Any = None, test: Any = None,
    **overrides: Any,
) -> Run:
    """Run the chapter's experiment on one backend, or the same on your data.

    Args:
        backend: "numpy" (default), "torch", "jax", "mxnet", or a registered backend.
        preset: "d2l" (default) or "gluonbook": the book whose settings are the defaults.
        lambd: λ of the penalty ``λ ||w||² / 2`` in the loss (``penalty=`` another one).
        data: your arrays ``(X, y)``: 2-D X, one target per row; checked once, before anything runs.
        test: your test set ``(X_test, y_test)``; without it, a seeded split of ``test_fraction``.
        **overrides: any :class:`~wdlib.Config` field: ``model="mlp"``, ``optimizer="adam"``,
            ``wd=0.01, decay="decoupled"`` (AdamW), ``dataset="diabetes"``, ``dtype="float64"``, ...

    Returns:
        A :class:`~wdlib.Run`: the config, the loss curves (``train_loss``, ``test_loss`` at
        ``epochs``), the final ``params`` and ``w_norm``, the engine used and the loop's time.

    Raises:
        ConfigError: a bad field or combination (naming it and the accepted values), before any
            framework is imported or data drawn.
        BackendNotInstalledError: the backend's framework is missing (the message says how to install it).
        DivergenceError: the loss became NaN or inf (``on_divergence="record"`` keeps the run instead).

    >>> run = wdlib.train("torch", lambd=3)  # doctest: +SKIP
    >>> run.test_loss[-1], run.w_norm  # doctest: +SKIP
    """
    if data is None:
        if test is not None:
            raise ConfigError("test", "a test set", "None unless data=(X, y) is given")
        return train_sequence([make_config(preset, backend=backend, lambd=lambd, **overrides)])[0]
    config, arrays = data_config(data, test, preset, backend=backend, lambd=lambd, **overrides)
    impl = prepare_backend([config])
    return _fit(impl, make_problem(config, arrays), config)


def train_sequence(configs: Sequence[Config]) -> list[Run]:
    """Train ``configs`` one after another, as a book's code does in one process.

    With ``rng="numpy"`` each run is independent. With ``rng="native"`` the framework's random
    streams are seeded once, from the first config, and continue from run to run: the second run of
    the gluonbook chapter draws a new w from where the first left the stream, as the book does.
    """
    if not configs:
        raise ConfigError("configs", [], "at least one Config")
    impl = prepare_backend(configs)
    if configs[0].rng == "native":
        problems = impl.native_problems(configs)
    else:
        problems = [make_problem(c) for c in configs]
    return [_fit(impl, problem, config) for problem, config in zip(problems, configs, strict=True)]


_SHARED_FIELDS = ("backend", "preset", "n_train", "n_test", "num_inputs", "true_w", "true_b", "noise",
                  "batch_size", "dtype", "seed", "rng")


def prepare_backend(configs: Sequence[Config]) -> Backend:
    """Check that the backend can run ``configs`` (before its framework is imported or data drawn),
    then load it."""
    check_runs(configs)
    check_supported(configs)  # what the backend's class offers, before its framework is imported
    first = configs[0]
    if first.rng == "native":
        for config in configs[1:]:
            for name in _SHARED_FIELDS:
                if getattr(config, name) != getattr(first, name):
                    raise ConfigError(name, getattr(config, name),
                                      f"{getattr(first, name)!r} like the first run: runs that share "
                                      "native random streams share the data")
    impl = get_backend(first.backend)
    for config in configs:
        _check_engine(impl, config)
    return impl


def train_lambdas(
    backend: str = "numpy", lambdas: Sequence[float] = (0.0, 3.0), preset: str = "d2l", seed: int = 0,
    *, data: Any = None, test: Any = None, **fields: Any,
) -> list[Run]:
    """Train one run per λ of ``lambdas`` on identical inputs, vectorized where the backend can.

    Contract (for callers such as ``wdlib.sweep``): one :class:`Run` per entry of ``lambdas``, in that
    order, each what ``train(backend, preset, lambd=λ, seed=seed, data=data, test=test, **fields)``
    returns, except that on the backend's fast path all λ train at once as the columns of one
    ``(p + 2, k)`` state (:mod:`wdlib.vectorized`), so the numbers may differ from one-at-a-time runs
    by rounding only (float64: 1e-12 relative on w and the test loss; float32: 1e-4) and depend in the
    last bits on the other λ of the batch; ``run.meta`` then has ``engine="vectorized"`` and
    ``vectorized_k``, and ``run.seconds`` is the batch's wall time divided by ``len(lambdas)``. Without a
    fast path (``engine="eager"``, L1, an MLP, another optimizer, ``mode="concise"``, ``rng="native"``)
    the runs go one at a time. Every λ is validated before anything runs; divergence is handled per run
    as ``on_divergence`` says.
    """
    arrays, lambdas = None, lambda_values(lambdas)
    first = lambdas[0] if lambdas else 0.0  # the fields are checked even for no λ
    if data is not None:
        config, arrays = data_config(data, test, preset, backend=backend, seed=seed, **fields)
        config = config.replace(lambd=first)
    else:
        config = make_config(preset, backend=backend, lambd=first, seed=seed, **fields)
    configs = with_lambdas(config, lambdas)
    if not configs:
        return []
    impl = prepare_backend(configs[:1])
    check_run(configs[0], len(configs))
    base = configs[0]
    if configs[0].rng == "native":
        return [train_sequence([c])[0] for c in configs]
    problem = make_problem(base, arrays)
    if base.engine == "eager" or not impl.supports_fused(base):
        return [_fit(impl, problem, c) for c in configs]
    start = time.perf_counter()
    train_loss, test_loss, params = impl.fused_fit_lambdas(problem, base, [c.lambd for c in configs])
    seconds = (time.perf_counter() - start) / len(configs)
    runs = []
    for j, config in enumerate(configs):
        final = {"w": params["w"][j], "b": params["b"][j]}
        run = record(impl, problem, config, train_loss[j], test_loss[j], final, seconds, "vectorized")
        run.meta["vectorized_k"] = len(configs)
        runs.append(run)
    return runs
