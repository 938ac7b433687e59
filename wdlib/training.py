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

from .backend import Backend, backend_class, get_backend, installed_backends
from .config import Config, make_config
from .data import Problem, make_problem
from .errors import ConfigError, DivergenceError
from .model import PENALTIES, Array, Objective, Params, evaluate_loss, example_loss, mean_loss, sgd_step


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
        """||w||_2 of the final weight (inf for a diverged run, without NumPy's overflow warning)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.linalg.norm(self.params["w"].astype(np.float64)))

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Run(backend={c.backend!r}, preset={c.preset!r}, lambd={c.lambd}, seed={c.seed}, "
            f"dtype={c.dtype!r}, train_loss={self.train_loss[-1]:.4g}, "
            f"test_loss={self.test_loss[-1]:.4g}, w_norm={self.w_norm:.4g})"
        )


def make_step(backend: Backend, config: Config, params: Params) -> Callable[[Params, Array, Array], Params]:
    """The update of one minibatch: the from-scratch penalty and SGD step, or the framework's own
    optimizer with weight decay (``mode="concise"``)."""
    if config.mode == "concise":
        return backend.concise_step(config, params)
    grad = backend.make_grad(Objective(config.lambd, PENALTIES[config.penalty], config.decay_bias))
    lr, batch_size = config.lr, config.batch_size

    def step(params: Params, X: Array, y: Array) -> Params:
        return sgd_step(params, grad(params, X, y), lr, batch_size)

    return step


def make_evaluate(
    backend: Backend, problem: Problem, config: Config, X: Array, y: Array, X_test: Array, y_test: Array
) -> Callable[[Params, int], tuple[float, float]]:
    """``evaluate(params, k)``: train and test loss at the k-th evaluation.

    Whole-set means of the squared loss, or (when the problem carries the book's loader orders) d2l's
    ``evaluate_loss`` with the loss the run trains on.
    """
    if problem.eval_orders is None:
        def whole(params: Params, k: int) -> tuple[float, float]:
            return (backend.to_numpy(mean_loss(backend, params, X, y)).item(),
                    backend.to_numpy(mean_loss(backend, params, X_test, y_test)).item())

        return whole

    if config.mode == "concise":
        loss = backend.concise_loss
    else:
        def loss(params: Params, Xb: Array, yb: Array) -> Array:
            return example_loss(backend, params, Xb, yb)

    eval_orders = backend.index(problem.eval_orders)
    test_order = backend.index(np.arange(len(problem.X_test)))

    def batched(params: Params, k: int) -> tuple[float, float]:
        return (evaluate_loss(backend, loss, params, X, y, eval_orders[k], config.batch_size),
                evaluate_loss(backend, loss, params, X_test, y_test, test_order, config.batch_size))

    return batched


def fit(backend: Backend, problem: Problem, config: Config) -> Run:
    """Train the chapter's model on ``problem`` with minibatch SGD, recording losses every
    ``problem.eval_every`` epochs."""
    if config.engine != "eager" and backend.supports_fused(config):
        start = time.perf_counter()
        train_loss, test_loss, final = backend.fused_fit(problem, config)
        return _record(backend, problem, config, train_loss, test_loss, final,
                       time.perf_counter() - start, "fused")
    _check_engine(backend, config)
    num_evals = config.num_epochs // problem.eval_every
    train_loss = np.full(num_evals, np.nan)
    test_loss = np.full(num_evals, np.nan)
    with backend.context(config.dtype):
        X, y, X_test, y_test, w, b = (
            backend.asarray(a, config.dtype)
            for a in (problem.X_train, problem.y_train, problem.X_test, problem.y_test,
                      problem.w0, problem.b0)
        )
        params = {"w": w, "b": b}
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
        "w_norm_text": backend.norm_text(params["w"]),
        "diverged_at_epoch": None if diverged_at is None else (diverged_at + 1) * problem.eval_every,
    }
    return Run(config, problem, train_loss, test_loss, params, backend.version(), seconds, meta)


def train(backend: str = "numpy", preset: str = "d2l", *, lambd: float = 0.0, **overrides: Any) -> Run:
    """Run the chapter's experiment on one backend.

    ``preset`` is "d2l" (default) or "gluonbook"; any :class:`~wdlib.Config` field can be overridden
    by keyword, e.g. ``train("jax", lambd=3, dtype="float64", seed=1)``.
    """
    return train_sequence([make_config(preset, backend=backend, lambd=lambd, **overrides)])[0]


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
    return [fit(impl, problem, config) for problem, config in zip(problems, configs, strict=True)]


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
    **fields: Any,
) -> list[Run]:
    """Train one run per λ of ``lambdas`` on identical inputs, vectorized where the backend can.

    Contract (for callers such as ``wdlib.sweep``): one :class:`Run` per entry of ``lambdas``, in that
    order, each what ``train(backend, preset, lambd=λ, seed=seed, **fields)`` returns, except that on
    the backend's fast path all λ train at once as the columns of one ``(p + 2, k)`` state
    (:mod:`wdlib.vectorized`), so the numbers may differ from one-at-a-time runs by rounding only
    (float64: 1e-12 relative on w and the test loss; float32: 1e-4) and depend in the last bits on
    the other λ of the batch; ``run.meta`` then has ``engine="vectorized"`` and ``vectorized_k``, and
    ``run.seconds`` is the batch's wall time divided by ``len(lambdas)``. Without a fast path
    (``engine="eager"``, L1, ``mode="concise"``, ``rng="native"``) the runs go one at a time. Every λ is
    validated before anything runs; divergence is handled per run as ``on_divergence`` says.
    """
    configs = [make_config(preset, backend=backend, lambd=float(lam), seed=seed, **fields)
               for lam in lambdas]
    if not configs:
        return []
    impl = prepare_backend(configs[:1])
    base = configs[0]
    if base.engine == "eager" or not impl.supports_fused(base):
        return [train_sequence([c])[0] for c in configs]
    problem = make_problem(base)
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
