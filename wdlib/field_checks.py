"""Validators of single Config fields: each takes (name, value) and returns the value normalized, or
raises a ConfigError that names the field and the values it accepts."""

from __future__ import annotations

import difflib
import math
import numbers
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ConfigError


def is_number(value: Any, kind: type) -> bool:
    """``value`` is a ``kind`` (Python or NumPy scalar), and not a bool, which is an int to Python."""
    return isinstance(value, kind) and not isinstance(value, (bool, np.bool_))


def integer(lo: int, hi: int | None = None) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        span = f">= {lo}" if hi is None else f"from {lo} to {hi}"
        if not is_number(value, numbers.Integral) or value < lo or (hi is not None and value > hi):
            raise ConfigError(name, value, f"an integer {span}")
        return int(value)

    return check


def real(*, positive: bool = False) -> Callable[[str, Any], float]:
    def check(name: str, value: Any) -> float:
        what = "a finite number > 0" if positive else "a finite number >= 0"
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]  # a 0-d array is its number
        if not is_number(value, numbers.Real):
            several = name in ("lambd", "wd") and isinstance(value, (list, tuple, range, np.ndarray))
            raise ConfigError(name, value, what, "one run takes one value: wdlib.train_lambdas, "
                              "wdlib.compare and wdlib.sweep take several" if several else "")
        value = float(value) + 0.0  # -0.0 is 0.0: one run, one key
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise ConfigError(name, value, what)
        if 0 < value < sys.float_info.min:
            raise ConfigError(name, value, f"0 or a number >= {sys.float_info.min:.3g}",
                              "a subnormal number is refused: MXNet's operators cannot take it")
        return value

    return check


