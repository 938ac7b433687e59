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
from .model import MODELS
from .optim import DECAYS, OPTIMIZER_ARGS

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
    #: "linear" (the chapter's X w + b) or "mlp" (ReLU layers of widths ``hidden``, d2l's MLP).
    model: str = "linear"
    hidden: tuple[int, ...] = ()
    #: The core optimizer (wdlib.optim): "sgd" (the books' step), "momentum" or "adam", with
    #: ``optimizer_args`` overriding its defaults (wdlib.optim.OPTIMIZER_ARGS), as sorted (name, value).
    optimizer: str = "sgd"
    optimizer_args: tuple[tuple[str, Any], ...] = ()
    #: In mode="scratch", how the optimizer's weight decay ``wd`` acts (the loss penalty is ``lambd``):
    #: "coupled" (added to the gradient), "decoupled" (p -= lr wd p, AdamW) or "independent" (p -= wd p).
    decay: str = "coupled"
    #: Parameters the penalty and decay act on; () = every weight matrix (and biases if decay_bias).
    penalize: tuple[str, ...] = ()
    #: Mixing of penalty="elastic_net": l1_ratio * ||w||_1 + (1 - l1_ratio) * ||w||^2 / 2.
    l1_ratio: float = 0.5
    #: "synthetic" (the chapter's data, drawn from ``seed``), "diabetes" (bundled, wdlib[datasets]) or
    #: "arrays" (the user's own, via ``data=``); n_train, n_test and num_inputs then follow the data.
    dataset: str = "synthetic"
    #: sha256 of the arrays behind a non-synthetic dataset (part of the store key), set by wdlib.
    data_fingerprint: str = ""
    #: Share of the examples held out as the test set when the data come without one.
    test_fraction: float = 0.25

    def replace(self, **changes: Any) -> Config:
        """A validated copy with some fields changed."""
        return make_config(**{**dataclasses.asdict(self), **changes})


#: The two books' settings. gluonbook's code uses noise 0.01 (its text says 0.1) and 10 epochs of batch 1.
PRESETS: dict[str, dict[str, Any]] = {
    "d2l": {},
    "gluonbook": {"batch_size": 1, "num_epochs": 10},
}

DTYPES = ("float32", "float64")
MODES = ("scratch", "concise")
RNGS = ("numpy", "native")
ENGINES = ("auto", "eager", "fused")
ON_DIVERGENCE = ("raise", "record")
DATASETS = ("synthetic", "diabetes", "arrays")


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
        value = float(value) + 0.0  # -0.0 is 0.0: one run, one key
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


def _penalty(name: str, value: Any) -> str:
    """A penalty name, or a penalty object (registered under its name: a Config stores names)."""
    from .model import PENALTIES, register_penalty

    if not isinstance(value, str):
        return register_penalty(value)
    return _choice(*PENALTIES)(name, value)


def _widths(name: str, value: Any) -> tuple[int, ...]:
    items = (value,) if _is_number(value, numbers.Integral) else value
    if isinstance(items, str) or not isinstance(items, (tuple, list)) or not all(
        _is_number(v, numbers.Integral) and v >= 1 for v in items
    ):
        raise ConfigError(name, value, "hidden layer widths: an integer >= 1 or a tuple of them",
                          "e.g. hidden=(64,) or hidden=(128, 64)")
    return tuple(int(v) for v in items)


def _names(name: str, value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (tuple, list)) or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(name, value, "parameter names: a str or a tuple of str",
                          "e.g. ('w',) or ('W1', 'W2')")
    return tuple(sorted(set(items)))


