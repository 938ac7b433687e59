"""The book's figure: loss against epochs on a log scale, train solid, test dotted."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .io import atomic_path

if TYPE_CHECKING:
    from .training import Run


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    return plt


def label(run: Run) -> str:
    c = run.config
    decay = f"wd={c.wd:g} (concise)" if c.mode == "concise" else f"λ={c.lambd:g}"
    return f"{c.backend}, {decay}"


def draw(runs: Sequence[Run], ax: Any, *, labels: Sequence[str] | None = None) -> None:
    """Draw ``runs`` on ``ax``: one colour per run, train solid, test dotted."""
    for i, run in enumerate(runs):
        name = labels[i] if labels else label(run)
        prefix = "" if len(runs) == 1 else f"{name} "  # one run: the book's legend, train and test
        (line,) = ax.semilogy(run.epochs, run.train_loss, label=f"{prefix}train")
        ax.semilogy(run.epochs, run.test_loss, ":", color=line.get_color(), label=f"{prefix}test")
    ax.set_xlabel("epochs")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small")


def plot(runs: Run | Sequence[Run], path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write the semilogy figure of ``runs`` to ``path`` (.png or .svg), atomically."""
    plt = _pyplot()
    runs = [runs] if not isinstance(runs, Sequence) else list(runs)
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    draw(runs, ax)
    if title or len(runs) == 1:
        ax.set_title(title or label(runs[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` to ``path`` (the suffix picks PNG, SVG or PDF) atomically, then close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        _pyplot().close(fig)
    return Path(path)
