"""Configuration errors are clear and come before any heavy work."""

from __future__ import annotations

import math

import numpy as np
import pytest

import wdlib

BAD = [
    ({"preset": "gluon"}, "preset", "did you mean 'gluonbook'"),
    ({"dtype": "float16"}, "dtype", "'float32', 'float64'"),
    ({"penalty": "l3"}, "penalty", "'l2', 'l1', 'elastic_net'"),
    ({"lambd": -1}, "lambd", ">= 0"),
    ({"lambd": math.nan}, "lambd", "finite"),
    ({"lambd": math.inf}, "lambd", "finite"),
    ({"lr": 0}, "lr", "> 0"),
    ({"lr": -0.1}, "lr", "> 0"),
    ({"noise": -1}, "noise", ">= 0"),
    ({"batch_size": 0}, "batch_size", "integer"),
    ({"batch_size": 21}, "batch_size", "n_train=20"),
    ({"num_epochs": 0}, "num_epochs", "integer"),
    ({"n_train": 0}, "n_train", "integer"),
    ({"n_test": 0}, "n_test", "integer"),
    ({"num_inputs": 0}, "num_inputs", "integer"),
    ({"num_epochs": 2.0}, "num_epochs", "integer"),
    ({"num_epochs": True}, "num_epochs", "integer"),
    ({"seed": -1}, "seed", "integer from 0"),
    ({"seed": 2**31}, "seed", "integer from 0"),
    ({"decay_bias": 1}, "decay_bias", "True or False"),
    ({"lambda": 3}, "lambda", "did you mean 'lambd'"),
    ({"lambd": "3"}, "lambd", "number"),
    ({"mode": "brief"}, "mode", "'scratch', 'concise'"),
    ({"rng": "torch"}, "rng", "'numpy', 'native'"),
    ({"engine": "fast"}, "engine", "'auto', 'eager', 'fused'"),
    ({"on_divergence": "ignore"}, "on_divergence", "'raise', 'record'"),
    ({"mode": "concise", "wd": -1}, "wd", ">= 0"),
    ({"mode": "concise", "wd": math.nan}, "wd", "finite"),
    ({"lr": math.inf}, "lr", "finite"),
    ({"noise": math.nan}, "noise", "finite"),
    ({"n_test": 1.5}, "n_test", "integer"),
    ({"seed": 1.0}, "seed", "integer"),
    ({"decay": "sideways", "wd": 1.0}, "decay", "'coupled'"),
    ({"mode": "concise", "lambd": 3}, "lambd", "use wd"),
    ({"rng": "native"}, "rng", "no native recipe"),
    ({"rng": "native", "dtype": "float64"}, "dtype", "'float32' with rng='native'"),
    ({"engine": "fused", "mode": "concise"}, "engine", "no fused path"),
]


@pytest.mark.parametrize(("kwargs", "field", "accepted"), BAD)
def test_bad_field_names_field_and_accepted_values(kwargs: dict, field: str, accepted: str) -> None:
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.train("numpy", **kwargs)
    assert str(err.value).startswith(f"{field}=")
    assert accepted in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, wdlib.WdlibError)


