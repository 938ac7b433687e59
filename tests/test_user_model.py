"""A model of the user's own (``model=MyModel()``), registered under its name as a penalty is: trained
on every backend with the same numbers (autodiff against NumPy's hand-derived ``backward``, float64),
stored and swept by name, and refused clearly where it cannot run."""

from __future__ import annotations

import numpy as np
import pytest

import wdlib
from wdlib.model import USER_MODELS


class SkipNet:
    """``X w + relu(X V) u + b``: a linear model with a small ReLU branch, using only the array
    operations every backend offers (dot, relu, arithmetic)."""

    name = "skipnet"

    def __init__(self, width: int = 4) -> None:
        self.width = width

    def init(self, rng: np.random.Generator, num_inputs: int) -> dict[str, np.ndarray]:
        return {"w": rng.standard_normal((num_inputs, 1)) * 0.1,
                "V": rng.standard_normal((num_inputs, self.width)) / np.sqrt(num_inputs),
                "u": rng.standard_normal((self.width, 1)) * 0.5, "b": np.zeros(1)}

    def apply(self, ops, params, X):
        return ops.dot(X, params["w"]) + ops.dot(ops.relu(ops.dot(X, params["V"])), params["u"]) + params["b"]

    def backward(self, ops, params, X, dout):
        H = ops.dot(X, params["V"])
        dH = ops.dot(dout, params["u"].T) * (H > 0)
        return {"w": ops.dot(X.T, dout), "V": ops.dot(X.T, dH), "u": ops.dot(ops.relu(H).T, dout),
                "b": dout.sum(axis=0)}


class NoBackward:
    """A model with autodiff in mind only: no hand-derived gradient."""

    name = "no_backward"

    def init(self, rng: np.random.Generator, num_inputs: int) -> dict[str, np.ndarray]:
        return {"w": rng.standard_normal((num_inputs, 1)), "b": np.zeros(1)}

    def apply(self, ops, params, X):
        return ops.dot(X, params["w"]) * 0.5 + params["b"]


COMMON = {"lambd": 1.0, "num_epochs": 10, "dtype": "float64"}


