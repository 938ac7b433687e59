"""A model or penalty of your own, named in a Config: its registration and its fingerprint.

A Config names a user's model or penalty (``model="skipnet"``), and a store finds a run by its
Config. So the Config also carries the object's fingerprint (``model_fingerprint``,
``penalty_fingerprint``, set by wdlib): a digest of its class's source and of its pickled settings.
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
import marshal
import pickle
import uuid
import weakref
from collections.abc import Collection
from typing import Any

#: Config fields holding the fingerprints, by the field naming the object.
FINGERPRINT_FIELDS = {"model": "model_fingerprint", "penalty": "penalty_fingerprint"}

_class_digests: weakref.WeakKeyDictionary[type, bytes] = weakref.WeakKeyDictionary()
_unpicklable: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def register_named(field: str, obj: Any, name: str, registry: dict[str, Any],
                   builtin: Collection[str]) -> str:
    """``registry[name] = obj`` for a user's penalty or model (``field``), refusing a built-in name.
    Another object already under ``name`` is replaced: Configs tell them apart by fingerprint."""
    from .errors import ConfigError

    if name in builtin and registry.get(name) is not obj:
        raise ConfigError(field, name, f"a name not built in ({', '.join(sorted(builtin))} are)")
    registry[name] = obj
    return name


def fingerprint(obj: Any) -> str:
    """sha256 hex of ``obj``'s class (its qualified name and source) and its pickled settings.

    An object whose class pickle cannot find again counts by its attributes (``vars``); one whose
    settings do not pickle (a lambda among them) gets a token of its own, the same for as long as it
    lives, so its runs are found again in this process only.
    """
    cls = type(obj)
    digest = hashlib.sha256(f"{cls.__module__}.{cls.__qualname__}\n".encode())
    digest.update(_class_digest(cls))
    try:
        digest.update(pickle.dumps(obj, protocol=4))  # a fixed protocol: the same bytes in later Pythons
    except Exception:
        try:  # a class pickle cannot find again (made by exec): its settings alone
            digest.update(pickle.dumps(vars(obj), protocol=4))
            return digest.hexdigest()
        except Exception:
            pass
        try:
            token = _unpicklable.setdefault(obj, uuid.uuid4().hex)
        except TypeError:  # not weakly referenceable either: its identity, for this process
            token = f"id-{id(obj)}"
        digest.update(f"unpicklable:{token}".encode())
    return digest.hexdigest()


def _class_digest(cls: type) -> bytes:
    """The source of ``cls`` and its bases, or, where Python keeps no source (a class made by
    ``exec``), the compiled code of their methods."""
    found = _class_digests.get(cls)
    if found is None:
        parts = []
        for klass in cls.__mro__:
            if klass is object:
                continue
            try:
                parts.append(inspect.getsource(klass).encode())
            except (OSError, TypeError):
                parts.extend(marshal.dumps(f.__code__) for _, f in sorted(vars(klass).items())
                             if inspect.isfunction(f))
        found = hashlib.sha256(b"\0".join(parts)).digest()
        _class_digests[cls] = found
    return found


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
