"""A small results table shared by compare and sweep: text for a terminal, HTML for a notebook,
CSV, JSON, pandas.

Rows are dicts. ``columns`` names the scalar columns exported, in order; ``shown`` those displayed
(``str`` and the notebook's HTML; default: all). Rows may carry more (loss curves as arrays), which
:meth:`Table.to_json` includes and :meth:`Table.to_pandas` gives with ``long=True``, one row per run
and evaluated epoch. The names are the same in every table and export: ``train_loss`` and
``test_loss`` are the final losses of a run (and, in the long frame, the losses at ``epoch``);
``train_loss_curve`` and ``test_loss_curve`` the curves.
"""

from __future__ import annotations

import html
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .io import write_text
from .outputs import check_output


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


#: Rows shown in a notebook before the rest is summarized as "... N more".
HTML_ROWS = 60


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    """An HTML table (Jupyter's style), cells as in the terminal, at most HTML_ROWS rows."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = ["<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
            for row in rows[:HTML_ROWS]]
    if len(rows) > HTML_ROWS:
        body.append(f'<tr><td colspan="{len(columns)}">... {len(rows) - HTML_ROWS} more rows '
                    "(to_pandas() has them all)</td></tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<table class="dataframe">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


class Table:
    """Rows of results with named scalar columns."""

    columns: tuple[str, ...] = ()
    #: The columns that identify a run in the long (per-epoch) frame.
    id_columns: tuple[str, ...] = ()

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

    @property
    def shown(self) -> tuple[str, ...]:
        """The columns displayed by ``str`` and in a notebook."""
        return self.columns

    def caption(self) -> str:
        """A one-line summary under the displayed table."""
        return f"{len(self)} rows"

    def _cells(self) -> list[list[Any]]:
        return [[row.get(c) for c in self.shown] for row in self.rows]

    def __str__(self) -> str:
        return format_table(self.shown, self._cells())

    def _repr_html_(self) -> str:
        return html_table(self.shown, self._cells(), self.caption())

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.caption()}; columns {', '.join(self.shown)}>"

    def records(self) -> list[dict[str, Any]]:
        """The scalar columns of every row, as plain dicts."""
        return [{c: jsonable(row.get(c)) for c in self.columns} for row in self.rows]

    def long_records(self) -> list[dict[str, Any]]:
        """One dict per run and evaluated epoch: ``id_columns``, ``epoch``, ``train_loss`` and
        ``test_loss`` at that epoch (a diverged run stops at its last recorded epoch)."""
        out = []
        for row in self.rows:
            ident = {c: jsonable(row.get(c)) for c in self.id_columns}
            train, test = row["train_loss_curve"], row["test_loss_curve"]
            for epoch, tr, te in zip(row["epochs"], train, test, strict=True):
                out.append({**ident, "epoch": int(epoch), "train_loss": float(tr), "test_loss": float(te)})
        return out

    def figure(self, ax: Any = None) -> Any:
        """The table's figure (a subclass draws it); :meth:`plot` writes or shows it."""
        raise TypeError(f"a {type(self).__name__} of {', '.join(self.columns[:3])}, ... has no figure: "
                        "Comparison and SweepTable have one; print() or to_pandas() this one")

    def plot(self, path: Any = None, *, ax: Any = None, format: str | None = None) -> Any:
        """:meth:`figure`, written to ``path`` (.png, .svg, .pdf or a binary file object) if given;
        returns the Figure (shown inline in Jupyter)."""
        from .plot import check_target, save

        check_target(path, format)
        fig = self.figure(ax)
        if path is not None:
            save(fig, path, format)
        return fig

    def to_pandas(self, long: bool = False) -> Any:
        """A pandas DataFrame: one row per run with the scalar columns, or with ``long=True`` one row
        per run and evaluated epoch (the loss curves, tidy: ``id_columns``, ``epoch``, ``train_loss``,
        ``test_loss``), ready for ``groupby`` or seaborn. pandas is optional: imported only here."""
        if not isinstance(long, bool):
            raise ConfigError("long", long, "True or False")
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError("to_pandas() needs pandas: pip install pandas; or use records()") from err
        if long:
            columns = [*self.id_columns, "epoch", "train_loss", "test_loss"]
            return pd.DataFrame(self.long_records(), columns=columns)
        return pd.DataFrame(self.records(), columns=list(self.columns))

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the scalar columns as CSV, atomically (the folder is created if missing)."""
        import csv

        check_output(path, "path", "file")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.columns), lineterminator="\n")
        writer.writeheader()
        for record in self.records():
            writer.writerow({k: "" if v is None else v for k, v in record.items()})
        return write_text(_folder_made(path), buffer.getvalue())

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Every column of every row (loss curves and weights included) as JSON; written atomically
        to ``path`` when one is given (the folder is created if missing)."""
        import json

        check_output(path, "path", "file")
        rows = [{k: jsonable(v) for k, v in row.items() if not k.startswith("_")} for row in self.rows]
        text = json.dumps(rows, indent=1)
        if path is not None:
            write_text(_folder_made(path), text + "\n")
        return text


def _folder_made(path: str | os.PathLike[str]) -> Path:
    """``path``, its folder created if missing (as a figure's is)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
