"""Concise mode (the framework's optimizer weight decay) equals the from-scratch penalty, step for step,
once the loss scale is matched: concise(wd, lr) = scratch(lambd = wd / s, lr = s * lr), where s is 2
for PyTorch's nn.MSELoss (no 1/2) and 1 for the others (L2Loss, optax.l2_loss, NumPy's by hand).

Tolerance: float64, as in the cross-backend tests (1e-12), except MXNet, whose optimizer takes lr, wd
and the 1/batch_size rescale as float32 (relative errors up to 1.5e-8 per step: measured 5e-8 on the
test loss and 2e-9 on w), so 1e-6 there.
"""

from __future__ import annotations

import numpy as np
import pytest

import wdlib

SCALE = {"torch": 2.0, "mxnet": 1.0, "jax": 1.0, "numpy": 1.0}  # the documented mapping


@pytest.mark.parametrize("decay_bias", [False, True])
@pytest.mark.parametrize("preset", ["d2l", "gluonbook"])
def test_concise_equals_scratch_with_matched_scale(backend: str, decay_bias: bool, preset: str) -> None:
    s = SCALE[backend]
    assert wdlib.backend_class(backend).concise_loss_scale == s
    concise = wdlib.train(backend, preset, mode="concise", wd=3, dtype="float64", decay_bias=decay_bias,
                          engine="eager")
    scratch = wdlib.train(backend, preset, lambd=3 / s, lr=0.003 * s, dtype="float64",
                          decay_bias=decay_bias, engine="eager")
    tol = 1e-6 if backend == "mxnet" else 1e-12  # SGD: tighter than compare's bound for any optimizer
    assert wdlib.backend_class(backend).concise_float64_rtol == (1e-4 if backend == "mxnet" else tol)
    np.testing.assert_allclose(concise.test_loss, scratch.test_loss, rtol=tol)
    atol = tol * np.abs(scratch.params["w"]).max()
    np.testing.assert_allclose(concise.params["w"], scratch.params["w"], rtol=tol, atol=atol)
    np.testing.assert_allclose(concise.params["b"], scratch.params["b"], rtol=tol, atol=atol)


def test_concise_decays_the_bias_only_when_asked(backend: str) -> None:
    kept = wdlib.train(backend, mode="concise", wd=3, engine="eager", num_epochs=20)
    decayed = wdlib.train(backend, mode="concise", wd=3, decay_bias=True, engine="eager", num_epochs=20)
    assert np.array_equal(kept.problem.w0, decayed.problem.w0)
    assert not np.allclose(kept.params["b"], decayed.params["b"])


def test_concise_weight_decay_shrinks_w(backend: str) -> None:
    plain = wdlib.train(backend, mode="concise", wd=0, engine="eager")
    decayed = wdlib.train(backend, mode="concise", wd=3, engine="eager")
    assert decayed.w_norm < 1 < 10 < plain.w_norm
    assert decayed.test_loss[-1] < plain.test_loss[-1] / 10


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"mode": "concise", "wd": 3, "optimizer": "momentum", "decay": "decoupled", "backend": "torch"},
      "decay"),
     ({"mode": "concise", "lambd": 3}, "lambd"),
     ({"mode": "concise", "penalty": "l1"}, "penalty"), ({"mode": "brief"}, "mode")],
)
def test_concise_conflicts_are_clear(kwargs: dict, field: str) -> None:
    with pytest.raises(wdlib.ConfigError, match=rf"^{field}="):
        wdlib.make_config(**kwargs)


def test_compare_checks_concise_runs_against_their_scratch_equivalent() -> None:
    table = wdlib.compare(lambd=3, mode="concise", dtype="float64", num_epochs=10)
    assert {row["status"] for row in table.rows} == {"ok"}, str(table)
    assert "frameworks may differ from one another (torch's MSELoss has no 1/2)" in str(table)


@pytest.mark.parametrize(("optimizer", "decay"), [("momentum", "coupled"), ("adam", "coupled"),
                                                  ("adam", "decoupled")])
def test_compare_maps_each_frameworks_optimizer_to_its_core_chain(optimizer: str, decay: str) -> None:
    """The reference of a concise momentum/Adam run is semantics.core_config (torch's Adam needs eps/2,
    not lr*2): every framework agrees, the exact ones to float64 rounding."""
    table = wdlib.compare(lambd=3, mode="concise", dtype="float64", num_epochs=10, optimizer=optimizer,
                          decay=decay)
    assert {row["status"] for row in table.rows} == {"ok"}, str(table)
    exact = [row for row in table.rows if row["backend"] != "mxnet"]
    assert exact and all(row["max_abs_dtest"] <= 1e-11 * row["test_loss"] for row in exact), str(table)
