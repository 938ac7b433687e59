"""A small results table shared by compare and sweep: text for a terminal, CSV, JSON, pandas.

Rows are dicts. ``columns`` names the scalar columns shown and exported, in order; rows may carry
more (e.g. loss curves as arrays), which :meth:`Table.to_json` includes and the others leave out.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .io import write_text


def _cell(value: Any) -> str:
    """A compact, readable rendering for the terminal."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value):
            return f"{value:g}"
        return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def jsonable(value: Any) -> Any:
    """A JSON-ready value: arrays become (nested) lists, NumPy scalars Python numbers, NaN null."""
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()] if value.ndim else jsonable(value.item())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces, a rule under the header."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in [list(columns), *cells]) for i in range(len(columns))]
    lines = [list(columns), ["-" * w for w in widths], *cells]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


class Table:
    """Rows of results with named scalar columns."""

    columns: tuple[str, ...] = ()

    def __init__(self, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
        self.rows = list(rows)
        if columns is not None:
            self.columns = tuple(columns)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]

    def __str__(self) -> str:
        return format_table(self.columns, [[row.get(c) for c in self.columns] for row in self.rows])

    def records(self) -> list[dict[str, Any]]:
        """The scalar columns of every row, as plain dicts."""
        return [{c: jsonable(row.get(c)) for c in self.columns} for row in self.rows]

    def to_pandas(self) -> Any:
        """A pandas DataFrame of the scalar columns (pandas is optional: imported only here)."""
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError("to_pandas() needs pandas: pip install pandas; or use records()") from err
        return pd.DataFrame(self.records(), columns=list(self.columns))

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the scalar columns as CSV, atomically."""
        import csv

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.columns), lineterminator="\n")
        writer.writeheader()
        for record in self.records():
            writer.writerow({k: "" if v is None else v for k, v in record.items()})
        return write_text(path, buffer.getvalue())

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Every column of every row (loss curves and weights included) as JSON; written atomically
        to ``path`` when one is given."""
        import json

        text = json.dumps([{k: jsonable(v) for k, v in row.items()} for row in self.rows], indent=1)
        if path is not None:
            write_text(path, text + "\n")
        return text
