"""Property tests over the config space (small sizes): valid configs train on every installed backend
and agree with the NumPy reference; invalid configs raise the documented error type."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wdlib
from wdlib.config import MAX_SEED

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def valid_configs(draw: st.DrawFn) -> dict:
    n_train = draw(st.integers(1, 8))
    fields = {
        "preset": draw(st.sampled_from(["d2l", "gluonbook"])),
        "n_train": n_train,
        "n_test": draw(st.integers(1, 6)),
        "num_inputs": draw(st.integers(1, 6)),
        "batch_size": draw(st.integers(1, n_train)),
        "num_epochs": draw(st.integers(1, 3)),
        "lr": draw(st.floats(1e-4, 0.05)),
        "noise": draw(st.floats(0, 1, allow_subnormal=False)),
        "true_w": draw(st.floats(-1, 1)),
        "true_b": draw(st.floats(-1, 1)),
        "dtype": "float64",
        "seed": draw(st.integers(0, MAX_SEED)),
        "decay_bias": draw(st.booleans()),
    }
    if draw(st.booleans()):
        # Concise optimizers treat a short last batch differently (Gluon divides by the batch_size
        # given to trainer.step, the others average what is there), so concise draws even batches.
        divisors = [d for d in range(1, n_train + 1) if n_train % d == 0]
        fields |= {
            "mode": "concise",
            # >= 1e-300 or 0: the reference divides wd by the loss scale, which must stay normal
            "wd": draw(st.floats(0, 5, allow_subnormal=False).map(lambda v: v if v >= 1e-300 else 0.0)),
            "batch_size": draw(st.sampled_from(divisors)),
        }
    else:
        fields |= {"lambd": draw(st.floats(0, 5, allow_subnormal=False)),
                   "penalty": draw(st.sampled_from(["l1", "l2"]))}
    return fields


@SETTINGS
@given(fields=valid_configs())
def test_valid_configs_agree_with_numpy(backend: str, fields: dict) -> None:
    run = wdlib.train(backend, **fields)
    if fields.get("mode") == "concise":  # match the loss scale (see test_concise.py)
        s = wdlib.backend_class(backend).concise_loss_scale
        fields = fields | {"wd": fields["wd"] / s, "lr": fields["lr"] * s}
    ref = wdlib.train("numpy", **fields)
    assert run.params["w"].shape == (fields["num_inputs"], 1)
    # float64; MXNet's concise optimizer takes its hyperparameters in float32 (see test_concise.py).
    tol = 1e-6 if backend == "mxnet" and fields.get("mode") == "concise" else 1e-9
    scale = max(np.abs(ref.params["w"]).max(), 1.0)
    np.testing.assert_allclose(run.test_loss, ref.test_loss, rtol=tol, atol=tol * scale**2)
    np.testing.assert_allclose(run.params["w"], ref.params["w"], rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(run.params["b"], ref.params["b"], rtol=tol, atol=tol * scale)


BAD_NUMBERS = st.one_of(
    st.floats(max_value=-1e-9),
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
)
BAD_INTEGERS = st.one_of(
    st.integers(max_value=0), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3), st.none()
)


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(
        [
            "lambd",
            "lr",
            "noise",
            "n_train",
            "n_test",
            "num_inputs",
            "num_epochs",
            "batch_size",
            "seed",
            "wd",
            "dtype",
            "penalty",
            "mode",
            "rng",
            "engine",
            "preset",
            "on_divergence",
        ]
    ),
    data=st.data(),
)
def test_invalid_configs_raise_config_error(field: str, data: st.DataObject) -> None:
    if field in ("lambd", "lr", "noise", "wd"):
        value = data.draw(BAD_NUMBERS)
    elif field in ("n_train", "n_test", "num_inputs", "num_epochs", "batch_size"):
        value = data.draw(BAD_INTEGERS)
    elif field == "seed":
        value = data.draw(
            st.one_of(
                st.integers(max_value=-1),
                st.integers(min_value=MAX_SEED + 1),
                BAD_INTEGERS.filter(lambda v: v != 0),
            )
        )
    else:
        value = data.draw(st.text(max_size=8).filter(lambda v: v not in _ACCEPTED[field]))
    kwargs = {field: value} if field != "wd" else {"mode": "concise", "wd": value}
    try:
        wdlib.train("numpy", **kwargs)
    except wdlib.ConfigError as err:
        assert isinstance(err, ValueError)
        assert str(err).startswith(f"{field}=")
    else:
        raise AssertionError(f"{field}={value!r} was accepted")


_ACCEPTED = {
    "dtype": ("float32", "float64"),
    "penalty": ("l1", "l2"),
    "mode": ("scratch", "concise"),
    "rng": ("numpy", "native"),
    "engine": ("auto", "eager", "fused"),
    "preset": ("d2l", "gluonbook"),
    "on_divergence": ("raise", "record"),
}
