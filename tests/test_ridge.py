"""The closed-form minimizer and the exact regularization path."""

from __future__ import annotations

import numpy as np
import pytest

import wdlib


@pytest.fixture(scope="module")
def problem() -> wdlib.Problem:
    return wdlib.make_problem(wdlib.make_config(seed=2, dtype="float64"))  # the checks need float64 data


def gradient(problem: wdlib.Problem, w: np.ndarray, b: np.ndarray, lambd: float) -> np.ndarray:
    """Gradient of (1/2n)||Xw + b - y||^2 + (lambd/2)||w||^2 with respect to (w, b)."""
    X, y = problem.X_train, problem.y_train
    r = X @ w + b - y
    return np.concatenate([(X.T @ r / len(X) + lambd * w)[:, 0], [r.mean()]])


@pytest.mark.parametrize("lambd", [0.01, 0.5, 3.0])
def test_matches_the_normal_equations(problem: wdlib.Problem, lambd: float) -> None:
    X, y = problem.X_train, problem.y_train
    n, p = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    theta = np.linalg.solve(A.T @ A / n + np.diag([lambd] * p + [0.0]), A.T @ y / n)
    sol = wdlib.ridge(problem, lambd)
    np.testing.assert_allclose(sol.w, theta[:p], rtol=0, atol=1e-10)
    np.testing.assert_allclose(sol.b, theta[p:, 0], rtol=0, atol=1e-10)
    assert sol.w.shape == (p, 1) and sol.b.shape == (1,)
    assert np.abs(gradient(problem, sol.w, sol.b, lambd)).max() < 1e-10


def test_reported_losses_are_the_books_mean_loss(problem: wdlib.Problem) -> None:
    sol = wdlib.ridge(problem, 1.0)
    pred = problem.X_test @ sol.w + sol.b
    assert sol.test_loss == pytest.approx(np.mean((pred - problem.y_test) ** 2) / 2, rel=1e-12)
    pred = problem.X_train @ sol.w + sol.b
    assert sol.train_loss == pytest.approx(np.mean((pred - problem.y_train) ** 2) / 2, rel=1e-12)
    assert sol.w_norm == pytest.approx(np.linalg.norm(sol.w), rel=1e-15)


def test_lambda_zero_is_the_minimum_norm_interpolant(problem: wdlib.Problem) -> None:
    """n=20 < p=200: many minimizers; ridge returns the one with the smallest ||w||."""
    sol = wdlib.ridge(problem, 0)
    assert sol.train_loss < 1e-20  # interpolates the training data
    assert np.abs(gradient(problem, sol.w, sol.b, 0)).max() < 1e-12
    Xc = problem.X_train - problem.X_train.mean(axis=0)
    # Adding any null-space direction of the centered X keeps the fit and increases ||w||.
    null = np.linalg.svd(Xc)[2][-1][:, None]
    other_w = sol.w + 0.1 * null
    other_b = problem.y_train.mean() - problem.X_train.mean(axis=0) @ other_w
    assert np.abs(gradient(problem, other_w, other_b, 0)).max() < 1e-12
    assert np.linalg.norm(other_w) > sol.w_norm
    yc = problem.y_train[:, 0] - problem.y_train.mean()
    np.testing.assert_allclose(sol.w[:, 0], np.linalg.pinv(Xc) @ yc, atol=1e-12)
    # ... and it is the limit of the path as lambd -> 0+.
    np.testing.assert_allclose(wdlib.ridge(problem, 1e-12).w, sol.w, atol=1e-8)


def test_path_equals_pointwise_solutions_and_shrinks(problem: wdlib.Problem) -> None:
    grid = np.array([0, 0.1, 1, 3, 10, 100.0])
    path = wdlib.ridge_path(problem, grid)
    for i, lambd in enumerate(grid):
        sol = wdlib.ridge(problem, lambd)
        assert path.test_loss[i] == pytest.approx(sol.test_loss, rel=1e-12)
        assert path.train_loss[i] == pytest.approx(sol.train_loss, rel=1e-9, abs=1e-25)
        assert path.w_norm[i] == pytest.approx(sol.w_norm, rel=1e-12)
    assert np.all(np.diff(path.w_norm) < 0)  # more decay, smaller weights
    assert np.all(np.diff(path.train_loss) > 0)  # and a worse fit of the training data
    far = wdlib.ridge(problem, 1e9)  # w -> 0, b -> mean(y)
    assert far.w_norm < 1e-8 and far.b[0] == pytest.approx(problem.y_train.mean(), abs=1e-8)


def test_training_converges_to_ridge() -> None:
    """Full-batch training with the library's own loop reaches ridge(): the objectives are the same."""
    config = wdlib.make_config(batch_size=20, lambd=3.0, dtype="float64", num_epochs=1)
    problem = wdlib.make_problem(config)
    exact = wdlib.ridge(config, 3.0)  # a Config is accepted too
    A = np.hstack([problem.X_train, np.ones((20, 1))])
    eig = np.linalg.eigvalsh(A.T @ A / 20 + np.diag([3.0] * 200 + [0.0]))
    lr, rate = 2 / (eig[-1] + eig[0]), (eig[-1] - eig[0]) / (eig[-1] + eig[0])
    steps = int(np.ceil(np.log(1e-12) / np.log(rate)))  # error (~15) shrinks below 1e-11
    run = wdlib.train("numpy", batch_size=20, lambd=3.0, dtype="float64", lr=lr, num_epochs=steps)
    np.testing.assert_allclose(run.params["w"], exact.w, atol=1e-9)
    np.testing.assert_allclose(run.params["b"], exact.b, atol=1e-9)
    assert run.test_loss[-1] == pytest.approx(exact.test_loss, rel=1e-8)
    assert np.array_equal(problem.X_train, run.problem.X_train)


@pytest.mark.parametrize(("call", "match"), [
    (lambda p: wdlib.ridge(p, -1), r"lambd=-1.0 .*>= 0"),
    (lambda p: wdlib.ridge(p, float("nan")), "finite"),
    (lambda p: wdlib.ridge(p, "3"), "number"),
    (lambda p: wdlib.ridge_path(p, []), "non-empty"),
    (lambda p: wdlib.ridge_path(p, [1, -2]), "lambdas=-2.0"),
    (lambda p: wdlib.ridge("not a problem", 1), "wdlib.Problem or wdlib.Config"),
])
def test_bad_arguments(problem: wdlib.Problem, call, match: str) -> None:
    with pytest.raises(wdlib.ConfigError, match=match):
        call(problem)
