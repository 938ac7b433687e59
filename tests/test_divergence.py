"""A run whose loss becomes NaN or infinite stops there and says so."""

from __future__ import annotations

import numpy as np
import pytest

import wdlib

ENGINES = ["eager", "auto"]  # auto takes the fused path where a backend has one


@pytest.mark.parametrize("engine", ENGINES)
def test_divergence_raises_with_epoch_and_cause(backend: str, engine: str) -> None:
    with pytest.raises(wdlib.DivergenceError) as err:
        wdlib.train(backend, lr=1.0, engine=engine)
    message = str(err.value)
    assert err.value.epoch >= 1 and f"epoch {err.value.epoch}" in message
    assert "lr=1.0" in message and "too large" in message
    assert np.isfinite(err.value.last_loss) or err.value.epoch == 1
    assert isinstance(err.value, wdlib.WdlibError) and isinstance(err.value, ArithmeticError)


@pytest.mark.parametrize("engine", ENGINES)
def test_divergence_recorded_keeps_history(backend: str, engine: str) -> None:
    run = wdlib.train(backend, lr=1.0, on_divergence="record", engine=engine)
    assert run.diverged
    epoch = run.meta["diverged_at_epoch"]
    assert len(run.train_loss) == epoch < 100
    assert np.isfinite(run.train_loss[:-1]).all() and np.isfinite(run.test_loss[:-1]).all()
    assert not (np.isfinite(run.train_loss[-1]) and np.isfinite(run.test_loss[-1]))
    # The history up to the divergence is the same whichever way it was asked for.
    again = wdlib.train(backend, lr=1.0, on_divergence="record", engine="eager")
    assert again.meta["diverged_at_epoch"] == epoch


def test_a_stable_run_is_not_marked(backend: str) -> None:
    run = wdlib.train(backend, num_epochs=3, on_divergence="record")
    assert not run.diverged and run.meta["diverged_at_epoch"] is None
