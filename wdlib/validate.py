"""Argument checks shared by compare, sweep and the CLI: all run before any framework is imported."""

from __future__ import annotations

import difflib
import numbers
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .backend import backends as backend_infos
from .config import FIELD_CHECKS
from .errors import BackendNotInstalledError, ConfigError, UnknownBackendError


def as_list(value: Any) -> list[Any]:
    """``value`` as a list: a str or a number is one item, any other iterable its items."""
    if isinstance(value, (str, bytes, numbers.Number)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _each(value: Any, name: str, check: Callable[[str, Any], Any], what: str, example: str) -> list[Any]:
    """A non-empty list whose every item passes ``check``, the Config field's own validator."""
    items = as_list(value)
    if not items:
        raise ConfigError(name, items, f"a non-empty list of {what}", example)
    out = []
    for item in items:
        try:
            out.append(check(name, item))
        except ConfigError as err:
            raise ConfigError(name, err.got, err.accepted, example) from None
    return out


def lambda_list(value: Any, name: str = "lambdas") -> list[float]:
    """A non-empty list of finite numbers >= 0 (NumPy scalars and arrays accepted)."""
    return _each(value, name, FIELD_CHECKS["lambd"], "numbers >= 0",
                 "e.g. numpy.linspace(0, 10, 41), or on the command line --lambd 0:10:41")


def seed_list(value: Any, name: str = "seeds") -> list[int]:
    """A non-empty list of seeds Config accepts (range(10) and NumPy integers accepted)."""
    return _each(value, name, FIELD_CHECKS["seed"], "integers >= 0",
                 "e.g. seeds=range(10), or on the command line --seeds 0-9")


def check_backends(names: Any, name: str = "backends") -> list[str]:
    """The requested backend names, each known and installed (default: every installed one).

    Reads only package metadata: imports no framework. Names that are installed are checked one by
    one (the other plugins are not loaded); the whole listing is read only for an error's message.
    """
    if names is not None and as_list(names) and all(_is_installed(n) for n in as_list(names)):
        return list(dict.fromkeys(as_list(names)))
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


def _is_installed(name: Any) -> bool:
    """Whether ``name`` is a backend whose framework is installed (False for anything else)."""
    from .backend import _installed, backend_class
    from .errors import WdlibError

    if not isinstance(name, str):
        return False
    try:
        return _installed(backend_class(name)) is not None
    except WdlibError:
        return False


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