def _pairs(name: str, value: Any) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments (a dict or (name, value) pairs) as sorted pairs: hashable, JSON-able."""
    try:
        items = dict(value.items() if isinstance(value, dict) else value)
    except (TypeError, ValueError):
        raise ConfigError(name, value, "a dict of keyword arguments, e.g. {'beta': 0.9}") from None
    for key, item in items.items():
        ok = isinstance(item, bool) or (_is_number(item, numbers.Real) and math.isfinite(item))
        if not isinstance(key, str) or not ok:
            raise ConfigError(f"{name}[{key!r}]", item, "a finite number or True/False")
    return tuple(sorted((k, v if isinstance(v, bool) else float(v)) for k, v in items.items()))


def _unit(*, open_ends: bool) -> Callable[[str, Any], float]:
    what = "a number strictly between 0 and 1" if open_ends else "a number from 0 to 1"

    def check(name: str, value: Any) -> float:
        if not _is_number(value, numbers.Real):
            raise ConfigError(name, value, what)
        value = float(value)
        inside = 0 < value < 1 if open_ends else 0 <= value <= 1
        if not inside:
            raise ConfigError(name, value, what)
        return value

    return check


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, value, "a str")
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
    "penalty": _penalty,
    "decay_bias": _flag,
    "dtype": _choice(*DTYPES),
    "seed": _integer(0, MAX_SEED),
    "mode": _choice(*MODES),
    "wd": _real(),
    "rng": _choice(*RNGS),
    "engine": _choice(*ENGINES),
    "on_divergence": _choice(*ON_DIVERGENCE),
    "model": _choice(*MODELS),
    "hidden": _widths,
    "optimizer": _choice(*OPTIMIZER_ARGS),
    "optimizer_args": _pairs,
    "decay": _choice(*DECAYS),
    "penalize": _names,
    "l1_ratio": _unit(open_ends=False),
    "dataset": _choice(*DATASETS),
    "data_fingerprint": _text,
    "test_fraction": _unit(open_ends=True),
}


#: Names users reach for, and the field that means it.
ALIASES = {"weight_decay": "wd", "lambda_": "lambd", "lam": "lambd", "epochs": "num_epochs",
           "learning_rate": "lr", "lambdas": "lambd", "hidden_sizes": "hidden"}


def make_config(preset: str = "d2l", **overrides: Any) -> Config:
    """The preset's settings with ``overrides`` applied, every field validated."""
    FIELD_CHECKS["preset"]("preset", preset)
    unknown = sorted(set(overrides) - set(FIELD_CHECKS))
    if unknown:
        close = [ALIASES[unknown[0]]] if unknown[0] in ALIASES else difflib.get_close_matches(
            unknown[0], FIELD_CHECKS, n=1)
        raise ConfigError(
            unknown[0], overrides[unknown[0]], "a field of wdlib.Config: " + ", ".join(FIELD_CHECKS),
            f"did you mean {close[0]!r}?" if close else "",
        )
    values = {**dataclasses.asdict(Config()), **PRESETS[preset], **overrides, "preset": preset}
    checked = {name: FIELD_CHECKS[name](name, value) for name, value in values.items()}
    if checked["dataset"] == "diabetes":
        _derive(checked, overrides, _bundled_fields(checked))
    if checked["model"] == "mlp" and not checked["hidden"]:
        checked["hidden"] = (256,)  # d2l's num_hiddens
    if checked["batch_size"] > checked["n_train"]:
        raise ConfigError(
            "batch_size", checked["batch_size"], f"an integer from 1 to n_train={checked['n_train']}"
        )
    _check_combination(checked)
    return Config(**checked)


def _derive(checked: dict[str, Any], given: dict[str, Any], derived: dict[str, Any]) -> None:
    """Set the fields that follow from the data; a value the user gave must agree (one source of truth)."""
    for name, value in derived.items():
        if name in given and checked[name] != value:
            raise ConfigError(name, given[name], f"{value!r}, as the data have (or leave it out): it "
                              f"follows from dataset={checked['dataset']!r}")
        checked[name] = value


def _bundled_fields(c: dict[str, Any]) -> dict[str, Any]:
    from .datasets import dataset_shape

    n, p, fingerprint = dataset_shape(c["dataset"])
    n_test = split_sizes(n, c["test_fraction"])[1]
    return {"n_train": n - n_test, "n_test": n_test, "num_inputs": p, "data_fingerprint": fingerprint}


def split_sizes(n: int, test_fraction: float) -> tuple[int, int]:
    """(n_train, n_test) of a seeded split of ``n`` examples: at least one on each side."""
    if n < 2:
        raise ConfigError("data", f"{n} example(s)", "at least 2 examples when no test set is given",
                          "pass test=(X_test, y_test)")
    n_test = min(n - 1, max(1, round(test_fraction * n)))
    return n - n_test, n_test


