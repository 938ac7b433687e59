"""The one training loop, and the record of a run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Backend, get_backend
from .config import Config, make_config
from .data import Problem, make_problem
from .errors import ConfigError, DivergenceError
from .model import PENALTIES, Array, Objective, Params, mean_loss, sgd_step


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
    def engine(self) -> str:
        return self.meta.get("engine", "eager")

    @property
    def w_norm(self) -> float:
        """||w||_2 of the final weight."""
        return float(np.linalg.norm(self.params["w"].astype(np.float64)))

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Run(backend={c.backend!r}, preset={c.preset!r}, lambd={c.lambd}, seed={c.seed}, "
            f"dtype={c.dtype!r}, train_loss={self.train_loss[-1]:.4g}, "
            f"test_loss={self.test_loss[-1]:.4g}, w_norm={self.w_norm:.4g})"
        )


def make_step(backend: Backend, config: Config) -> Callable[[Params, Array, Array], Params]:
    """The update of one minibatch: the from-scratch penalty and SGD step, or the framework's own
    optimizer with weight decay (``mode="concise"``)."""
    if config.mode == "concise":
        return backend.concise_step(config)
    objective = Objective(config.lambd, PENALTIES[config.penalty], config.decay_bias)
    lr, batch_size = config.lr, config.batch_size

    def step(params: Params, X: Array, y: Array) -> Params:
        return sgd_step(params, backend.grad(objective, params, X, y), lr, batch_size)

    return step


def fit(backend: Backend, problem: Problem, config: Config) -> Run:
    """Train the chapter's model on ``problem`` with minibatch SGD, recording losses every epoch."""
    if config.engine != "eager" and backend.supports_fused(config):
        start = time.perf_counter()
        train_loss, test_loss, final = backend.fused_fit(problem, config)
        return _record(backend, problem, config, train_loss, test_loss, final,
                       time.perf_counter() - start, "fused")
    _check_engine(backend, config)
    step = make_step(backend, config)
    train_loss = np.full(config.num_epochs, np.nan)
    test_loss = np.full(config.num_epochs, np.nan)
    with backend.context(config.dtype):
        X, y, X_test, y_test, w, b = (
            backend.asarray(a, config.dtype)
            for a in (problem.X_train, problem.y_train, problem.X_test, problem.y_test,
                      problem.w0, problem.b0)
        )
        params = {"w": w, "b": b}
        start = time.perf_counter()
        for epoch in range(config.num_epochs):
            for idx in problem.batches(epoch):
                params = step(params, backend.take(X, idx), backend.take(y, idx))
            train_loss[epoch] = backend.to_numpy(mean_loss(backend, params, X, y)).item()
            test_loss[epoch] = backend.to_numpy(mean_loss(backend, params, X_test, y_test)).item()
            if not (np.isfinite(train_loss[epoch]) and np.isfinite(test_loss[epoch])):
                break
        seconds = time.perf_counter() - start
        final = {k: backend.to_numpy(p) for k, p in params.items()}
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
    diverged_at = int(bad[0]) if len(bad) else None
    if diverged_at is not None:
        last = test_loss[diverged_at - 1] if diverged_at else float("nan")
        if config.on_divergence == "raise":
            raise DivergenceError(
                f"the run diverged at epoch {diverged_at + 1}: the loss became "
                f"{train_loss[diverged_at]} (last finite test loss: {last:.6g}); lr={config.lr} is "
                "probably too large for the data's scale: lower it, or pass on_divergence='record'",
                epoch=diverged_at + 1, last_loss=float(last),
            )
        train_loss, test_loss = train_loss[: diverged_at + 1], test_loss[: diverged_at + 1]
    meta = {"engine": engine, "diverged_at_epoch": None if diverged_at is None else diverged_at + 1}
    return Run(config, problem, train_loss, test_loss, params, backend.version(), seconds, meta)


def train(backend: str = "numpy", preset: str = "d2l", *, lambd: float = 0.0, **overrides: Any) -> Run:
    """Run the chapter's experiment on one backend.

    ``preset`` is "d2l" (default) or "gluonbook"; any :class:`~wdlib.Config` field can be overridden
    by keyword, e.g. ``train("jax", lambd=3, dtype="float64", seed=1)``.
    """
    config = make_config(preset, backend=backend, lambd=lambd, **overrides)
    impl = get_backend(config.backend)
    _check_engine(impl, config)
    return fit(impl, make_problem(config), config)
