"""The results of a sweep: a table of the stored runs, and the figure users expect from it."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, make_config
from .data import make_problem
from .errors import ConfigError
from .store import Store
from .table import Table

#: Config fields describing the data (and so the exact ridge solution), besides the seed.
DATA_FIELDS = ("n_train", "n_test", "num_inputs", "true_w", "true_b", "noise")
#: Fields every row of a sweep table shows; other fields appear when they vary within the table.
SHOWN = ("backend", "lambd", "seed")
RESULTS = ("final_train_loss", "final_test_loss", "w_norm", "diverged", "seconds")


class SweepTable(Table):
    """Stored runs as a table: one row per run with every Config field, results and loss curves.

    ``str(table)`` shows the fields that vary and the final losses; ``to_csv``/``to_json``/
    ``to_pandas`` export; :meth:`plot` draws test loss and ||w|| against lambd with the exact ridge path.
    """

    def __init__(self, rows: Sequence[dict[str, Any]], *, computed: int = 0, skipped: int = 0,
                 store: Path | None = None) -> None:
        super().__init__(sorted(rows, key=_grid_order))
        self.computed, self.skipped, self.store = computed, skipped, store
        varying = [f.name for f in dataclasses.fields(Config)
                   if f.name not in SHOWN and len({repr(row[f.name]) for row in self.rows}) > 1]
        self.shown = (*SHOWN, *varying)
        self.columns = ("key", *(f.name for f in dataclasses.fields(Config)), "backend_version",
                        "engine_used", "diverged_at_epoch", *RESULTS)

    def __str__(self) -> str:
        from .table import format_table

        columns = (*self.shown, *RESULTS)
        body = format_table(columns, [[row[c] for c in columns] for row in self.rows])
        return f"{body}\n{len(self)} runs ({self.computed} computed, {self.skipped} already stored)"

    def figure(self) -> Any:
        """Test loss and ||w|| against lambd: SGD per backend (mean, min-max band over seeds), and
        the exact ridge solution of the same data (mean over seeds) drawn over them."""
        from .plot import _pyplot

        plt = _pyplot()
        fig, (ax_loss, ax_norm) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
        lambdas = sorted({row["lambd"] for row in self.rows})
        groups = _groups(self.rows, [f for f in self.shown if f not in ("lambd", "seed")])
        for i, (label, rows) in enumerate(groups):
            width = 1 + 2.5 * (1 - i / max(len(groups) - 1, 1))  # agreeing backends overlap: all show
            for ax, column in ((ax_loss, "final_test_loss"), (ax_norm, "w_norm")):
                xs, mean, lo, hi = _summary(rows, column)
                (line,) = ax.plot(xs, mean, "o-", ms=3, lw=width, label=f"{label} (SGD)")
                if len(rows) > len(xs):
                    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
        exact = _exact_curves(self.rows, lambdas)
        for data_label, (grid, test_loss, w_norm) in exact.items():
            name = "exact ridge" + (f" {data_label}" if len(exact) > 1 else "")
            ax_loss.plot(grid, test_loss, "k--", lw=1, label=name)
            ax_norm.plot(grid, w_norm, "k--", lw=1, label=name)
        positive = [lam for lam in lambdas if lam > 0]
        for ax, ylabel in ((ax_loss, "test loss"), (ax_norm, "||w||")):
            if positive:
                ax.set_xscale("symlog", linthresh=min(positive))  # log-x that still shows lambd = 0
            ax.set_yscale("log")
            ax.set_xlabel("λ")
            ax.set_ylabel(ylabel)
            ax.legend(fontsize="small")
        seeds = len({row["seed"] for row in self.rows})
        ax_loss.set_title(f"final test loss ({seeds} seed{'s' * (seeds > 1)}: mean, min–max)")
        ax_norm.set_title("||w|| of the final weights")
        return fig

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`figure` to ``path``, atomically."""
        from .plot import save_figure

        if not self.rows:
            raise ConfigError("store", str(self.store), "a store with at least one run to plot")
        return save_figure(self.figure(), path)


def load_sweep(store: str | os.PathLike[str]) -> SweepTable:
    """Every run stored in ``store``, as a :class:`SweepTable` (nothing is run).

    The store is opened read-only (it may be in a read-only folder; a schema-1 store is read as it
    is); a missing or empty file is a :class:`~wdlib.StoreError`, never made a store.
    """
    path = Path(store)
    with Store(path, readonly=True) as db:
        rows = list(db.records())
    return SweepTable(rows, skipped=len(rows), store=path)


def _grid_order(row: dict[str, Any]) -> tuple[Any, ...]:
    """Rows sorted by their configuration, field by field: a table independent of completion order."""
    return tuple((str(type(row[f.name])), row[f.name]) for f in dataclasses.fields(Config))


def _groups(rows: list[dict[str, Any]], fields: Sequence[str]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows grouped by the values of ``fields``, each group labelled by them."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[f] for f in fields), []).append(row)
    return [(", ".join(f"{v}" if f == "backend" else f"{f}={v}" for f, v in zip(fields, key, strict=True)),
             members) for key, members in groups.items()]


def _summary(rows: list[dict[str, Any]], column: str) -> tuple[np.ndarray, ...]:
    """Per lambd: mean, min and max of ``column`` over the runs that did not diverge."""
    by_lambd: dict[float, list[float]] = {}
    for row in rows:
        value = row[column]
        if value is not None and math.isfinite(value) and not row["diverged"]:
            by_lambd.setdefault(row["lambd"], []).append(value)
    xs = sorted(by_lambd)
    stats = [(np.mean(by_lambd[x]), np.min(by_lambd[x]), np.max(by_lambd[x])) for x in xs]
    mean, lo, hi = (np.array(s) for s in zip(*stats, strict=True)) if stats else ([], [], [])
    return np.array(xs), np.asarray(mean), np.asarray(lo), np.asarray(hi)


def _exact_curves(rows: list[dict[str, Any]], lambdas: list[float]) -> dict[str, tuple[np.ndarray, ...]]:
    """The exact ridge test loss and ||w|| on a fine grid, averaged over the seeds of each data set."""
    from .ridge import ridge_path

    lo, hi = min(lambdas), max(lambdas)
    positive = [lam for lam in lambdas if lam > 0]
    if positive:
        grid = np.unique(np.concatenate([
            [lo], np.geomspace(min(positive), hi, 200) if hi > min(positive) else [hi], lambdas
        ]))
    else:
        grid = np.array([0.0])
    curves: dict[str, tuple[np.ndarray, ...]] = {}
    for label, members in _groups(rows, DATA_FIELDS):
        paths = []
        for seed in sorted({row["seed"] for row in members}):
            fields = {f: members[0][f] for f in DATA_FIELDS}
            config = make_config(seed=seed, num_epochs=1, batch_size=1, **fields)
            paths.append(ridge_path(make_problem(config), grid))
        curves[label] = (grid, np.mean([p.test_loss for p in paths], axis=0),
                         np.mean([p.w_norm for p in paths], axis=0))
    return curves