def test_user_model_on_every_backend_equals_numpy(backend: str) -> None:
    run = wdlib.train(backend, model=SkipNet(), **COMMON)
    ref = wdlib.train("numpy", model="skipnet", **COMMON)
    assert run.config.model == "skipnet" and run.engine in ("eager", "compiled")
    assert sorted(run.params) == ["V", "b", "u", "w"]
    for k, p in ref.params.items():
        np.testing.assert_allclose(run.params[k], p, rtol=1e-9, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(run.test_loss, ref.test_loss, rtol=1e-9)
    plain = wdlib.train("numpy", model="skipnet", **{**COMMON, "lambd": 0.0})
    assert not np.allclose(plain.params["V"], ref.params["V"])  # the penalty acts on V (a matrix)


def test_numpy_gradient_of_the_user_model_is_the_autodiff_one() -> None:
    """The hand-derived backward is checked by finite differences of the loss (what autodiff gives)."""
    model = SkipNet()
    rng = np.random.default_rng(1)
    X, dout = rng.standard_normal((6, 5)), rng.standard_normal((6, 1))
    params = model.init(rng, 5)
    ops = wdlib.get_backend("numpy")
    grads = model.backward(ops, params, X, dout)
    for k, p in params.items():
        num = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            d = np.zeros_like(p)
            d[i] = 1e-6
            up = (model.apply(ops, {**params, k: p + d}, X) * dout).sum()
            down = (model.apply(ops, {**params, k: p - d}, X) * dout).sum()
            num[i] = (up - down) / 2e-6
        np.testing.assert_allclose(grads[k], num, rtol=1e-5, atol=1e-8, err_msg=k)


def test_a_name_is_the_last_object_registered_under_it() -> None:
    """Another object under a taken name replaces the first (a notebook cell edited and run again);
    a Config made for the first is refused rather than run with the second."""
    four = wdlib.make_config(model=SkipNet(4))
    assert wdlib.make_config(model=SkipNet(4)) == four  # the same settings again: the same Config
    eight = wdlib.make_config(model=SkipNet(8))
    assert USER_MODELS["skipnet"].width == 8 and eight.model_fingerprint != four.model_fingerprint
    assert wdlib.train_sequence([eight.replace(num_epochs=2)])[0].params["V"].shape == (200, 8)
    with pytest.raises(wdlib.ConfigError, match="the model this Config was made for") as err:
        wdlib.train_sequence([four])
    assert err.value.field == "model"
    assert four.replace(lr=0.01).model_fingerprint == eight.model_fingerprint  # replace: the model now


def test_bad_models_are_refused_naming_the_field() -> None:
    class Builtin(SkipNet):
        name = "mlp"

    class BadInit(SkipNet):
        name = "bad_init"

        def init(self, rng, num_inputs):
            return [np.zeros(3)]

    for bad, words in [(Builtin(), "not built in"), (object(), "an object with a str `name`"),
                       ("resnet", "one of 'linear', 'mlp'"), (BadInit(), "dict of named float")]:
        with pytest.raises(wdlib.ConfigError, match=words) as err:
            wdlib.make_config(model=bad)
        assert err.value.field == "model"
    for fields, field in [({"hidden": (8,)}, "hidden"), ({"mode": "concise", "lambd": 0.0}, "mode")]:
        with pytest.raises(wdlib.ConfigError) as err:
            wdlib.make_config(model=SkipNet(), **fields)
        assert err.value.field == field


def test_no_backward_is_refused_on_numpy_only(backend: str) -> None:
    if backend == "numpy":
        with pytest.raises(wdlib.ConfigError, match="backward") as err:
            wdlib.train("numpy", model=NoBackward(), num_epochs=2)
        assert err.value.field == "model"
    else:
        run = wdlib.train(backend, model=NoBackward(), num_epochs=2)
        assert np.isfinite(run.test_loss).all()


def test_user_model_reaches_spawned_sweep_workers(tmp_path) -> None:
    """A spawned worker imports wdlib afresh: the sweep sends the model object with the task."""
    table = wdlib.sweep([0.5, 1.0], backends=["numpy"], model=SkipNet(), num_epochs=5, dtype="float64",
                        store=tmp_path / "runs.sqlite", workers=1)
    alone = wdlib.train("numpy", model=SkipNet(), lambd=1.0, num_epochs=5, dtype="float64")
    assert table.computed == 2
    row = next(r for r in table.rows if r["lambd"] == 1.0)
    assert row["test_loss"] == float(alone.test_loss[-1])


class Unused(NoBackward):
    """A parameter that apply never reads: its gradient is 0 on every backend."""

    name = "unused_param"

    def init(self, rng: np.random.Generator, num_inputs: int) -> dict[str, np.ndarray]:
        return {**super().init(rng, num_inputs), "extra": np.ones((2, 2))}


def test_a_parameter_the_model_does_not_use_stays_as_it_starts(backend: str) -> None:
    if backend == "numpy":  # no backward: refused there, before any data
        with pytest.raises(wdlib.ConfigError, match="backward"):
            wdlib.train(backend, model=Unused(), num_epochs=2)
        return
    run = wdlib.train(backend, model=Unused(), num_epochs=2, lambd=0.0)
    np.testing.assert_array_equal(run.params["extra"], np.ones((2, 2)))


class FlatOutput(SkipNet):
    """apply returns (n,) instead of (n, 1): NumPy would broadcast its gradient into a (p, p) matrix."""

    name = "flat_output"

    def apply(self, ops, params, X):
        return super().apply(ops, params, X)[:, 0]


class WrongBackward(SkipNet):
    name = "wrong_backward"

    def backward(self, ops, params, X, dout):
        return {**super().backward(ops, params, X, dout), "u": dout.sum(axis=0)}


class IntBias(SkipNet):
    name = "int_bias"

    def init(self, rng, num_inputs):
        return {**super().init(rng, num_inputs), "b": np.zeros(1, dtype=int)}


def test_a_model_returning_wrong_shapes_is_refused_before_training(backend: str) -> None:
    with pytest.raises(wdlib.ConfigError, match=r"returns \(n, 1\) predictions.*shape \(2,\)") as err:
        wdlib.train(backend, model=FlatOutput(), num_epochs=2)
    assert err.value.field == "model"
    with pytest.raises(wdlib.ConfigError, match="its 'b' is dtype int64") as err:
        wdlib.train(backend, model=IntBias(), num_epochs=2)
    assert err.value.field == "model"


def test_numpy_checks_the_shapes_of_a_hand_derived_gradient() -> None:
    with pytest.raises(wdlib.ConfigError, match="one gradient per parameter") as err:
        wdlib.train("numpy", model=WrongBackward(), num_epochs=2)
    assert err.value.field == "model" and "'u': (1,)" in str(err.value)


class NumpyInside(SkipNet):
    name = "numpy_inside"

    def apply(self, ops, params, X):
        return np.dot(X, params["w"]) + params["b"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # NumPy 2 on np.dot of torch tensors
def test_a_model_computing_with_numpy_on_another_backend_is_told_to_use_ops() -> None:
    with pytest.raises(wdlib.ConfigError, match=r"computed with ops \(ops.dot") as err:
        wdlib.train("torch", model=NumpyInside(), num_epochs=2)
    assert err.value.field == "model"
    with pytest.raises(wdlib.ConfigError, match=r"model=SkipNet\(\.\.\.\)"):
        wdlib.make_config(model=SkipNet)


def test_a_built_in_model_object_is_named_in_the_error() -> None:
    with pytest.raises(wdlib.ConfigError, match=r"use model='mlp', hidden=\(8,\)"):
        wdlib.train("numpy", model=wdlib.model.MLP((8,)))
    with pytest.raises(wdlib.ConfigError, match="use model='linear'"):
        wdlib.make_config(model=wdlib.model.Linear())


def test_a_subclass_of_a_built_in_model_is_a_model_of_your_own() -> None:
    class Wide(wdlib.model.MLP):
        name = "wide"

    try:
        assert wdlib.make_config(model=Wide((8,))).model == "wide"
    finally:
        USER_MODELS.pop("wide", None)
