"""Making a fused run's :class:`wdlib.vectorized.Plan`: the checks of its inputs, the choice of layout
and strategy (:func:`choose`), and its arrays cast and laid out (:func:`make_plan`).

:func:`choose` is also what a backend's own one-call path asks first (JAX's one-λ runs,
:mod:`wdlib_jax.direct`, build their few arrays without a Plan), so both see the same checks and
choices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from . import fastpath

if TYPE_CHECKING:
    from .config import Config
    from .data import Problem
    from .vectorized import Plan


def choose(
    problem: Problem, config: Config, lambdas: Iterable[float] | None = None
) -> tuple[np.ndarray, bool, str]:
    """``(λ (k,) float64, dual, strategy)`` of the fused runs of ``config`` at each λ of ``lambdas``
    (default: ``config.lambd`` alone), as ``fastpath.OPTIONS`` pick them (see :mod:`wdlib.vectorized`);
    ValueError for inputs the fast paths do not take."""
    if lambdas is None:  # one run: checked as a Python number (the array checks cost microseconds)
        lam = np.array([config.lambd], dtype=np.float64)
        ok = math.isfinite(lam[0]) and lam[0] >= 0
    else:
        lam = np.asarray(list(lambdas), dtype=np.float64)
        ok = lam.ndim == 1 and bool(np.all(np.isfinite(lam))) and not np.any(lam < 0)
    if not ok:
        raise ValueError(f"lambdas must be finite numbers >= 0, got {lam}")
    if getattr(problem, "eval_every", 1) != 1 or getattr(problem, "eval_orders", None) is not None:
        raise ValueError("the fast paths record whole-set losses every epoch; this problem asks for "
                         "another evaluation schedule: use engine='eager'")
    opt, itemsize = fastpath.OPTIONS, np.dtype(config.dtype).itemsize
    (n, p), E = problem.X_train.shape, problem.batch_order.shape[0]
    dual = n + 3 <= opt.dual_ratio * (p + 2) and n <= opt.dual_max_n
    q = n + 3 if dual else p + 2
    if not dual and 2 * n * q * itemsize > opt.gather_bytes:
        strategy = "blocks"
    elif len(lam) == 1 and opt.scan(q, E * -(-n // config.batch_size), itemsize):
        strategy = "scan"
    elif len(lam) == 1 and opt.small_state(q, E * -(-n // config.batch_size), itemsize):
        strategy = "step_matrices"
    else:
        strategy = "minibatches"
    return lam, dual, strategy


def augment(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[X, 1, -y]``."""
    Z = np.empty((X.shape[0], X.shape[1] + 2), dtype=X.dtype)
    Z[:, :-2] = X
    Z[:, -2] = 1
    Z[:, -1] = -y.reshape(-1)
    return Z


def make_plan(problem: Problem, config: Config, lambdas: Iterable[float] | None = None) -> Plan:
    """Cast and lay out ``problem`` for the fused runs of ``config`` at each λ of ``lambdas``
    (default: ``config.lambd`` alone), with the layout and strategy :func:`choose` picks."""
    from .vectorized import Plan

    lam, dual, strategy = choose(problem, config, lambdas)
    opt, dt = fastpath.OPTIONS, np.dtype(config.dtype)
    n, p = problem.X_train.shape
    common = {"batch_order": problem.batch_order, "lambdas": lam, "config": config, "strategy": strategy,
              "options": opt}
    if not dual:
        X, y = (np.asarray(a, dtype=dt) for a in (problem.X_train, problem.y_train))
        U = None
        if strategy != "blocks":
            scale = np.full(p + 2, config.lr / config.batch_size, dtype=dt)
            scale[-1] = 0
            U = augment(X, y) * scale
        theta0 = np.concatenate([np.ravel(problem.w0), np.ravel(problem.b0), [1.0]])
        return Plan(X_train=X, y_train=y.reshape(-1, 1), X_test=np.asarray(problem.X_test, dtype=dt),
                    y_test=np.asarray(problem.y_test, dtype=dt).reshape(-1, 1), U_train=U,
                    theta0=theta0.astype(dt)[:, None], layout="primal", **common)
    X = np.asarray(problem.X_train, dtype=dt)
    w0 = np.asarray(problem.w0, dtype=dt).reshape(-1, 1)

    def features(A: np.ndarray) -> np.ndarray:  # [A X^T, A w0]
        F = np.empty((A.shape[0], n + 1), dtype=dt)
        F[:, :n] = A @ X.T
        F[:, n:] = A @ w0
        return F

    U = np.zeros((n, n + 3), dtype=dt)
    U[np.arange(n), np.arange(n)] = config.lr / config.batch_size
    U[:, n + 1] = config.lr / config.batch_size
    theta0 = np.zeros((n + 3, 1), dtype=dt)
    theta0[n] = 1
    theta0[n + 1] = np.ravel(problem.b0)[0]
    theta0[n + 2] = 1
    return Plan(X_train=features(X), y_train=np.asarray(problem.y_train, dtype=dt).reshape(-1, 1),
                X_test=features(np.asarray(problem.X_test, dtype=dt)),
                y_test=np.asarray(problem.y_test, dtype=dt).reshape(-1, 1), U_train=U, theta0=theta0,
                basis=np.ascontiguousarray(X.T), w0=w0, layout="dual", **common)