def finite(name: str, value: Any) -> float:
    if not is_number(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(name, value, "a finite number")
    return float(value)


def choice(*options: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in options:
            close = [str(value).lower()] if str(value).lower() in options else difflib.get_close_matches(
                str(value), options, n=1)
            raise ConfigError(
                name, value, "one of " + ", ".join(map(repr, options)),
                f"did you mean {close[0]!r}?" if close else "",
            )
        return value

    return check


def dtype_name(*options: str) -> Callable[[str, Any], str]:
    """One of ``options`` ("float32", "float64"), also given as a NumPy dtype or type (np.float64)."""
    named = choice(*options)

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            try:
                value = np.dtype(value).name
            except TypeError:
                pass
        return named(name, value)

    return check


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(name, value, "True or False")
    return value


def backend_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(name, value, "a backend name such as 'numpy' (see wdlib.backends())")
    return value


def penalty(name: str, value: Any) -> str:
    """A penalty name, or a penalty object (registered under its name: a Config stores names)."""
    from .penalty import PENALTIES, register_penalty

    if not isinstance(value, str):
        return register_penalty(value)
    return choice(*PENALTIES)(name, value)


def model(name: str, value: Any) -> str:
    """A model name, or a model object (registered under its name: a Config stores names)."""
    from .model import MLP, Linear, model_names, register_model

    if type(value) in (Linear, MLP):  # a Config names a built-in model (a subclass is a model of your own)
        spelled = "model='linear'" if isinstance(value, Linear) else f"model='mlp', hidden={value.hidden}"
        raise ConfigError(name, value, "a built-in model by name, or an object of your own", f"use {spelled}")
    if not isinstance(value, str):
        return register_model(value)
    return choice(*model_names())(name, value)


def widths(name: str, value: Any) -> tuple[int, ...]:
    items = (value,) if is_number(value, numbers.Integral) else value
    if isinstance(items, str) or not isinstance(items, (tuple, list)) or not all(
        is_number(v, numbers.Integral) and v >= 1 for v in items
    ):
        raise ConfigError(name, value, "hidden layer widths: an integer >= 1 or a tuple of them",
                          "e.g. hidden=(64,) or hidden=(128, 64)")
    return tuple(int(v) for v in items)


def names(name: str, value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (tuple, list)) or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(name, value, "parameter names: a str or a tuple of str",
                          "e.g. ('w',) or ('W1', 'W2')")
    return tuple(sorted(set(items)))


def pairs(name: str, value: Any) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments (a dict or (name, value) pairs) as sorted pairs: hashable, JSON-able."""
    try:
        items = dict(value.items() if isinstance(value, dict) else value)
    except (TypeError, ValueError):
        raise ConfigError(name, value, "a dict of keyword arguments, e.g. {'beta': 0.9}") from None
    for key, item in items.items():
        ok = isinstance(item, bool) or (is_number(item, numbers.Real) and math.isfinite(item))
        if not isinstance(key, str) or not ok:
            raise ConfigError(f"{name}[{key!r}]", item, "a finite number or True/False")
    return tuple(sorted((k, v if isinstance(v, bool) else float(v)) for k, v in items.items()))


def unit(*, open_ends: bool) -> Callable[[str, Any], float]:
    what = "a number strictly between 0 and 1" if open_ends else "a number from 0 to 1"

    def check(name: str, value: Any) -> float:
        if not is_number(value, numbers.Real):
            raise ConfigError(name, value, what)
        value = float(value)
        inside = 0 < value < 1 if open_ends else 0 <= value <= 1
        if not inside:
            raise ConfigError(name, value, what)
        return value

    return check


def text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, value, "a str")
    return value


def check_scale(c: dict[str, Any]) -> None:
    """Refuse synthetic data whose squared loss overflows the run's dtype (``noise=1e308``): the run
    would diverge at once, and the learning rate would be blamed."""
    if c["dataset"] != "synthetic":
        return
    big = float(np.finfo(c["dtype"]).max)
    n = max(c["n_train"], c["n_test"])
    # |y| stays below |b| + 10 std(X w + noise) (X ~ N(0, 1)); the loss sums n squares of it.
    parts = {"true_b": abs(c["true_b"]), "true_w": 10 * abs(c["true_w"]) * math.sqrt(c["num_inputs"]),
             "noise": 10 * c["noise"]}
    if math.fsum(parts.values()) <= math.sqrt(big / n) / 2:
        return
    name = max(parts, key=lambda k: parts[k])
    limit = math.sqrt(big / n) / 20 / (math.sqrt(c["num_inputs"]) if name == "true_w" else 1)
    raise ConfigError(name, c[name], f"a value whose data fit in {c['dtype']} (|{name}| below about "
                      f"{limit:.2g} here): the squared loss of the data it gives overflows",
                      "rescale the data, or use dtype='float64'" if c["dtype"] == "float32" else "")


#: The frameworks' names of core optimizer arguments (the core's name) and of Config fields.
OTHER_NAMES = {"momentum": "beta", "beta1": "b1", "beta2": "b2", "epsilon": "eps",
               "lr": "the Config field lr", "learning_rate": "the Config field lr",
               "weight_decay": "the Config field wd", "wd": "the Config field wd"}


def _meant(key: str, accepted: dict[str, Any]) -> str:
    """A hint for an optimizer argument ``key`` that ``optimizer`` does not take, or ''."""
    from .optim import OPTIMIZER_ARGS

    core = OTHER_NAMES.get(key, key)
    if core.startswith("the Config field"):
        return f"did you mean {core}?"
    if core in accepted:
        return f"did you mean {core!r}?"
    takers = [name for name, args in OPTIMIZER_ARGS.items() if core in args]
    return f"{core!r} is an argument of optimizer={takers[0]!r}" if takers else ""


def check_optimizer_args(optimizer: str, args: dict[str, Any], accepted: dict[str, float | bool]) -> None:
    """``optimizer_args`` of ``optimizer``: known names (``accepted``, their defaults), a bool where the
    default is one, ``eps`` > 0, the decay rates (betas) in [0, 1), ``dampening`` >= 0."""
    for key, value in args.items():
        if key not in accepted:
            names = ", ".join(accepted) or "none"
            raise ConfigError("optimizer_args", {key: value},
                              f"argument names of optimizer={optimizer!r}: {names}",
                              _meant(key, accepted))
        if isinstance(accepted[key], bool) != isinstance(value, bool):
            raise ConfigError(f"optimizer_args[{key!r}]", value, f"a {type(accepted[key]).__name__}")
        low_ok = value > 0 if key == "eps" else 0 <= value
        if not isinstance(value, bool) and not (low_ok and (key == "eps" or value < 1 or key == "dampening")):
            raise ConfigError(f"optimizer_args[{key!r}]", value,
                              "a number > 0" if key == "eps" else "a number from 0 to 1 (1 excluded)")
