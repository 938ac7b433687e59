"""The exact answer SGD is chasing: the closed-form minimizer of the training objective.

The chapter's training loop minimizes, in expectation over minibatches,

    (1/2n) ||X w + b - y||^2 + (lambd/2) ||w||^2        (the bias b is not penalized)

over the n training examples. Its minimizer is ridge regression on centered data: with X_c, y_c the
training inputs and targets minus their means, w = (X_c^T X_c + n lambd I)^-1 X_c^T y_c and
b = mean(y) - mean(X) w. One SVD X_c = U diag(s) V^T gives every lambd at once:
w = V diag(s / (s^2 + n lambd)) U^T y_c, which is how :func:`ridge_path` computes the whole path.

At ``lambd = 0`` with fewer examples than features (the chapter's setting) the minimizer is not
unique; wdlib returns the one with the smallest ||w|| (the pseudo-inverse solution, and the limit of
the path as lambd -> 0+). SGD started from a random w0 converges instead to the minimizer nearest w0,
so its ||w|| at lambd = 0 is larger than the exact path's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .config import Config
from .data import Problem, make_problem
from .errors import ConfigError


@dataclass(frozen=True)
class RidgeSolution:
    """The exact minimizer for one lambd, and its losses (the book's mean squared loss / 2)."""

    lambd: float
    w: np.ndarray  # (num_inputs, 1)
    b: np.ndarray  # (1,)
    train_loss: float
    test_loss: float

    @property
    def w_norm(self) -> float:
        return float(np.linalg.norm(self.w))

    def __repr__(self) -> str:  # short: the weights are summarized by their shape and norm
        return (f"RidgeSolution(lambd={self.lambd:g}, train_loss={self.train_loss:.4g}, "
                f"test_loss={self.test_loss:.4g}, w_norm={self.w_norm:.4g}, w: {self.w.shape}, "
                f"b={float(self.b[0]):.4g})")


@dataclass(frozen=True)
class RidgePath:
    """The exact regularization path: one entry per lambd of the grid, in the grid's order."""

    lambdas: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    w_norm: np.ndarray

    def __repr__(self) -> str:  # short: the arrays are summarized
        n = len(self.lambdas)
        if not n:
            return "RidgePath(0 λ)"
        best = int(np.argmin(self.test_loss))
        return (f"RidgePath({n} λ from {self.lambdas.min():g} to {self.lambdas.max():g}; lowest test_loss "
                f"{self.test_loss[best]:.4g} at λ={self.lambdas[best]:g}; w_norm "
                f"{self.w_norm.min():.4g} to {self.w_norm.max():.4g})")


def _check_lambd(value: object, name: str = "lambd") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(name, value, "a finite number >= 0")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(name, value, "a finite number >= 0")
    return value


def _as_problem(problem: Problem | Config) -> Problem:
    """The problem with its data in float64 (a float32 run's data exactly: the solution is that of
    the examples the run trained on, computed in float64)."""
    if isinstance(problem, Config):
        problem = make_problem(problem)
    if not isinstance(problem, Problem):
        raise ConfigError(
            "problem", type(problem).__name__, "a wdlib.Problem or wdlib.Config",
            "pass run.problem or wdlib.make_problem(config)",
        )
    data = ("X_train", "y_train", "X_test", "y_test")
    return replace(problem, **{k: getattr(problem, k).astype(np.float64, copy=False) for k in data})


def _mean_loss(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of (X w + b - y)^2 / 2 for each column of ``w`` (each lambd)."""
    return np.mean((X @ w + b - y) ** 2, axis=0) / 2


def _solve(problem: Problem, lambdas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights (num_inputs, k) and biases (k,) of the minimizers for the k values of ``lambdas``."""
    X, y = problem.X_train, problem.y_train
    n = len(X)
    x_mean, y_mean = X.mean(axis=0), y.mean()
    U, s, Vt = np.linalg.svd(X - x_mean, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(X.shape) * np.finfo(float).eps  # the pseudo-inverse's rank cut
    U, s, Vt = U[:, keep], s[keep], Vt[keep]
    uty = U.T @ (y[:, 0] - y_mean)  # (r,)
    shrink = s[:, None] / (s[:, None] ** 2 + n * lambdas[None, :])  # (r, k)
    w = Vt.T @ (shrink * uty[:, None])  # (p, k)
    b = y_mean - x_mean @ w  # (k,)
    return w, b


def ridge(problem: Problem | Config, lambd: float) -> RidgeSolution:
    """The exact minimizer of the training objective for ``lambd`` (bias unpenalized), with its losses.

    ``problem`` is a :class:`~wdlib.Problem` (e.g. ``run.problem``) or a :class:`~wdlib.Config`. At
    ``lambd=0`` with fewer examples than features, the minimum-norm minimizer (see the module doc).
    """
    lambd = _check_lambd(lambd)
    problem = _as_problem(problem)
    w, b = _solve(problem, np.array([lambd]))
    return RidgeSolution(
        lambd=lambd,
        w=w,
        b=b,
        train_loss=float(_mean_loss(problem.X_train, problem.y_train, w, b)[0]),
        test_loss=float(_mean_loss(problem.X_test, problem.y_test, w, b)[0]),
    )


def ridge_path(problem: Problem | Config, lambdas: Sequence[float] | np.ndarray) -> RidgePath:
    """The exact train loss, test loss and ||w|| for every lambd of ``lambdas`` (one SVD for all)."""
    grid = np.array([_check_lambd(v, "lambdas") for v in np.atleast_1d(np.asarray(lambdas, dtype=object))])
    if grid.size == 0:
        raise ConfigError("lambdas", list(lambdas), "a non-empty list of numbers >= 0",
                          "e.g. numpy.linspace(0, 10, 41)")
    problem = _as_problem(problem)
    w, b = _solve(problem, grid.astype(float))
    return RidgePath(
        lambdas=grid.astype(float),
        train_loss=_mean_loss(problem.X_train, problem.y_train, w, b),
        test_loss=_mean_loss(problem.X_test, problem.y_test, w, b),
        w_norm=np.linalg.norm(w, axis=0),
    )
