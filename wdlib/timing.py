"""Training times without first-call costs: what ``compare`` reports as ``seconds``.

A framework's first runs of a configuration pay one-time costs inside the training loop: JAX compiles
its whole-run ``lax.scan`` on the first call, PyTorch's TorchScript profiles its loop on the first and
optimizes it on the second, MXNet allocates its engine's buffers. Those are costs per process and per
shape (a new λ or seed reuses them, unless λ becomes or stops being 0; a new dtype, preset or size
does not), so :func:`warm_train`
trains each such configuration :data:`WARMUP_RUNS` times untimed before the run it returns:
``run.seconds`` is then the steady-state time of a later call. The warm-up runs are identical to the
returned one (training is deterministic), so only time is spent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .training import Run

#: Configurations (less the fields that reuse compiled code) already trained in this process.
_warmed: set[tuple[Any, ...]] = set()
#: Untimed runs before the timed one: JAX compiles on the first, TorchScript optimizes on the second.
WARMUP_RUNS = 2
#: Fields that enter a run as data: changing them reuses everything the first run prepared, except
#: that a zero λ or wd drops its term from the compiled code (JAX's whole run), so whether each is
#: zero counts.
DATA_FIELDS = ("lambd", "wd", "seed")


def warm_key(backend: str, preset: str, fields: dict[str, Any]) -> tuple[Any, ...]:
    """What a configuration's one-time costs depend on: everything but :data:`DATA_FIELDS`, and of
    λ and wd whether each is zero."""
    rest = tuple(sorted((k, _shape_of(v)) for k, v in fields.items() if k not in DATA_FIELDS))
    zero = tuple(not fields.get(k) for k in ("lambd", "wd"))
    return backend, preset, rest, zero


def _shape_of(value: Any) -> Any:
    """A value as compiled code sees it: an array (a user's ``data=``) by its shape and dtype."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return ("array", tuple(value.shape), str(value.dtype))
    if isinstance(value, (tuple, list)):
        return tuple(_shape_of(v) for v in value)
    return repr(value)


def warm_train(backend: str, preset: str = "d2l", **fields: Any) -> Run:
    """``wdlib.train(backend, preset, **fields)``, after :data:`WARMUP_RUNS` untimed runs the first
    time this process trains the configuration (up to λ, wd and seed): ``run.seconds`` excludes the
    framework's compile time."""
    from .training import train

    key = warm_key(backend, preset, fields)
    if key not in _warmed:
        for _ in range(WARMUP_RUNS):
            train(backend, preset, **fields)
        _warmed.add(key)
    return train(backend, preset, **fields)
