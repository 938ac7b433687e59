"""The one training loop, and the record of a run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Backend, get_backend
from .config import Config, make_config
from .data import Problem, make_problem
from .model import PENALTIES, Objective, mean_loss, sgd_step


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


def fit(backend: Backend, problem: Problem, config: Config) -> Run:
    """Train the chapter's model on ``problem`` with minibatch SGD, recording losses every epoch."""
    objective = Objective(config.lambd, PENALTIES[config.penalty], config.decay_bias)
    train_loss = np.empty(config.num_epochs)
    test_loss = np.empty(config.num_epochs)
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
                grads = backend.grad(objective, params, backend.take(X, idx), backend.take(y, idx))
                params = sgd_step(params, grads, config.lr, config.batch_size)
            train_loss[epoch] = backend.to_numpy(mean_loss(backend, params, X, y)).item()
            test_loss[epoch] = backend.to_numpy(mean_loss(backend, params, X_test, y_test)).item()
        seconds = time.perf_counter() - start
        final = {k: backend.to_numpy(p) for k, p in params.items()}
    return Run(config, problem, train_loss, test_loss, final, backend.version(), seconds)


def train(backend: str = "numpy", preset: str = "d2l", *, lambd: float = 0.0, **overrides: Any) -> Run:
    """Run the chapter's experiment on one backend.

    ``preset`` is "d2l" (default) or "gluonbook"; any :class:`~wdlib.Config` field can be overridden
    by keyword, e.g. ``train("jax", lambd=3, dtype="float64", seed=1)``.
    """
    config = make_config(preset, backend=backend, lambd=lambd, **overrides)
    impl = get_backend(config.backend)
    return fit(impl, make_problem(config), config)
