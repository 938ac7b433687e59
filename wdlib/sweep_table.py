"""The results of a sweep: a table of the stored runs, and the figure users expect from it."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .captions import shared_settings
from .config import Config, make_config
from .data import make_problem
from .errors import ConfigError
from .store import Store
from .table import Table

#: Config fields describing the data (and so the exact ridge solution), besides the seed.
DATA_FIELDS = ("n_train", "n_test", "num_inputs", "true_w", "true_b", "noise")
#: Where the data come from (a data set, or the user's arrays by fingerprint), and their split.
DATA_SOURCE = ("dataset", "data_fingerprint", "test_fraction")
#: Results of a run, the same names as in :class:`wdlib.Comparison`: final losses, ||w||, ...
RESULTS = ("train_loss", "test_loss", "w_norm", "diverged", "seconds")
#: The store's names for a row's final losses and curves -> the table's (one naming everywhere).
RENAMED = {"train_loss": "train_loss_curve", "test_loss": "test_loss_curve",
           "final_train_loss": "train_loss", "final_test_loss": "test_loss"}
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(Config))


class SweepTable(Table):
    """Stored runs as a table: one row per run with every Config field, results and loss curves.

    ``str(table)`` (and a notebook's HTML) shows the fields that vary and the final losses;
    ``to_csv``/``to_json``/``to_pandas`` export (``to_pandas(long=True)``: one row per run and epoch);
    :meth:`figure`/:meth:`plot` draw test loss and ||w|| against λ (or wd) with the exact ridge path.
    """

    id_columns = ("key", *CONFIG_FIELDS)

    def __init__(self, rows: Sequence[dict[str, Any]], *, computed: int = 0, skipped: int = 0,
                 store: Path | None = None, arrays: tuple[np.ndarray, ...] | None = None) -> None:
        super().__init__(sorted((_renamed(row) for row in rows), key=_grid_order))
        self.computed, self.skipped, self.store = computed, skipped, store
        #: The user's arrays of a ``sweep(data=...)`` (the store keeps only their fingerprint): the
        #: exact ridge path of such runs is drawn only when the table has them.
        self.arrays = arrays
        modes = {row["mode"] for row in self.rows}
        first = ("backend", *(["lambd"] if modes - {"concise"} or not modes else []),
                 *(["wd"] if "concise" in modes else []), "seed")
        varying = [f for f in CONFIG_FIELDS
                   if f not in first and len({repr(row.get(f)) for row in self.rows}) > 1]
        self.fields_shown = (*first, *varying)
        self.columns = ("key", *CONFIG_FIELDS, "backend_version", "engine_used", "diverged_at_epoch",
                        *RESULTS)

    @property
    def shown(self) -> tuple[str, ...]:
        return (*self.fields_shown, *RESULTS)

    def caption(self) -> str:
        where = f" in {self.store}" if self.store is not None else ""
        settings = shared_settings(self.rows, self.fields_shown)
        return self._counts() + where + (f"; every run: {settings}" if settings else "")

    def _counts(self) -> str:
        return (f"{len(self)} run{'s' * (len(self) != 1)} ({self.computed} computed, {self.skipped} "
                "already stored)")

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.caption()}"

    def __repr__(self) -> str:
        parts = [self._counts()]
        if self.rows:
            parts.append("backends " + ", ".join(dict.fromkeys(row["backend"] for row in self.rows)))
            for name, text in (("lambd", "λ"), ("wd", "wd"), ("seed", "seeds")):
                if name in self.fields_shown:
                    parts.append(f"{text} {_span(sorted({row[name] for row in self.rows}))}")
        where = f" in {self.store.name}" if self.store is not None else ""
        return f"<SweepTable{where}: {'; '.join(parts)}>"

    def figure(self, ax: Any = None) -> Any:
        """Test loss and ||w|| against the penalty swept (λ, or the optimizer's wd where only wd
        varies or every run is concise), one line per other setting (mean, min-max band over seeds),
        and the exact ridge solution of the same data (mean over seeds) drawn over λ.
        ``ax``: two Axes to draw on instead of a new figure."""
        from .plot import panels, titled_settings

        if not self.rows:
            raise ConfigError("store", str(self.store), "a store with at least one run to plot")
        fig, (ax_loss, ax_norm) = panels(ax, 2, (10, 3.8))
        x = penalty_axis(self.rows)
        values = sorted({penalty_value(row, x) for row in self.rows})
        varying = {f for f in ("lambd", "wd") if len({row[f] for row in self.rows}) > 1}
        apart = {"seed", "lambd", "wd"} - (varying - {x} if x != "mode" else set())  # a line per other value
        groups = _groups(self.rows, [f for f in self.fields_shown if f not in apart])
        for i, (label, rows) in enumerate(groups):
            width = 1 + 2.5 * (1 - i / max(len(groups) - 1, 1))  # agreeing backends overlap: all show
            for axis, column in ((ax_loss, "test_loss"), (ax_norm, "w_norm")):
                xs, mean, lo, hi = _summary(rows, column, x)
                (line,) = axis.plot(xs, mean, "o-", ms=3, lw=width, label=f"{label} ({_trained_by(rows)})")
                if len(rows) > len(xs):
                    axis.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
        ridge_rows = [row for row in self.rows if _ridge_applies(row)] if x == "lambd" else []
        lambdas = sorted({row["lambd"] for row in ridge_rows})
        exact = _exact_curves(ridge_rows, lambdas, self.arrays) if ridge_rows else {}
        for data_label, (grid, test_loss, w_norm) in exact.items():
            name = "exact ridge" + (f" {data_label}" if len(exact) > 1 else "")
            ax_loss.plot(grid, test_loss, "k--", lw=1, label=name)
            ax_norm.plot(grid, w_norm, "k--", lw=1, label=name)
        positive = [v for v in values if v > 0]
        concise = {row["mode"] for row in self.rows} == {"concise"}
        xlabel = {"lambd": "λ", "wd": "wd (concise)" if concise else "wd",
                  "mode": "λ (scratch) or wd (concise)"}[x]
        for axis, ylabel in ((ax_loss, "test loss"), (ax_norm, "||w||")):
            if positive:
                axis.set_xscale("symlog", linthresh=min(positive))  # log-x that still shows 0
            axis.set_yscale("log")
            axis.set_xlabel(xlabel)
            axis.set_ylabel(ylabel)
            axis.legend(fontsize="small")
        seeds = len({row["seed"] for row in self.rows})
        presets = ", ".join([*sorted({data_name(row) for row in self.rows}), *titled_settings(self.rows)])
        ax_loss.set_title(f"{presets}: final test loss ({seeds} seed{'s' * (seeds > 1)}: mean, min–max)")
        ax_norm.set_title(f"{presets}: ||w|| of the final weights")
        return fig


def _renamed(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row with the table's names (:data:`RENAMED`) and the epoch of each curve point."""
    if "train_loss_curve" in row:
        return row
    out = {RENAMED.get(k, k): v for k, v in row.items()}
    curve = out.get("train_loss_curve")
    if curve is not None:
        n = len(curve)
        last = out.get("diverged_at_epoch") or out.get("num_epochs", n)
        every = max(last // n, 1) if n else 1
        out["epochs"] = every * np.arange(1, n + 1)
    return out


def store_record(row: dict[str, Any]) -> dict[str, Any]:
    """A table row under the store's names again (what :meth:`wdlib.Store.put` takes)."""
    back = {v: k for k, v in RENAMED.items()}
    return {back.get(k, k): v for k, v in row.items() if k != "epochs"}


def _hashable(value: Any) -> Any:
    """A JSON value usable in a set or a sort key: lists (e.g. ``hidden``) become tuples."""
    return tuple(_hashable(v) for v in value) if isinstance(value, (list, tuple)) else value


def penalty_axis(rows: Sequence[dict[str, Any]]) -> str:
    """What a sweep figure puts on its x axis: "wd" when every run is concise or (all in one mode)
    wd alone varies, "lambd" when no run is concise, "mode" (wd for concise runs, λ for the others)
    when both kinds are mixed."""
    modes = {row["mode"] for row in rows}
    only_wd_varies = len({row["wd"] for row in rows}) > 1 and len({row["lambd"] for row in rows}) == 1
    if modes == {"concise"} or (only_wd_varies and len(modes) == 1):
        return "wd"
    return "mode" if "concise" in modes else "lambd"


def penalty_value(row: dict[str, Any], axis: str = "mode") -> float:
    """The run's place on the x axis :func:`penalty_axis` chose."""
    if axis == "mode":
        return row["wd"] if row["mode"] == "concise" else row["lambd"]
    return row[axis]


def _span(values: list[Any]) -> str:
    if len(values) <= 4:
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
    lo, hi = values[0], values[-1]
    return f"{lo:g}–{hi:g} ({len(values)} values)" if isinstance(lo, float) else f"{lo}–{hi} ({len(values)})"


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
    return tuple((str(type(row.get(f))), _hashable(row.get(f))) for f in CONFIG_FIELDS)


def _groups(rows: list[dict[str, Any]], fields: Sequence[str]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows grouped by the values of ``fields``, each group labelled by them."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(_hashable(row[f]) for f in fields), []).append(row)
    return [(", ".join(f"{v}" if f == "backend" else f"{f}={v}" for f, v in zip(fields, key, strict=True)),
             members) for key, members in groups.items()]


def _summary(rows: list[dict[str, Any]], column: str, axis: str) -> tuple[np.ndarray, ...]:
    """Per x value (:func:`penalty_axis`): mean, min and max of ``column`` over the runs that did not
    diverge."""
    by_lambd: dict[float, list[float]] = {}
    for row in rows:
        value = row[column]
        if value is not None and math.isfinite(value) and not row["diverged"]:
            by_lambd.setdefault(penalty_value(row, axis), []).append(value)
    xs = sorted(by_lambd)
    stats = [(np.mean(by_lambd[x]), np.min(by_lambd[x]), np.max(by_lambd[x])) for x in xs]
    mean, lo, hi = (np.array(s) for s in zip(*stats, strict=True)) if stats else ([], [], [])
    return np.array(xs), np.asarray(mean), np.asarray(lo), np.asarray(hi)


def data_name(row: Any) -> str:
    """What a run (a row, or a Config) was trained on, as a title says it: the book's preset for the
    chapter's synthetic data, else the data set ("diabetes", "your data")."""
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    dataset = get("dataset")
    return get("preset") if dataset == "synthetic" else "your data" if dataset == "arrays" else dataset


def _trained_by(rows: list[dict[str, Any]]) -> str:
    """The optimizer of a group of rows, as its legend names it: Adam with decoupled decay is AdamW."""
    def name(row: dict[str, Any]) -> str:
        base = {"sgd": "SGD", "momentum": "momentum", "adam": "Adam"}.get(row["optimizer"], row["optimizer"])
        decoupled = row.get("decay") == "decoupled" and row.get("mode") != "concise"
        return base + ("W" if base == "Adam" else ", decoupled wd") if decoupled else base

    return "/".join(sorted({name(row) for row in rows}))


def _ridge_applies(row: dict[str, Any]) -> bool:
    """The exact ridge solution is the minimizer a run approaches: the linear model with the L2
    penalty on w alone, no optimizer weight decay."""
    return (row["mode"] == "scratch" and row["model"] == "linear" and row["penalty"] == "l2"
            and not row["decay_bias"] and not row["penalize"] and not row["wd"])


def _exact_curves(rows: list[dict[str, Any]], lambdas: list[float],
                  arrays: tuple[np.ndarray, ...] | None = None) -> dict[str, tuple[np.ndarray, ...]]:
    """The exact ridge test loss and ||w|| on a fine grid, averaged over the seeds of each data set:
    the chapter's synthetic data, a bundled data set, or the user's ``arrays`` (rows of other arrays,
    whose data the table does not have, get no curve)."""
    from .arrays import fingerprint
    from .ridge import ridge_path

    if arrays is not None:
        arrays_print = fingerprint(*arrays)
    rows = [row for row in rows if row["dataset"] != "arrays"
            or (arrays is not None and row["data_fingerprint"] == arrays_print)]
    if not rows:
        return {}

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
            fields = {f: members[0][f] for f in (*DATA_FIELDS, *DATA_SOURCE)}
            config = make_config(seed=seed, num_epochs=1, batch_size=1, **fields)
            data = arrays if config.dataset == "arrays" else None
            paths.append(ridge_path(make_problem(config, data), grid))
        curves[label] = (grid, np.mean([p.test_loss for p in paths], axis=0),
                         np.mean([p.w_norm for p in paths], axis=0))
    return curves
