"""Experiment configuration: the book's presets, overrides, and validation.

Every field is checked here, before any framework is imported or any data is generated.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError

#: Largest seed accepted: every RNG wdlib or a book feeds it to (NumPy, torch, MXNet, Python) takes it.
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Config:
    """All inputs of one training run. Build it with :func:`make_config`, which validates."""

    preset: str = "d2l"
    backend: str = "numpy"
    n_train: int = 20
    n_test: int = 100
    num_inputs: int = 200
    true_w: float = 0.01
    true_b: float = 0.05
    noise: float = 0.01
    batch_size: int = 5
    num_epochs: int = 100
    lr: float = 0.003
    lambd: float = 0.0
    penalty: str = "l2"
    decay_bias: bool = False
    dtype: str = "float32"
    seed: int = 0
    #: "scratch": the books' from-scratch penalty; "concise": the framework's optimizer weight decay ``wd``.
    mode: str = "scratch"
    wd: float = 0.0
    #: "numpy": inputs from wdlib's seeded NumPy Generator; "native": the framework's own random
    #: streams, consumed as the book's code consumes them (only where a backend has that recipe).
    rng: str = "numpy"
    #: "eager": autodiff step by step; "fused": the backend's fast path; "auto": fused where exact.
    engine: str = "auto"
    #: On a NaN/inf loss: "raise" a DivergenceError, or "record" the run as diverged and stop.
    on_divergence: str = "raise"

    def replace(self, **changes: Any) -> Config:
        """A validated copy with some fields changed."""
        return make_config(**{**dataclasses.asdict(self), **changes})


#: The two books' settings. gluonbook's code uses noise 0.01 (its text says 0.1) and 10 epochs of batch 1.
PRESETS: dict[str, dict[str, Any]] = {
    "d2l": {},
    "gluonbook": {"batch_size": 1, "num_epochs": 10},
}

DTYPES = ("float32", "float64")
PENALTY_NAMES = ("l1", "l2")
MODES = ("scratch", "concise")
RNGS = ("numpy", "native")
ENGINES = ("auto", "eager", "fused")
ON_DIVERGENCE = ("raise", "record")


def _is_number(value: Any, kind: type) -> bool:
    """``value`` is a ``kind`` (Python or NumPy scalar), and not a bool, which is an int to Python."""
    return isinstance(value, kind) and not isinstance(value, (bool, np.bool_))


def _integer(lo: int, hi: int | None = None) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        span = f">= {lo}" if hi is None else f"from {lo} to {hi}"
        if not _is_number(value, numbers.Integral) or value < lo or (hi is not None and value > hi):
            raise ConfigError(name, value, f"an integer {span}")
        return int(value)

    return check


def _real(*, positive: bool = False) -> Callable[[str, Any], float]:
    def check(name: str, value: Any) -> float:
        what = "a finite number > 0" if positive else "a finite number >= 0"
        if not _is_number(value, numbers.Real):
            raise ConfigError(name, value, what)
        value = float(value)
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise ConfigError(name, value, what)
        return value

    return check


def _finite(name: str, value: Any) -> float:
    if not _is_number(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(name, value, "a finite number")
    return float(value)


def _choice(*options: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in options:
            close = difflib.get_close_matches(str(value), options, n=1)
            raise ConfigError(
                name, value, "one of " + ", ".join(map(repr, options)),
                f"did you mean {close[0]!r}?" if close else "",
            )
        return value

    return check


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(name, value, "True or False")
    return value


def _name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(name, value, "a backend name such as 'numpy' (see wdlib.backends())")
    return value


FIELD_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "preset": _choice(*PRESETS),
    "backend": _name,
    "n_train": _integer(1),
    "n_test": _integer(1),
    "num_inputs": _integer(1),
    "true_w": _finite,
    "true_b": _finite,
    "noise": _real(),
    "batch_size": _integer(1),
    "num_epochs": _integer(1),
    "lr": _real(positive=True),
    "lambd": _real(),
    "penalty": _choice(*PENALTY_NAMES),
    "decay_bias": _flag,
    "dtype": _choice(*DTYPES),
    "seed": _integer(0, MAX_SEED),
    "mode": _choice(*MODES),
    "wd": _real(),
    "rng": _choice(*RNGS),
    "engine": _choice(*ENGINES),
    "on_divergence": _choice(*ON_DIVERGENCE),
}


def make_config(preset: str = "d2l", **overrides: Any) -> Config:
    """The preset's settings with ``overrides`` applied, every field validated."""
    FIELD_CHECKS["preset"]("preset", preset)
    unknown = sorted(set(overrides) - set(FIELD_CHECKS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], FIELD_CHECKS, n=1)
        raise ConfigError(
            unknown[0], overrides[unknown[0]], "a field of wdlib.Config: " + ", ".join(FIELD_CHECKS),
            f"did you mean {close[0]!r}?" if close else "",
        )
    values = {**dataclasses.asdict(Config()), **PRESETS[preset], **overrides, "preset": preset}
    checked = {name: FIELD_CHECKS[name](name, value) for name, value in values.items()}
    if checked["batch_size"] > checked["n_train"]:
        raise ConfigError(
            "batch_size", checked["batch_size"], f"an integer from 1 to n_train={checked['n_train']}"
        )
    _check_combination(checked)
    return Config(**checked)


def _check_combination(c: dict[str, Any]) -> None:
    """Options that are each valid but do not go together."""
    if c["mode"] == "scratch" and c["wd"] != 0:
        raise ConfigError("wd", c["wd"], "0 with mode='scratch'", "use lambd=..., or mode='concise'")
    if c["rng"] == "native" and c["dtype"] != "float32":
        raise ConfigError("dtype", c["dtype"], "'float32' with rng='native' (the books ran float32)")
    if c["mode"] == "concise":
        if c["lambd"] != 0:
            raise ConfigError("lambd", c["lambd"], "0 with mode='concise'", "use wd=... for weight decay")
        if c["penalty"] != "l2":
            raise ConfigError("penalty", c["penalty"], "'l2' with mode='concise' (optimizer weight decay)")
