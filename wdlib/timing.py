"""Training times without first-call costs: what ``compare`` reports as ``seconds``.

A framework's first run of a configuration pays one-time costs inside the training loop: JAX compiles
its whole-run ``lax.scan``, PyTorch its TorchScript loop, MXNet allocates its engine's buffers. Those
are costs per process and per shape (a new λ or seed reuses them; a new dtype, preset or size does
not), so :func:`warm_train` trains each such configuration once untimed before the run it returns:
``run.seconds`` is then the steady-state time a second call takes. The warm-up run is identical to
the returned one (training is deterministic), so only time is spent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .training import Run

#: Configurations (less the fields that reuse compiled code) already trained in this process.
_warmed: set[tuple[Any, ...]] = set()
#: Fields that enter a run as data: changing them reuses everything the first run prepared.
DATA_FIELDS = ("lambd", "wd", "seed")


def warm_key(backend: str, preset: str, fields: dict[str, Any]) -> tuple[Any, ...]:
    """What a configuration's one-time costs depend on: everything but :data:`DATA_FIELDS`."""
    rest = tuple(sorted((k, repr(v)) for k, v in fields.items() if k not in DATA_FIELDS))
    return backend, preset, rest


def warm_train(backend: str, preset: str = "d2l", **fields: Any) -> Run:
    """``wdlib.train(backend, preset, **fields)``, after one untimed warm-up run the first time this
    process trains the configuration (up to λ, wd and seed): ``run.seconds`` excludes compile time."""
    from .training import train

    key = warm_key(backend, preset, fields)
    if key not in _warmed:
        train(backend, preset, **fields)
        _warmed.add(key)
    return train(backend, preset, **fields)
