"""A run whose loss becomes NaN or infinite stops there and says so."""

from __future__ import annotations

import re

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


def test_messages_of_a_run_that_diverges_at_once_and_of_several_lambdas_for_one_run() -> None:
    """No "last finite test loss: nan" when the first evaluation is already inf; a list of λ for a
    single run points at the calls that take several."""
    X = np.random.default_rng(0).standard_normal((30, 4)) * 1e20
    with pytest.raises(wdlib.DivergenceError) as err:
        wdlib.train("numpy", data=(X, X.sum(axis=1)), lr=1.0, num_epochs=3)
    assert "at the first evaluation already" in str(err.value)
    assert "last finite test loss: nan" not in str(err.value)
    with pytest.raises(wdlib.ConfigError, match=r"train_lambdas, wdlib\.compare and wdlib\.sweep") as bad:
        wdlib.train("numpy", lambd=[0, 3])
    assert bad.value.field == "lambd"


def test_the_cause_names_the_decay_whose_step_alone_diverges(capsys: pytest.CaptureFixture) -> None:
    """The L2 penalty's step (lr * lambd), independent decay (wd alone) or decoupled (lr * wd) beyond 2
    is named as the cause, not the learning rate; the CLI says the same in its own words."""
    for fields, cause in [({"lambd": 1e6}, "lr * lambd = 3e+03 > 2"),
                          ({"wd": 3.0, "decay": "independent"}, "wd (not scaled by lr) = 3 > 2"),
                          ({"wd": 1e3, "decay": "decoupled", "optimizer": "adam"}, "lr * wd = 3 > 2")]:
        with pytest.raises(wdlib.DivergenceError, match=re.escape(cause)):
            wdlib.train("numpy", **fields)
    from wdlib.cli import main

    assert main(["train", "--lambd", "1e6"]) != 0
    assert "lower --lambd or --set lr=..., or keep the diverged run with --set on_divergence=record" in \
        capsys.readouterr().err
