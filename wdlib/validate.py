"""Argument checks shared by compare, sweep and the CLI: all run before any framework is imported."""

from __future__ import annotations

import difflib
import numbers
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .backend import backends as backend_infos
from .errors import BackendNotInstalledError, ConfigError, UnknownBackendError


def as_list(value: Any) -> list[Any]:
    """``value`` as a list: a str or a number is one item, any other iterable its items."""
    if isinstance(value, (str, bytes, numbers.Number)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def lambda_list(value: Any, name: str = "lambdas") -> list[float]:
    """A non-empty list of finite numbers >= 0 (NumPy scalars and arrays accepted)."""
    items = as_list(value)
    example = "e.g. numpy.linspace(0, 10, 41), or on the command line --lambd 0:10:41"
    if not items:
        raise ConfigError(name, items, "a non-empty list of numbers >= 0", example)
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise ConfigError(name, item, "numbers >= 0", example)
        item = float(item)
        if not (item >= 0 and item != float("inf")):  # also catches NaN
            raise ConfigError(name, item, "finite numbers >= 0", example)
        out.append(item)
    return out


def seed_list(value: Any, name: str = "seeds") -> list[int]:
    """A non-empty list of integer seeds (range(10) and NumPy integers accepted)."""
    items = as_list(value)
    example = "e.g. seeds=range(10), or on the command line --seeds 0-9"
    if not items:
        raise ConfigError(name, items, "a non-empty list of integers >= 0", example)
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < 0:
            raise ConfigError(name, item, "integers >= 0", example)
        out.append(int(item))
    return out


def check_backends(names: Any, name: str = "backends") -> list[str]:
    """The requested backend names, each known and installed (default: every installed one).

    Reads only package metadata: imports no framework.
    """
    infos = {info.name: info for info in backend_infos()}
    installed = [n for n, info in infos.items() if info.installed]
    if names is None:
        return installed
    items = as_list(names)
    if not items:
        raise ConfigError(name, items, "a non-empty list of backend names",
                          f"installed: {', '.join(installed)}; or pass None for all of them")
    for item in items:
        if not isinstance(item, str) or item not in infos:
            close = difflib.get_close_matches(str(item), list(infos), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownBackendError(
                f"backend={item!r} is not a known backend: installed ones are {', '.join(installed)}{hint}"
            )
        if not infos[item].installed:
            raise BackendNotInstalledError(
                f"backend {item!r} is not installed here; install it with: {infos[item].install}"
            )
    return list(dict.fromkeys(items))


def check_output(path: str | os.PathLike[str] | None, what: str, suffixes: Sequence[str] = ()) -> Path | None:
    """An output file path whose folder exists (checked before the work, not after)."""
    if path is None:
        return None
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(what, str(path), "a file name ending in " + " or ".join(suffixes))
    if not path.parent.is_dir():
        raise ConfigError(what, str(path), "a path in an existing folder",
                          f"create the folder first: mkdir -p {path.parent}")
    if path.is_dir():
        raise ConfigError(what, str(path), "a file path, not a folder")
    return path
