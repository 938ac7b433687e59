"""The one training loop, and the record of a run."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import optim
from .backend import Backend, backend_class, get_backend, installed_backends
from .config import Config, make_config, parameter_names
from .data import Problem, data_config, make_problem
from .errors import ConfigError, DivergenceError
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
    weight_names,
)


@dataclass(eq=False)
class Run:
    """The result of one training run, as NumPy arrays."""

    config: Config
    problem: Problem
    train_loss: np.ndarray  # (num_epochs,), mean squared loss / 2 on the whole training set
    test_loss: np.ndarray  # (num_epochs,)
    params: dict[str, np.ndarray]  # "w": (num_inputs, 1), "b": (1,)
    backend_version: str
    seconds: float  # wall time of the training loop
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        """True when the loss became NaN or infinite (recorded with ``on_divergence="record"``)."""
        return self.meta.get("diverged_at_epoch") is not None

    @property
    def epochs(self) -> np.ndarray:
        """The epoch (1-based) of each recorded loss: every epoch, or every 5 as d2l records them."""
        return self.problem.eval_every * np.arange(1, len(self.train_loss) + 1)

    @property
    def engine(self) -> str:
        return self.meta.get("engine", "eager")

    @property
    def printed(self) -> str:
        """The line the book prints after training, e.g. ``w的L2范数是： 14.119074821472168``."""
        from .books import printed_line

        return printed_line(self)

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Write the book's semilogy figure of this run to ``path`` (.png or .svg)."""
        from .plot import plot

        return plot([self], path)

    @property
    def w_norm(self) -> float:
        """The L2 norm of the final weights: ||w||_2 of the linear model, of every weight matrix
        together for the MLP (inf for a diverged run, without NumPy's overflow warning)."""
        with np.errstate(over="ignore", invalid="ignore"):
            weights = [self.params[k].astype(np.float64).ravel() for k in weight_names(self.params)]
            return float(np.linalg.norm(np.concatenate(weights)))

    def __repr__(self) -> str:
        c, defaults = self.config, Config()
        shown = [f"backend={c.backend!r}"]
        shown += [f"{k}={getattr(c, k)!r}" for k in ("preset", "model", "optimizer", "dataset")
                  if getattr(c, k) != getattr(defaults, k) or k == "preset"]
        shown.append(f"wd={c.wd}" if c.mode == "concise" or c.wd else f"lambd={c.lambd}")
        shown += [f"seed={c.seed}", f"dtype={c.dtype!r}"]
        if len(self.train_loss):
            shown += [f"train_loss={self.train_loss[-1]:.4g}", f"test_loss={self.test_loss[-1]:.4g}"]
        shown.append(f"w_norm={self.w_norm:.4g}")
        if self.diverged:
            shown.append(f"diverged_at_epoch={self.meta['diverged_at_epoch']}")
        return f"Run({', '.join(shown)})"


def make_step(backend: Backend, config: Config, params: Params) -> Callable[[Params, Array, Array], Params]:
    """The update of one minibatch: the from-scratch objective (model, penalty) and the core optimizer
    (:mod:`wdlib.optim`), or the framework's own optimizer with weight decay (``mode="concise"``)."""
    if config.mode == "concise":
        return backend.concise_step(config, params)
    compiled = getattr(backend, "optimizer_step", None)  # a backend may compile the whole step
    if compiled is not None:
        return compiled(config, params)
    grad = backend.make_grad(objective_for(config))
    lr, batch_size = config.lr, config.batch_size
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
    )


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
    if config.engine != "eager" and backend.supports_fused(config):
        start = time.perf_counter()
        train_loss, test_loss, final = backend.fused_fit(problem, config)
        return _record(backend, problem, config, train_loss, test_loss, final,
                       time.perf_counter() - start, "fused")
    _check_engine(backend, config)
    if config.engine == "auto" and backend.supports_compiled(problem, config):
        start = time.perf_counter()
        train_loss, test_loss, final = backend.fit_compiled(problem, config)
        return _record(backend, problem, config, train_loss, test_loss, final,
                       time.perf_counter() - start, "compiled")
    num_evals = config.num_epochs // problem.eval_every
    train_loss = np.full(num_evals, np.nan)
    test_loss = np.full(num_evals, np.nan)
    with backend.context(config.dtype):
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
    return _record(backend, problem, config, train_loss, test_loss, final, seconds, "eager")


