"""MXNet's float32 eager step with its fused optimizer operators (wdlib_mxnet.eager) equals the core's
step (wdlib.optim's transforms in ``nd`` operators) to float32 rounding, for every optimizer and decay it
covers; float64 runs and the books' plain SGD keep the core's exact step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import wdlib
from wdlib.steps import make_step

pytestmark = pytest.mark.skipif("mxnet" not in wdlib.installed_backends(), reason="mxnet is not installed")

#: float32 rounding of the hyperparameters and of each step's arithmetic, over a whole run.
RTOL = 1e-4

SETTINGS = [
    {"optimizer": "sgd", "wd": 0.5, "decay": "coupled"},
    {"optimizer": "sgd", "wd": 0.5, "decay": "decoupled"},
    {"optimizer": "sgd", "wd": 0.05, "decay": "independent"},
    {"optimizer": "momentum", "lr": 0.003, "wd": 0.5, "decay": "coupled"},
    {"optimizer": "momentum", "lr": 0.003, "wd": 0.5, "decay": "decoupled"},
    {"optimizer": "momentum", "lr": 0.003, "wd": 0.01, "decay": "independent"},
    {"optimizer": "momentum", "lr": 0.003, "lambd": 2.0, "optimizer_args": {"beta": 0.5}},
    {"optimizer": "adam", "lr": 0.01, "wd": 0.5, "decay": "coupled"},
    {"optimizer": "adam", "lr": 0.01, "wd": 0.5, "decay": "decoupled"},
    {"optimizer": "adam", "lr": 0.01, "wd": 0.05, "decay": "independent"},
    # an epsilon that matters: its bias correction (eps sqrt(1 - b2^t)) is checked too
    {"optimizer": "adam", "lr": 0.01, "wd": 0.5, "optimizer_args": {"eps": 0.1}},
    {"optimizer": "adam", "lr": 0.01, "wd": 0.5, "decay": "decoupled", "optimizer_args": {"eps": 0.1}},
    {"optimizer": "adam", "lr": 0.01, "lambd": 1.0, "optimizer_args": {"b1": 0.8, "eps": 1e-6}},
    {"optimizer": "adam", "lr": 0.01, "lambd": 1.0, "wd": 0.5, "decay": "decoupled"},
    {"optimizer": "adam", "lr": 0.01, "lambd": 1.0, "penalty": "l1", "wd": 0.5},
    {"model": "mlp", "hidden": (8,), "lambd": 0.5},
    {"model": "mlp", "hidden": (8, 4), "lambd": 0.5, "optimizer": "adam", "lr": 0.003, "wd": 0.1},
]


@pytest.fixture(scope="module")
def impl() -> Any:
    return wdlib.get_backend("mxnet")


def core_run(impl: Any, problem: wdlib.Problem, config: wdlib.Config,
             monkeypatch: pytest.MonkeyPatch) -> wdlib.Run:
    """The run with the core's step: the backend's hook declines."""
    with monkeypatch.context() as m:
        m.setattr(type(impl), "optimizer_step", lambda self, config, params: None)
        return wdlib.fit(impl, problem, config)


def params_of(impl: Any, problem: wdlib.Problem, dtype: str) -> dict[str, Any]:
    return {k: impl.asarray(v, dtype) for k, v in problem.init.items()}


@pytest.mark.parametrize("decay_bias", [False, True])
@pytest.mark.parametrize("fields", SETTINGS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_fused_step_equals_the_core_step_in_float32(impl: Any, monkeypatch: pytest.MonkeyPatch,
                                                    fields: dict[str, Any], decay_bias: bool) -> None:
    """A whole run (7 rows in batches of 3: a short last batch, whose penalty share is its own) with the
    fused operators and with the core's transforms, the biases decayed or not."""
    config = wdlib.make_config("d2l", engine="eager", backend="mxnet", n_train=7, batch_size=3,
                               num_epochs=30, decay_bias=decay_bias, **fields)
    problem = wdlib.make_problem(config)
    assert impl.optimizer_step(config, params_of(impl, problem, "float32")) is not None
    fast, core = wdlib.fit(impl, problem, config), core_run(impl, problem, config, monkeypatch)
    assert np.isfinite(core.test_loss).all()
    np.testing.assert_allclose(fast.test_loss, core.test_loss, rtol=RTOL)
    scale = max(np.abs(p).max() for p in core.params.values())  # entries near 0 carry absolute accuracy
    for k, p in core.params.items():
        np.testing.assert_allclose(fast.params[k], p, rtol=RTOL, atol=RTOL * scale, err_msg=k)
    moved = [k for k in core.params if not np.array_equal(core.params[k], problem.init[k].astype(np.float32))]
    assert moved == list(core.params)  # every parameter trained, so each was compared after updates


