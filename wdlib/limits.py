"""Memory estimates of a run, a grid and a sweep plan, checked before anything is allocated.

Each estimate counts only what wdlib itself must hold (data, parameters, optimizer state, the batch
order, the recorded losses, the MLP's activations), so it is a lower bound of the real use: a run it
refuses could not have finished. The memory available is the kernel's ``MemAvailable`` (Linux), or
the physical memory from ``os.sysconf``; ``WDLIB_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix)
overrides it, for tests and shared machines. Every check is arithmetic on the configuration: cheap.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

from .errors import ConfigError, ResourceError

#: Bytes one entry of a sweep grid or a λ/seed list costs before any run: its Config, key and row.
GRID_ENTRY_BYTES = 4096
#: Bytes a run's record keeps besides its arrays (Run, Config, meta, table row).
RUN_OVERHEAD_BYTES = 8192
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def available_memory() -> int:
    """Bytes wdlib may use: ``WDLIB_MEMORY_LIMIT``, else MemAvailable, else the physical memory."""
    text = os.environ.get("WDLIB_MEMORY_LIMIT", "").strip().upper().removesuffix("B")
    if text:
        unit = text[-1] if text[-1] in _UNITS else ""
        try:
            return int(float(text[: len(text) - len(unit)]) * _UNITS[unit])
        except ValueError:
            raise ConfigError("WDLIB_MEMORY_LIMIT", os.environ["WDLIB_MEMORY_LIMIT"],
                              "a number of bytes, e.g. 2000000000 or 2G") from None
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63  # unknown: do not refuse


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def refuse_above(field: str, value: Any, needed: float, what: str) -> None:
    """Raise a ResourceError naming ``field`` when ``needed`` bytes exceed the memory available."""
    have = available_memory()
    if needed > have:
        raise ResourceError(
            f"{field}={value!r} is too large: {what} would need about {_size(needed)}, and "
            f"{_size(have)} of memory is available (WDLIB_MEMORY_LIMIT overrides it); lower {field}")


def parameter_count(config: Any) -> int:
    """The number of values in the model's parameters (a minibatch step costs about ``batch_size``
    times as many multiply-adds, forward and backward)."""
    p = config.num_inputs
    if config.model in ("linear", "mlp"):
        widths = [p, *config.hidden, 1] if config.model == "mlp" else [p, 1]
        return sum((a + 1) * b for a, b in itertools.pairwise(widths))
    from .user_checks import user_parameters

    return sum(a.size for a in user_parameters(config.model, p).values())


def run_bytes(config: Any, k: int = 1) -> tuple[float, str]:
    """Estimated bytes of one run of ``config`` (``k`` λ trained as the columns of one run), and the
    field that contributes most ("lambdas" when it is the number of λ)."""
    s = 8 if config.dtype == "float64" else 4
    n, m, p, e = config.n_train, config.n_test, config.num_inputs, config.num_epochs
    params = parameter_count(config)
    copies = 4 + (config.optimizer != "sgd") * 2  # the problem's and the backend's, a gradient, a step
    sizes = {"num_inputs": p, "n_train": n, "n_test": m}
    wide = "hidden" if config.hidden and max(config.hidden) >= p else "num_inputs"
    parts = [
        (1.0 * (n + m) * (p + 1) * s, max(sizes, key=lambda name: sizes[name])),  # X, y (the fast path
        # on large data never copies them; the eager loop's framework copy is not counted)
        (float(params) * copies * s * k, "lambdas" if k > 1 else wide),
        (8.0 * e * n + 16.0 * e * k, "num_epochs"),  # batch order (int64), two loss records
        (float(max(n, m)) * sum(config.hidden) * s * 2, "hidden"),  # activations on a whole set
    ]
    return RUN_OVERHEAD_BYTES + sum(b for b, _ in parts), max(parts)[1]


def check_run(config: Any, k: int = 1, held: float = 0.0) -> None:
    """Refuse ``config`` (``k`` λ at once) before any allocation when it cannot fit in memory.
    ``held``: bytes of the run's data already in memory (a Problem given to ``wdlib.fit``), which the
    memory available no longer includes."""
    needed, field = run_bytes(config, k)
    needed -= held
    if needed > 2**28:  # below 256 MB there is no need to read /proc/meminfo
        refuse_above(field, k if field == "lambdas" else getattr(config, field), needed, "the run")


def check_count(field: str, value: Any, count: int, each: float = GRID_ENTRY_BYTES) -> None:
    """Refuse a list, range or grid of ``count`` entries (``each`` bytes each) before it is built."""
    if count * each > 2**28:
        refuse_above(field, value, float(count) * each, f"{count:,} entries")


def check_runs(configs: Sequence[Any], count: int | None = None, field: str = "", value: Any = None) -> None:
    """Refuse runs kept together (a book's sequence, a comparison: ``count`` runs like ``configs``,
    default one each) when they do not fit in memory together; each must fit alone, too."""
    from .config import Config

    if isinstance(configs, (str, bytes)) or not isinstance(configs, Sequence):
        raise ConfigError("configs", type(configs).__name__, "a list of wdlib.Config (see wdlib.make_config)")
    if not configs:
        return
    for i, config in enumerate(configs):
        if not isinstance(config, Config):
            raise ConfigError(f"configs[{i}]", type(config).__name__,
                              "a wdlib.Config (see wdlib.make_config)")
    sizes = [run_bytes(c) for c in configs]
    largest = max(range(len(configs)), key=lambda i: sizes[i][0])
    check_run(configs[largest])
    count = len(configs) if count is None else count
    total = max(size for size, _ in sizes) * count
    if total > 2**28 and count > 1:
        name = field or sizes[largest][1]
        shown = value if field else getattr(configs[largest], name)
        refuse_above(name, shown, total, f"{count:,} runs kept together")
