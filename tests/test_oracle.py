"""Full-batch gradient descent reaches the closed-form ridge minimizer, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import wdlib


def ridge_minimizer(X: np.ndarray, y: np.ndarray, lambd: float) -> tuple[np.ndarray, np.ndarray]:
    """argmin (1/2n)||Xw + b - y||^2 + (lambd/2)||w||^2 (bias not penalized), by numpy.linalg."""
    n, p = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    reg = np.diag([lambd] * p + [0.0])
    theta = np.linalg.solve(A.T @ A / n + reg, A.T @ y / n)
    return theta[:p], theta[p:, 0]


@pytest.mark.parametrize("lambd", [1.0, 3.0])
def test_full_batch_gd_reaches_ridge_solution(backend: str, lambd: float) -> None:
    config = wdlib.make_config(n_train=20, batch_size=20, lambd=lambd, dtype="float64", num_epochs=1)
    problem = wdlib.make_problem(config)
    X, y = problem.X_train, problem.y_train
    # The optimal constant step 2/(L + mu) contracts the error by (L - mu)/(L + mu) per step; take
    # enough steps to shrink the initial error (~15) by 1e-11, far below the 1e-8 asserted.
    A = np.hstack([X, np.ones((len(X), 1))])
    eig = np.linalg.eigvalsh(A.T @ A / len(X) + np.diag([lambd] * X.shape[1] + [0.0]))
    mu, L = eig[0], eig[-1]
    steps = int(np.ceil(np.log(1e-11) / np.log((L - mu) / (L + mu))))
    run = wdlib.train(
        backend, n_train=20, batch_size=20, lambd=lambd, dtype="float64", lr=2 / (L + mu), num_epochs=steps
    )
    w_star, b_star = ridge_minimizer(X, y, lambd)
    np.testing.assert_allclose(run.params["w"], w_star, rtol=0, atol=1e-8)
    np.testing.assert_allclose(run.params["b"], b_star, rtol=0, atol=1e-8)
