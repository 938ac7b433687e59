"""Every backend reproduces the NumPy float64 reference, epoch by epoch.

Tolerances (measured worst case over these 8 configurations, in brackets):
- float64: the backends differ from NumPy only in the summation order inside ``dot`` (~1e-16 relative
  per step), and SGD on a least-squares objective with lr * L < 2 does not amplify such errors, so w and
  the test loss agree to ~1e-15 [w 1.8e-15 absolute, test loss 8e-16]; we assert 1e-12, on w relative
  to max|w| (entries near zero, which L1 makes common, carry only absolute accuracy). The training
  loss at lambd=0 is a squared residual of ~1e-3 computed from terms of ~10, so cancellation costs
  ~|Xw|/|r| ~ 1e4 in relative accuracy [5e-12]; we assert 1e-9.
- float32: inputs are rounded to float32 (relative 6e-8) and every step rounds again [test loss 5e-7,
  w 1.1e-6 of max|w|]; we assert 1e-4 on the test loss and on w measured against max|w| (single entries
  of w cross zero, where an entrywise relative error means nothing). The float32 training-loss tail
  loses ~1e4 to cancellation [2e-3], so it gets 2e-2.
"""

from __future__ import annotations

import numpy as np
import pytest

import wdlib

CASES = [(p, lam, s) for p in ("d2l", "gluonbook") for lam in (0, 3) for s in (0, 1)]


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float, what: str) -> None:
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0, err_msg=what)


def assert_weights_close(actual: dict, expected: dict, tol: float) -> None:
    """w and b to ``tol`` relative, or ``tol`` times max|w| absolute for entries near zero."""
    atol = tol * np.abs(expected["w"]).max()
    for name in ("w", "b"):
        np.testing.assert_allclose(actual[name], expected[name], rtol=tol, atol=atol, err_msg=name)


@pytest.mark.parametrize(("preset", "lambd", "seed"), CASES)
def test_float64_equals_numpy_reference(
    backend: str, reference, preset: str, lambd: float, seed: int
) -> None:
    ref = reference(preset, lambd, seed)
    run = wdlib.train(backend, preset, lambd=lambd, seed=seed, dtype="float64")
    assert run.params["w"].dtype == np.float64
    assert_close(run.train_loss, ref.train_loss, 1e-9, "train loss")
    assert_close(run.test_loss, ref.test_loss, 1e-12, "test loss")
    assert_weights_close(run.params, ref.params, 1e-12)


@pytest.mark.parametrize(("preset", "lambd", "seed"), CASES)
def test_float32_equals_numpy_reference(
    backend: str, reference, preset: str, lambd: float, seed: int
) -> None:
    ref = reference(preset, lambd, seed)
    run = wdlib.train(backend, preset, lambd=lambd, seed=seed)
    assert run.params["w"].dtype == np.float32
    assert_close(run.test_loss, ref.test_loss, 1e-4, "test loss")
    assert_close(run.train_loss, ref.train_loss, 2e-2, "train loss")
    assert_weights_close(run.params, ref.params, 1e-4)


@pytest.mark.parametrize("penalty", ["l1", "l2"])
@pytest.mark.parametrize("decay_bias", [False, True])
def test_penalties_and_bias_decay_agree(backend: str, reference, penalty: str, decay_bias: bool) -> None:
    kw = {"penalty": penalty, "decay_bias": decay_bias, "num_epochs": 20}
    ref = reference("d2l", 3, 0, **kw)
    run = wdlib.train(backend, lambd=3, dtype="float64", **kw)
    assert_close(run.test_loss, ref.test_loss, 1e-12, "test loss")
    assert_weights_close(run.params, ref.params, 1e-12)


def test_penalty_choice_changes_the_result(reference) -> None:
    """l1, l2 and bias decay are real options: each gives a different solution."""
    runs = {
        (p, d): reference("d2l", 3, 0, penalty=p, decay_bias=d, num_epochs=20)
        for p in ("l1", "l2")
        for d in (False, True)
    }
    finals = [tuple(r.params["w"].ravel()) + tuple(r.params["b"]) for r in runs.values()]
    assert len(set(finals)) == 4
    l1 = runs[("l1", False)].params["w"]
    l2 = runs[("l2", False)].params["w"]
    assert np.abs(l1).sum() < np.abs(l2).sum()  # l1 shrinks the l1 norm harder
