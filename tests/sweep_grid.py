"""The grid shared by the sweep tests (its uninterrupted sweep is the `swept_grid` fixture)."""

from __future__ import annotations

from typing import Any

import numpy as np

import wdlib

#: A small sweep of 6 batched tasks (one per seed, 4 λ each) taking ~120 ms each, so that a kill
#: lands in the middle of it.
GRID: dict[str, Any] = {"lambdas": [0, 1, 3, 10], "seeds": [0, 1, 2, 3, 4, 5], "backends": ["numpy"],
                        "num_epochs": 3000}
TOTAL = 24
#: Columns that measure time, not results: they differ between two executions of the same run.
TIMING = ("seconds", "stored_at")


def _bits(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.dtype.str, value.shape, value.tobytes()
    if isinstance(value, dict):  # params: name -> array
        return [(k, _bits(v)) for k, v in value.items()]
    return value


def comparable(table: wdlib.SweepTable) -> list[dict[str, Any]]:
    """The table's rows without timings, arrays as bytes: equal iff the results are bitwise equal."""
    return [{k: _bits(v) for k, v in row.items() if k not in TIMING} for row in table.rows]