@pytest.mark.parametrize(
    ("name", "error", "says"),
    [
        ("jaxx", wdlib.UnknownBackendError, "did you mean 'jax'"),
        ("pytorch", wdlib.UnknownBackendError, "installed ones are"),
        ("", wdlib.ConfigError, "backend name"),
        (3, wdlib.ConfigError, "backend name"),
    ],
)
def test_bad_backend(name: object, error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        wdlib.train(name)


def test_config_is_checked_before_the_backend_is_loaded() -> None:
    """A bad field is reported even for a backend that does not exist: nothing heavy ran."""
    with pytest.raises(wdlib.ConfigError, match="lr"):
        wdlib.train("no-such-backend", lr=0)


def test_replace_validates() -> None:
    config = wdlib.make_config()
    assert config.replace(lambd=3).lambd == 3.0
    with pytest.raises(wdlib.ConfigError, match="lambd"):
        config.replace(lambd=-3)


def test_errors_survive_pickling() -> None:
    """Errors raised in a sweep's worker process cross back intact."""
    import pickle

    with pytest.raises(wdlib.ConfigError) as config_err:
        wdlib.train("numpy", lr=0)
    again = pickle.loads(pickle.dumps(config_err.value))
    assert type(again) is wdlib.ConfigError and str(again) == str(config_err.value) and again.field == "lr"
    with pytest.raises(wdlib.DivergenceError) as div_err:
        wdlib.train("numpy", lr=1.0)
    again = pickle.loads(pickle.dumps(div_err.value))
    assert str(again) == str(div_err.value) and again.epoch == div_err.value.epoch


def test_result_files_get_the_usual_mode(tmp_path) -> None:
    import os
    import stat

    from wdlib.io import write_text

    umask = os.umask(0o022)
    try:
        path = write_text(tmp_path / "out.csv", "a,b\n")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers() -> None:
    import numpy as np

    config = wdlib.make_config(lambd=np.float32(3), seed=np.int64(4), num_epochs=np.int32(2))
    assert (config.lambd, config.seed, config.num_epochs) == (3.0, 4, 2)
    assert type(config.seed) is int and type(config.lambd) is float
    with pytest.raises(wdlib.ConfigError, match="num_epochs"):
        wdlib.make_config(num_epochs=np.bool_(True))


def test_a_config_built_directly_is_the_one_make_config_builds() -> None:
    """Config(...) runs the same checks and normalizations as make_config (one source of truth)."""
    import dataclasses

    import numpy as np

    from wdlib.store import config_key

    direct = wdlib.Config(lambd=-0.0, seed=np.int64(3), model="mlp", num_epochs=4)
    made = wdlib.make_config(lambd=0.0, seed=3, model="mlp", num_epochs=4)
    assert direct == made and config_key(direct) == config_key(made)
    assert type(direct.seed) is int and direct.hidden == (256,)
    assert dataclasses.replace(made, lr=0.01) == made.replace(lr=0.01)
    assert wdlib.Config() == wdlib.make_config()


def test_memory_estimates_refuse_before_allocating_and_accept_the_books(monkeypatch) -> None:
    from wdlib import limits

    monkeypatch.setenv("WDLIB_MEMORY_LIMIT", "64M")
    assert limits.available_memory() == 64 * 2**20
    for preset in ("d2l", "gluonbook"):
        limits.check_run(wdlib.make_config(preset, dtype="float64"))  # the books' runs fit easily
    config = wdlib.make_config(num_inputs=10**6)
    needed, field = limits.run_bytes(config)
    assert field == "num_inputs" and needed > 120 * 10**6 * 4
    with pytest.raises(wdlib.errors.ResourceError, match=r"num_inputs=1000000 is too large.*64 MB"):
        wdlib.train(num_inputs=10**6)
    monkeypatch.setenv("WDLIB_MEMORY_LIMIT", "lots")
    with pytest.raises(wdlib.ConfigError, match="WDLIB_MEMORY_LIMIT"):
        limits.available_memory()
    monkeypatch.delenv("WDLIB_MEMORY_LIMIT")
    assert limits.available_memory() > 0


def test_a_finite_loss_that_grows_by_orders_of_magnitude_warns_on_every_engine() -> None:
    for engine in ("eager", "fused"):
        with pytest.warns(wdlib.errors.DivergenceWarning, match="grew from"):
            run = wdlib.train("numpy", lr=0.05, num_epochs=40, engine=engine)
        assert not run.diverged and run.train_loss[-1] > 1e6 * run.train_loss[0]


def test_a_subnormal_number_is_refused_with_the_reason() -> None:
    with pytest.raises(wdlib.ConfigError, match=r"^lambd=5e-324 is not valid: expected 0 or a number >= 2.2"):
        wdlib.make_config(lambd=5e-324)
    assert wdlib.make_config(lambd=1e-300).lambd == 1e-300


def test_numpy_spellings_of_a_value_are_taken_and_near_misses_named() -> None:
    assert wdlib.make_config(dtype=np.float64).dtype == "float64"
    assert wdlib.make_config(lambd=np.array(0.5)).lambd == 0.5
    with pytest.raises(wdlib.ConfigError, match="did you mean 'l2'"):
        wdlib.make_config(penalty="L2")
    X = np.zeros((5, 3))
    with pytest.raises(wdlib.ConfigError, match=r"data=\(<ndarray of shape \(5, 3\), dtype float64>, "
                       r"<ndarray of shape \(5,\), dtype float64>\).*pass them to wdlib.train") as err:
        wdlib.make_config(data=(X, X[:, 0]))
    assert err.value.field == "data"


def test_a_config_passed_as_a_field_says_how_to_run_it() -> None:
    with pytest.raises(wdlib.ConfigError, match=r"wdlib.train_sequence\(\[config\]\)") as err:
        wdlib.train("numpy", config=wdlib.make_config(num_epochs=2))
    assert err.value.field == "config" and len(str(err.value)) < 1000  # the Config's repr is cut
