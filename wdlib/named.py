"""A model or penalty of your own, named in a Config: its registration and its fingerprint.

A Config names a user's model or penalty (``model="skipnet"``), and a store finds a run by its
Config. So the Config also carries the object's fingerprint (``model_fingerprint``,
``penalty_fingerprint``, set by wdlib): a digest of its class's code and of its pickled settings.
A stored run is then found again only for an object of the same class and settings, in this process
or a later one. Registering another object under a taken name replaces the first (a notebook cell
edited and run again); a Config made for the first no longer describes what would run, and running
it is refused (:func:`check_current`).

What the fingerprint cannot see: code outside the class (a helper function its ``apply`` calls).
Change such code under a new name, or give the class a ``version`` attribute and change it.
"""

from __future__ import annotations

import hashlib
import inspect
import pickle
import types
import uuid
import weakref
from collections.abc import Collection
from typing import Any

#: Config fields holding the fingerprints, by the field naming the object.
FINGERPRINT_FIELDS = {"model": "model_fingerprint", "penalty": "penalty_fingerprint"}

_unpicklable: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def register_named(field: str, obj: Any, name: str, registry: dict[str, Any],
                   builtin: Collection[str]) -> str:
    """``registry[name] = obj`` for a user's penalty or model (``field``), refusing a built-in name.
    Another object already under ``name`` is replaced: Configs tell them apart by fingerprint."""
    from .errors import ConfigError

    if isinstance(obj, type):
        raise ConfigError(field, obj.__name__, f"an instance of the class: {field}={obj.__name__}(...)")
    if name in builtin and registry.get(name) is not obj:
        raise ConfigError(field, name, f"a name not built in ({', '.join(sorted(builtin))} are)")
    registry[name] = obj
    return name


def fingerprint(obj: Any) -> str:
    """sha256 hex of ``obj``'s class (its name and what it defines) and its pickled settings.

    An object whose settings do not pickle (a lambda among them) gets a token of its own, the same
    for as long as it lives, so its runs are found again in this process only.
    """
    cls = type(obj)
    digest = hashlib.sha256(f"{cls.__qualname__}\n".encode())
    digest.update(_class_digest(cls))
    try:  # its state, not the object: that would name the class's module (__main__ / __mp_main__)
        digest.update(pickle.dumps(_state(obj), protocol=4))  # a fixed protocol: the same bytes later
    except Exception:
        try:
            token = _unpicklable.setdefault(obj, uuid.uuid4().hex)
        except TypeError:  # not weakly referenceable either: its identity, for this process
            token = f"id-{id(obj)}"
        digest.update(f"unpicklable:{token}".encode())
    return digest.hexdigest()


def _state(obj: Any) -> Any:
    """What pickle would save of ``obj`` besides its class: its ``__getstate__()`` (Python 3.11+), its
    attributes, or (an object without either) the object itself."""
    getstate = getattr(obj, "__getstate__", None)
    if getstate is not None:
        return getstate()
    return vars(obj) if hasattr(obj, "__dict__") else obj


def _class_digest(cls: type) -> bytes:
    """What ``cls`` and its bases define: the compiled code of their methods and the pickled values of
    their other attributes. Not their source, file or line numbers: a class defined in a notebook cell
    (which has no source file), rerun in a new kernel, or imported by a worker as ``__mp_main__``, is
    the same class. The code is Python's compiled form, so a new Python version makes new keys."""
    parts = []
    for klass in cls.__mro__[:-1]:  # without object
        for name, value in sorted(vars(klass).items()):
            if name not in _CLASS_BOOKKEEPING:
                parts.append(name.encode() + b"=" + _attribute_bytes(value))
    return hashlib.sha256(b"\0".join(parts)).digest()  # not cached: a class attribute may change


#: Entries of a class's namespace that Python fills in, not the user.
_CLASS_BOOKKEEPING = frozenset({"__module__", "__qualname__", "__dict__", "__weakref__", "__doc__",
                                "__annotations__", "__firstlineno__", "__static_attributes__",
                                "__dataclass_fields__", "__dataclass_params__", "__match_args__",
                                "__slotnames__"})  # set by copyreg once an instance is pickled


def _attribute_bytes(value: Any) -> bytes:
    """A class attribute as bytes: a function (or property, static or class method) by its code,
    anything else pickled (by its repr when it does not pickle)."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif isinstance(value, property):
        value = value.fget
    if inspect.isfunction(value):
        return _code_bytes(value.__code__)
    try:
        return pickle.dumps(value, protocol=4)
    except Exception:
        return repr(type(value)).encode()


def _code_bytes(code: types.CodeType) -> bytes:
    """A code object's instructions, names and constants (nested code included), without its file
    name and line numbers."""
    parts = [code.co_code, repr((code.co_names, code.co_varnames, code.co_freevars)).encode()]
    parts += [_code_bytes(c) if isinstance(c, types.CodeType) else repr(c).encode() for c in code.co_consts]
    return b"\1".join(parts)


def registered_fingerprint(field: str, name: str) -> str:
    """The fingerprint of the object registered as ``name`` (a model's or penalty's), "" for a
    built-in one."""
    from .model import BUILTIN_MODELS, USER_MODELS
    from .penalty import BUILTIN_PENALTIES, PENALTIES

    builtin, registry = (BUILTIN_MODELS, USER_MODELS) if field == "model" else (BUILTIN_PENALTIES, PENALTIES)
    return "" if name in builtin or name not in registry else fingerprint(registry[name])


def check_current(config: Any) -> None:
    """Refuse a Config whose model or penalty has since been replaced (or changed in place) under
    its name: running it would run another object than the one its store key describes."""
    if not (config.model_fingerprint or config.penalty_fingerprint):
        return  # built-in ones
    from .errors import ConfigError

    for field, key in FINGERPRINT_FIELDS.items():
        expected = getattr(config, key)
        if expected and registered_fingerprint(field, getattr(config, field)) != expected:
            raise ConfigError(field, getattr(config, field), f"the {field} this Config was made for "
                              f"({key}={expected[:12]}...); the {field} registered under that name now "
                              "has other settings", f"make the Config again with {field}=<the object>")


def check_one_per_name(configs: Any) -> None:
    """One object per name among ``configs`` (a sweep's grid): a Config finds its model or penalty by
    name, so objects with other settings swept under one name cannot all run."""
    from .errors import ConfigError

    for field, key in FINGERPRINT_FIELDS.items():
        seen: dict[str, str] = {}
        for config in configs:
            name, print_ = getattr(config, field), getattr(config, key)
            if seen.setdefault(name, print_) != print_:
                raise ConfigError(field, name, f"one {field} object per name in a sweep: the {field}s "
                                  f"swept share the name {name!r} but not their settings",
                                  "give each its own name (e.g. a `name` made from its settings)")
