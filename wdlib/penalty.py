"""Penalties: the term ``lambd * penalty(p)`` that the objective adds for each penalized parameter.

A penalty is an object with a ``name`` (what a Config stores), ``__call__(ops, p)`` (its value on one
parameter array, written with operations every framework's arrays share, so autodiff differentiates
it) and ``grad(ops, p)`` (its hand-derived (sub)gradient, for the NumPy backend). The built-in ones are
L2 (weight decay under SGD), L1 and the elastic net; :func:`register_penalty` adds a user's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .model import Ops

Array = Any


class Penalty(Protocol):
    """A penalty: ``__call__(ops, p)`` its value on one parameter array, ``grad(ops, p)`` its
    (sub)gradient (needed by the NumPy backend only), ``name`` what a Config stores."""

    name: str

    def __call__(self, ops: Ops, w: Array) -> Array: ...
    def grad(self, ops: Ops, w: Array) -> Array: ...


class L2Penalty:
    """||w||_2^2 / 2: its gradient is w, so SGD shrinks w by a constant factor (weight decay)."""

    name = "l2"

    def __call__(self, ops: Ops, w: Array) -> Array:
        return (w**2).sum() / 2

    def grad(self, ops: Ops, w: Array) -> Array:
        return w


class L1Penalty:
    """||w||_1: its (sub)gradient is sign(w), pulling every weight toward 0 by the same amount."""

    name = "l1"

    def __call__(self, ops: Ops, w: Array) -> Array:
        # |w| written as w * sign(w): autodiff then gives sign(w), 0 at w = 0, in every framework
        # (d|w|/dw at 0 is 1 in JAX but 0 elsewhere, and the bias starts at exactly 0).
        return (w * ops.sign(w)).sum()

    def grad(self, ops: Ops, w: Array) -> Array:
        return ops.sign(w)


@dataclass(frozen=True)
class ElasticNet:
    """``l1_ratio * ||w||_1 + (1 - l1_ratio) * ||w||_2^2 / 2`` (scikit-learn's mixing)."""

    l1_ratio: float = 0.5
    name = "elastic_net"

    def __call__(self, ops: Ops, w: Array) -> Array:
        return self.l1_ratio * (w * ops.sign(w)).sum() + (1 - self.l1_ratio) * ((w**2).sum() / 2)

    def grad(self, ops: Ops, w: Array) -> Array:
        return self.l1_ratio * ops.sign(w) + (1 - self.l1_ratio) * w


l2_penalty = L2Penalty()
l1_penalty = L1Penalty()
#: Penalties by name. ``elastic_net`` is made with the run's ``l1_ratio``; a user's own penalty
#: (an object with ``name``, ``__call__`` and, for NumPy, ``grad``) is added by :func:`register_penalty`.
PENALTIES: dict[str, Penalty] = {"l2": l2_penalty, "l1": l1_penalty, "elastic_net": ElasticNet()}
BUILTIN_PENALTIES = frozenset(PENALTIES)


def register_penalty(penalty: Penalty) -> str:
    """Make ``penalty`` usable as ``penalty=penalty.name``; returns the name. Another object under a
    name already taken replaces it; a Config tells them apart by fingerprint (:mod:`wdlib.named`)."""
    from .errors import ConfigError
    from .named import register_named

    name = getattr(penalty, "name", None)
    if not isinstance(name, str) or not name or not callable(penalty):
        raise ConfigError("penalty", penalty, "a penalty name (" + ", ".join(map(repr, PENALTIES))
                          + ") or an object with a str `name` that is called as penalty(ops, w)")
    return register_named("penalty", penalty, name, PENALTIES, BUILTIN_PENALTIES)


def make_penalty(name: str, l1_ratio: float = 0.5) -> Penalty:
    """The penalty of ``Config.penalty`` / ``Config.l1_ratio``."""
    return ElasticNet(l1_ratio) if name == "elastic_net" else PENALTIES[name]
