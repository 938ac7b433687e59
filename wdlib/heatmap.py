"""Loshchilov & Hutter's figure (2019, "Decoupled Weight Decay Regularization", Fig. 2): final test
loss over a grid of learning rate x weight decay, one heat map per optimizer and decay, side by side.

With coupled decay the best λ moves with the learning rate (the good cells lie on a diagonal); with
decoupled decay lr and λ separate more (the good region is closer to a rectangle). The figure is made
with matplotlib's object API (``matplotlib.figure.Figure``), without pyplot, so importing this module
imports nothing and drawing changes no global matplotlib state.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from .outputs import check_output

#: How each (optimizer, decay) panel is titled.
TITLES = {("adam", "coupled"): "Adam + L2 (coupled)", ("adam", "decoupled"): "AdamW (decoupled)",
          ("momentum", "coupled"): "SGD momentum, coupled",
          ("momentum", "decoupled"): "SGD momentum, decoupled",
          ("sgd", "coupled"): "SGD, coupled", ("sgd", "decoupled"): "SGD, decoupled"}


Grid = tuple[list[float], list[float], np.ndarray]


def grid(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], Grid]:
    """Per (optimizer, decay): learning rates, λ values (``wd``, or ``lambd`` where wd is 0) and the
    matrix of final test losses (rows: lr, columns: λ), averaged over seeds; NaN where a run diverged."""
    cells: dict[tuple[str, str], dict[tuple[float, float], list[float]]] = {}
    for row in rows:
        lam = row["wd"] or row["lambd"]
        loss = row["test_loss"] if "test_loss" in row else row["final_test_loss"]
        bad = row.get("diverged") or loss is None or not math.isfinite(loss)
        cells.setdefault((row["optimizer"], row["decay"]), {}).setdefault((row["lr"], lam), []).append(
            math.nan if bad else loss)
    out = {}
    for key, values in cells.items():
        lrs = sorted({lr for lr, _ in values})
        lams = sorted({lam for _, lam in values})
        m = np.full((len(lrs), len(lams)), np.nan)
        for (lr, lam), losses in values.items():
            m[lrs.index(lr), lams.index(lam)] = np.mean(losses)
        out[key] = (lrs, lams, m)
    return out


def decay_heatmaps(rows: Iterable[dict[str, Any]], path: str | os.PathLike[str] | None = None,
                   *, title: str = "") -> Any:
    """The heat maps of ``rows`` (a :class:`~wdlib.SweepTable` or its row dicts) as a matplotlib
    ``Figure``; written to ``path`` (.png, .svg, .pdf) only when one is given. The best cell of each
    panel is marked."""
    from matplotlib.colors import LogNorm

    from .figure import InlineFigure
    from .plot import save

    if path is not None and not hasattr(path, "write"):  # a file object is written as given
        check_output(path, "path", "figure")

    panels = grid(rows)
    if not panels:
        from .errors import ConfigError

        raise ConfigError("rows", "no runs",
                          "sweep rows with lr, wd or lambd, optimizer, decay and test_loss")
    finite = np.concatenate([m[np.isfinite(m)] for _, _, m in panels.values()])
    norm = LogNorm(vmin=max(finite.min(), 1e-12), vmax=finite.max()) if finite.size else None
    fig = InlineFigure(figsize=(4.2 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for ax, (key, (lrs, lams, m)) in zip(axes, sorted(panels.items()), strict=True):
        image = ax.imshow(np.ma.masked_invalid(m), origin="lower", cmap="viridis_r", norm=norm, aspect="auto")
        ax.set_xticks(range(len(lams)), [f"{v:.2g}" for v in lams], rotation=45)
        ax.set_yticks(range(len(lrs)), [f"{v:.2g}" for v in lrs])
        ax.set_xlabel("weight decay λ")
        ax.set_ylabel("learning rate")
        ax.set_title(TITLES.get(key, f"{key[0]}, {key[1]}"))
        if np.isfinite(m).any():
            i, j = np.unravel_index(np.nanargmin(m), m.shape)
            ax.plot(j, i, marker="*", color="red", markersize=14)
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="final test loss")
    if title:
        fig.suptitle(title)
    if path is not None:
        save(fig, path)
    return fig
