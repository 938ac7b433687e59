"""The registry that finds backends.

A backend is a small class (:class:`wdlib.backend.Backend`) registered under the ``wdlib.backends``
entry-point group by the distribution that ships it, or at run time with :func:`register_backend`.
Loading the entry point imports only the plugin module; the framework itself is imported by
``Backend.load`` the first time the backend is used (:func:`get_backend`).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backend import Backend, _framework_version
from .errors import BackendLoadError, BackendNotInstalledError, ConfigError, UnknownBackendError

ENTRY_POINT_GROUP = "wdlib.backends"


def _plugin_install(name: str, prefix: str = "", note: str = "") -> str:
    """How to install a first-party plugin from wherever the user is: the checkout's folder as an
    absolute path when wdlib runs from a checkout, else the plugin's distribution name."""
    folder = Path(__file__).resolve().parent.parent / "backends" / name
    target = f"-e {folder}" if (folder / "pyproject.toml").is_file() else f"wdlib-{name}"
    return f"pip install {prefix}{target}{note}"


#: First-party plugins, listed so that wdlib.backends() can say how to install one that is missing.
KNOWN_PLUGINS = {
    "numpy": _plugin_install("numpy"),
    "torch": _plugin_install("torch", "torch==2.13.0 "),
    "mxnet": _plugin_install("mxnet", note="  # mxnet 1.9.1 needs numpy<2"),
    "jax": _plugin_install("jax"),
}


@dataclass(frozen=True)
class BackendInfo:
    """What :func:`backends` reports about one backend."""

    name: str
    installed: bool
    version: str | None
    install: str

    def __str__(self) -> str:
        state = f"installed, {self.version}" if self.installed else f"not installed: {self.install}"
        return f"{self.name:<8} {state}"


_registered: dict[str, type[Backend]] = {}
_loaded: dict[str, Backend] = {}
_lock = threading.Lock()


def register_backend(cls: type[Backend], *, replace: bool = False) -> type[Backend]:
    """Register a backend class at run time (plugins normally use the entry point instead). Also
    forgets the entry points read so far, so a plugin installed since is found on the next lookup.

    A name already taken (a registered class, an installed plugin, a first-party backend such as
    "numpy", compare's reference) is refused unless ``replace=True``."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError("cls", cls, "a subclass of wdlib.Backend")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{cls.__name__}.name", name, "a non-empty str naming the backend")
    if not isinstance(replace, bool):
        raise ConfigError("replace", replace, "True or False")
    taken = name in _registered or name in KNOWN_PLUGINS or name in _entry_points()
    if taken and not replace and _registered.get(name) is not cls:
        raise ConfigError(f"{cls.__name__}.name", name, "a name no other backend has",
                          "choose another name, or pass replace=True to replace that backend")
    _registered[cls.name] = cls
    _loaded.pop(cls.name, None)
    _forget_entry_points()
    return cls


@functools.cache
def _entry_points() -> dict[str, Any]:
    """The ``wdlib.backends`` entry points, read once per process: importlib.metadata reads every
    installed distribution's metadata on each call, which cost more than a whole fused run of the
    chapter (see benchmarks/results.md). :func:`register_backend` and :func:`temporary_backend`
    forget them."""
    from importlib import metadata

    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


#: Classes loaded from entry points, by name (kept with the entry points they came from).
_plugin_classes: dict[str, type[Backend]] = {}


def _forget_entry_points() -> None:
    _entry_points.cache_clear()
    _plugin_classes.clear()


def backend_class(name: str) -> type[Backend]:
    """The class of backend ``name``, without importing its framework."""
    if not isinstance(name, str):
        raise ConfigError("backend", name, "a backend name such as 'numpy' (see wdlib.backends())")
    if name in _registered:
        return _registered[name]
    if name in _plugin_classes:
        return _plugin_classes[name]
    found = _entry_points()
    if name in found:
        try:
            cls = found[name].load()
        except Exception as err:  # an ImportError, but also whatever the plugin's module raises
            raise BackendLoadError(f"backend {name!r}: its plugin failed to load "
                                   f"({type(err).__name__}: {err})") from err
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise BackendLoadError(f"backend {name!r}: its entry point gives {cls!r}, not a wdlib.Backend")
        _plugin_classes[name] = cls
        return cls
    if name in KNOWN_PLUGINS:
        raise BackendNotInstalledError(
            f"backend {name!r}: its plugin is not installed; install it with: {KNOWN_PLUGINS[name]}"
        )
    names = sorted({*found, *_registered})
    close = difflib.get_close_matches(name, [*names, *KNOWN_PLUGINS], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownBackendError(
        f"backend={name!r} is not a known backend: installed ones are {', '.join(names)}{hint}"
    )


def _installed(cls: type[Backend]) -> str | None:
    from importlib.metadata import PackageNotFoundError

    try:
        return _framework_version(cls.framework)
    except PackageNotFoundError:
        return None


def get_backend(name: str) -> Backend:
    """The backend ``name``, its framework imported; a clear error if it cannot run here."""
    if not isinstance(name, str):
        raise ConfigError("backend", name, "a backend name such as 'numpy' (see wdlib.backends())")
    with _lock:
        if name in _loaded:
            return _loaded[name]
        cls = backend_class(name)
        if _installed(cls) is None:
            raise BackendNotInstalledError(
                f"backend {name!r} needs the package {cls.framework!r}, which is not installed; "
                f"install it with: {cls.install}"
            )
        backend = cls()
        try:
            backend.load()
        except Exception as err:  # ImportError, and RuntimeError, OSError, ... of a broken install
            raise BackendLoadError(
                f"backend {name!r}: {cls.framework} is installed but failed to import "
                f"({type(err).__name__}: {err}); reinstall it with: {cls.install}"
            ) from err
        _loaded[name] = backend
        return backend


def backends() -> list[BackendInfo]:
    """Every known backend (registered, plugin-installed or first-party): installed or not, version,
    and how to install it. Imports no framework."""
    names = sorted({*KNOWN_PLUGINS, *_entry_points(), *_registered})
    infos = []
    for name in names:
        try:
            cls = backend_class(name)
        except BackendNotInstalledError:
            infos.append(BackendInfo(name, False, None, KNOWN_PLUGINS[name]))
            continue
        version = _installed(cls)
        infos.append(BackendInfo(name, version is not None, version, cls.install))
    return infos


def installed_backends() -> list[str]:
    """Names of the backends whose framework is installed."""
    return [info.name for info in backends() if info.installed]


@contextlib.contextmanager
def temporary_backend(cls: type[Backend], *, replace: bool = False) -> Iterator[type[Backend]]:
    """Register ``cls`` for the duration of a ``with`` block (for tests and experiments); a name
    already taken is refused unless ``replace=True``, as by :func:`register_backend`."""
    previous = _registered.get(getattr(cls, "name", None))  # type: ignore[arg-type]
    register_backend(cls, replace=replace)
    try:
        yield cls
    finally:
        _registered.pop(cls.name, None)
        _loaded.pop(cls.name, None)
        _forget_entry_points()
        if previous is not None:
            register_backend(previous, replace=True)