def parameter_names(c: Config | dict[str, Any]) -> list[str]:
    """The names of the model's parameters (without drawing them)."""
    get = c.get if isinstance(c, dict) else lambda k: getattr(c, k)
    if get("model") == "linear":
        return ["w", "b"]
    return [f"{kind}{i}" for i in range(1, len(get("hidden")) + 2) for kind in "Wb"]


def _check_combination(c: dict[str, Any]) -> None:
    """Options that are each valid but do not go together."""
    defaults = Config()

    def refuse_unless(name: str, condition: bool, accepted: str, hint: str = "") -> None:
        if not condition:
            raise ConfigError(name, c[name], accepted, hint)

    if c["rng"] == "native":
        refuse_unless("dtype", c["dtype"] == "float32", "'float32' with rng='native' (the books ran float32)")
        for name in ("model", "optimizer", "dataset"):
            refuse_unless(name, c[name] == getattr(defaults, name),
                          f"{getattr(defaults, name)!r} with rng='native' (the books' own recipe)")
    if c["model"] == "linear":
        refuse_unless("hidden", not c["hidden"], "() with model='linear'", "use model='mlp'")
    args = dict(c["optimizer_args"])
    accepted = OPTIMIZER_ARGS[c["optimizer"]]
    for key, value in args.items():
        if key not in accepted:
            raise ConfigError("optimizer_args", key, f"arguments of optimizer={c['optimizer']!r}: "
                              + (", ".join(accepted) or "none"))
        if isinstance(accepted[key], bool) != isinstance(value, bool):
            raise ConfigError(f"optimizer_args[{key!r}]", value, f"a {type(accepted[key]).__name__}")
        low_ok = value > 0 if key == "eps" else 0 <= value
        if not isinstance(value, bool) and not (low_ok and (key == "eps" or value < 1 or key == "dampening")):
            raise ConfigError(f"optimizer_args[{key!r}]", value,
                              "a number > 0" if key == "eps" else "a number from 0 to 1 (1 excluded)")
    refuse_unless("decay", c["decay"] == "coupled" or c["wd"] != 0, "'coupled' (the default) when wd=0",
                  "set wd=... for the optimizer's weight decay")
    refuse_unless("l1_ratio", c["penalty"] == "elastic_net" or c["l1_ratio"] == defaults.l1_ratio,
                  f"{defaults.l1_ratio} unless penalty='elastic_net'")
    if c["penalize"]:
        names = parameter_names(c)
        unknown = [k for k in c["penalize"] if k not in names]
        refuse_unless("penalize", not unknown, f"names of the model's parameters: {', '.join(names)}")
        refuse_unless("decay_bias", not c["decay_bias"], "False with penalize=... (name the biases there)")
    if c["dataset"] != "synthetic":
        for name in ("true_w", "true_b", "noise"):
            refuse_unless(name, c[name] == getattr(defaults, name),
                          f"{getattr(defaults, name)} (it describes the synthetic data only)")
        refuse_unless("data_fingerprint", bool(c["data_fingerprint"]), "set by wdlib",
                      "pass your arrays as wdlib.train(..., data=(X, y))")
    else:
        refuse_unless("data_fingerprint", not c["data_fingerprint"], "'' with dataset='synthetic'")
    if c["mode"] == "concise":
        refuse_unless("lambd", c["lambd"] == 0, "0 with mode='concise'", "use wd=... for weight decay")
        refuse_unless("penalty", c["penalty"] == "l2", "'l2' with mode='concise' (optimizer weight decay)")
        # Each framework's own optimizers (wdlib.semantics.SPELLINGS); another backend's: SGD only.
        from .semantics import SPELLINGS, check_concise

        if c["backend"] in {s.backend for s in SPELLINGS}:
            check_concise(c)
        else:
            for name in ("model", "optimizer", "decay"):
                refuse_unless(name, c[name] == getattr(defaults, name),
                              f"{getattr(defaults, name)!r} with mode='concise' on backend {c['backend']!r}",
                              "use mode='scratch'")