def _check_engine(backend: Backend, config: Config) -> None:
    if config.engine == "fused" and not backend.supports_fused(config):
        raise ConfigError("engine", "fused", f"'auto' or 'eager': backend {backend.name!r} has no "
                          "fused path for this configuration")


def _record(
    backend: Backend, problem: Problem, config: Config, train_loss: np.ndarray, test_loss: np.ndarray,
    params: dict[str, np.ndarray], seconds: float, engine: str,
) -> Run:
    """The Run, cut at the first epoch whose loss is NaN or infinite (raised unless asked to record)."""
    bad = np.flatnonzero(~(np.isfinite(train_loss) & np.isfinite(test_loss)))
    diverged_at = int(bad[0]) if len(bad) else None  # index of the evaluation
    if diverged_at is not None:
        last = test_loss[diverged_at - 1] if diverged_at else float("nan")
        if config.on_divergence == "raise":
            raise DivergenceError(
                f"the run diverged by epoch {(diverged_at + 1) * problem.eval_every}: the loss became "
                f"{train_loss[diverged_at]} (last finite test loss: {last:.6g}); lr={config.lr} is "
                "probably too large for the data's scale: lower it, or pass on_divergence='record'",
                epoch=(diverged_at + 1) * problem.eval_every, last_loss=float(last),
            )
        train_loss, test_loss = train_loss[: diverged_at + 1], test_loss[: diverged_at + 1]
    meta = {
        "engine": engine,
        "w_norm_text": backend.norm_text(params["w"]) if config.model == "linear" else None,
        "diverged_at_epoch": None if diverged_at is None else (diverged_at + 1) * problem.eval_every,
    }
    return Run(config, problem, train_loss, test_loss, params, backend.version(), seconds, meta)


def train(
    backend: str = "numpy", preset: str = "d2l", *, lambd: float = 0.0, data: Any = None, test: Any = None,
    **overrides: Any,
) -> Run:
    """Run the chapter's experiment on one backend, or the same on your data.

    ``preset`` is "d2l" (default) or "gluonbook"; any :class:`~wdlib.Config` field can be overridden
    by keyword, e.g. ``train("jax", lambd=3, dtype="float64", seed=1)``. ``data=(X, y)`` trains on
    your arrays (``test=(X_test, y_test)``, or a seeded split of ``test_fraction``); ``dataset=
    "diabetes"`` on the bundled diabetes data; ``model="mlp"``, ``optimizer="adam"`` and so on choose
    the model and optimizer.
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
    first = configs[0]
    if first.rng == "native":
        for config in configs[1:]:
            for name in _SHARED_FIELDS:
                if getattr(config, name) != getattr(first, name):
                    raise ConfigError(name, getattr(config, name),
                                      f"{getattr(first, name)!r} like the first run: runs that share "
                                      "native random streams share the data")
    for name in {c.backend for c in configs}:
        cls = backend_class(name)
        for config in (c for c in configs if c.backend == name):
            if config.rng == "native" and config.preset not in cls.native_presets:
                classes = map(backend_class, installed_backends())
                pairs = ", ".join(f"{b.name}+{p}" for b in classes for p in b.native_presets)
                raise ConfigError("rng", "native", f"'numpy': backend {name!r} has no native recipe for "
                                  f"preset {config.preset!r} (native recipes: {pairs or 'none installed'})")
            if config.mode == "concise" and cls.concise_step is Backend.concise_step:
                raise ConfigError("mode", "concise", f"'scratch': backend {name!r} has no concise mode")
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
    arrays = None
    if data is not None:
        config, arrays = data_config(data, test, preset, backend=backend, seed=seed, **fields)
        configs = [config.replace(lambd=float(lam)) for lam in lambdas]
    else:
        configs = [make_config(preset, backend=backend, lambd=float(lam), seed=seed, **fields)
                   for lam in lambdas]
    if not configs:
        return []
    impl = prepare_backend(configs[:1])
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
        run = _record(impl, problem, config, train_loss[j], test_loss[j], final, seconds, "vectorized")
        run.meta["vectorized_k"] = len(configs)
        runs.append(run)
    return runs