@pytest.mark.parametrize("fields", [{"optimizer": "adam", "wd": 0.5, "decay": "coupled"},
                                    {"optimizer": "momentum", "wd": 0.5}, {"model": "mlp", "hidden": (4,)}])
def test_float64_keeps_the_core_step_bit_for_bit(impl: Any, monkeypatch: pytest.MonkeyPatch,
                                                 fields: dict[str, Any]) -> None:
    config = wdlib.make_config("d2l", engine="eager", backend="mxnet", dtype="float64", num_epochs=5,
                               **fields)
    problem = wdlib.make_problem(config)
    assert impl.optimizer_step(config, params_of(impl, problem, "float64")) is None
    fast, core = wdlib.fit(impl, problem, config), core_run(impl, problem, config, monkeypatch)
    assert fast.test_loss.tolist() == core.test_loss.tolist()
    for k, p in core.params.items():
        assert np.array_equal(fast.params[k], p), k


@pytest.mark.parametrize("fields", [
    {"lambd": 3.0},  # the books' step: the gluonbook reproduction is bitwise
    {"optimizer": "momentum", "optimizer_args": {"nesterov": True}},
    {"optimizer": "momentum", "optimizer_args": {"dampening": 0.5}},
    {"mode": "concise", "optimizer": "adam", "wd": 0.5},
])
def test_settings_without_a_fused_spelling_keep_the_core_step(impl: Any, fields: dict[str, Any]) -> None:
    config = wdlib.make_config("d2l", engine="eager", backend="mxnet", **fields)
    problem = wdlib.make_problem(config)
    assert impl.optimizer_step(config, params_of(impl, problem, "float32")) is None


def test_the_fused_step_leaves_its_input_parameters_alone(impl: Any) -> None:
    """The step is a function of the parameters, as the core's: the arrays it is given are unchanged,
    and stepping from them again continues the optimizer's state (not the same result twice)."""
    config = wdlib.make_config("d2l", engine="eager", backend="mxnet", optimizer="adam", lr=0.01, wd=0.5)
    problem = wdlib.make_problem(config)
    params = params_of(impl, problem, "float32")
    before = {k: impl.to_numpy(p).copy() for k, p in params.items()}
    step = make_step(impl, config, params)
    X, y = impl.asarray(problem.X_train[:5], "float32"), impl.asarray(problem.y_train[:5], "float32")
    first = {k: impl.to_numpy(p) for k, p in step(params, X, y).items()}
    for k, p in params.items():
        np.testing.assert_array_equal(impl.to_numpy(p), before[k], k)
    assert not np.array_equal(first["w"], before["w"])
    second = {k: impl.to_numpy(p) for k, p in step(params, X, y).items()}
    assert not np.array_equal(first["w"], second["w"])  # t = 2: the moments carried over


def test_loading_mxnet_leaves_pytorchs_threads_as_they_were() -> None:
    """Importing mxnet sets the loaded OpenMP runtime to one thread (PyTorch's, or the one a later
    ``import torch`` shares); the backend sets it back. Fresh interpreters: torch imported before
    (given 2 threads) and after (OpenMP's default, OMP_NUM_THREADS=2 here)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("torch")
    run, show = "import wdlib; wdlib.train('mxnet', num_epochs=1)", "print(torch.get_num_threads())"
    for code in (f"import torch; torch.set_num_threads(2); {run}; {show}", f"{run}; import torch; {show}"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "OMP_NUM_THREADS": "2"}).stdout
        assert out.split()[-1] == "2", code
