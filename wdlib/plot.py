"""Figures: the book's loss curves, and the helpers every wdlib figure shares.

Every figure function returns a matplotlib Figure (:class:`wdlib.figure.InlineFigure`, built from
``matplotlib.figure.Figure`` directly, never through pyplot, so the user's backend and ``plt.show()``
are untouched), draws on the caller's ``ax=`` when one is given, and writes a file only when given a
``path``: a file name ending in .png, .svg, .pdf or another format matplotlib writes (its folder
is created; the target is checked before anything is drawn), or a binary file object such as
``io.BytesIO()`` (PNG unless ``format=`` says otherwise). In Jupyter the returned figure
displays itself inline.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError
from .io import atomic_path
from .outputs import check_format, check_output

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .training import Run

#: The usual file suffixes of a figure (any other format matplotlib writes works too: .jpg, .eps, ...).
FORMATS = (".png", ".svg", ".pdf")
#: Where a figure can go: a file name, or a binary file object.
Target = str | os.PathLike | IO[bytes]


def check_target(path: Target | None, format: str | None = None, argument: str = "path") -> None:
    """Refuse, before anything is drawn, a ``path`` or ``format`` no figure can be written to: see
    :func:`wdlib.outputs.check_output` (suffix, folder, permission, name length)."""
    if format is not None:
        check_format(format)
    if path is None or hasattr(path, "write"):
        return
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(argument, path, f"a file name ending in {', '.join(FORMATS)} (or another format "
                          "matplotlib writes), or a binary file object such as io.BytesIO()",
                          "or None to only draw")
    check_output(path, argument, "figure")


def save(fig: Figure, path: Target, format: str | None = None) -> None:
    """Write ``fig`` to ``path``: a file (atomically, its folder created) or a binary file object."""
    from .figure import DPI

    check_target(path, format)
    if hasattr(path, "write"):
        fig.savefig(path, format=check_format(format) if format else "png", dpi=DPI)
        return
    path = Path(path)  # type: ignore[arg-type]
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=check_format(format or path.suffix), dpi=DPI)


def panels(ax: Any, count: int, figsize: tuple[float, float],
           columns: int | None = None) -> tuple[Figure, list[Axes]]:
    """``count`` axes to draw on: the caller's ``ax`` (one Axes, or a sequence of ``count``), or a new
    figure of ``count`` panels, ``columns`` to a row (default: all in one row; ``figsize`` is one
    row's size). Returns the (root) figure and the axes."""
    if ax is None:
        from .figure import InlineFigure

        columns = min(columns or count, count)
        rows = -(-count // columns)
        fig = InlineFigure(figsize=(figsize[0], figsize[1] * rows), layout="constrained")
        axes = list(fig.subplots(rows, columns, squeeze=False).flat)
        for extra in axes[count:]:  # a last row that is not full
            extra.set_visible(False)
        return fig, axes[:count]
    from matplotlib.axes import Axes

    axes = [ax] if isinstance(ax, Axes) else list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else []
    if len(axes) != count or not all(isinstance(a, Axes) for a in axes):
        need = "a matplotlib Axes" if count == 1 else f"a sequence of {count} matplotlib Axes"
        raise ConfigError("ax", ax, need + " (e.g. from plt.subplots), or None for a new figure")
    fig = axes[0].figure
    while getattr(fig, "figure", fig) is not fig:  # an Axes in a SubFigure: its root figure
        fig = fig.figure
    return fig, axes


def label(run: Run, varying: Sequence[str] = ()) -> str:
    """The run's backend and penalty, e.g. ``torch, λ=3``, ``torch, wd=3 (concise)`` or ``numpy, λ=0,
    wd=0.01 (decoupled)``, and its value of each of the ``varying`` settings (those that tell the
    plotted runs apart, :func:`varying_settings`)."""
    c = run.config
    return ", ".join([c.backend, decay_label(run), *(_setting(c, f) for f in varying)])


def decay_label(run: Run) -> str:
    c = run.config
    if c.mode == "concise":
        return f"wd={c.wd:g} (concise)"
    return f"λ={c.lambd:g}" + (f", wd={c.wd:g} ({c.decay})" if c.wd else "")


#: Settings a legend names when they differ between the plotted runs (backend, λ and wd always are).
LABELLED = ("model", "hidden", "optimizer", "optimizer_args", "penalty", "l1_ratio", "lr", "batch_size",
            "num_epochs", "dtype", "seed", "dataset", "engine")
#: Settings a title names when every plotted run shares them and they are not the default.
TITLED = ("model", "hidden", "optimizer", "penalty", "lr")


def varying_settings(runs: Sequence[Run]) -> list[str]:
    """The :data:`LABELLED` settings whose values differ between ``runs``."""
    return [f for f in LABELLED if len({repr(getattr(r.config, f)) for r in runs}) > 1]


def _setting(config: Any, name: str) -> str:
    value = config[name] if isinstance(config, dict) else getattr(config, name)
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"


def titled_settings(configs: Sequence[Any]) -> list[str]:
    """The settings of :data:`TITLED` that every config (a Config, or a row of its fields) shares
    and that are not the default, as a title names them: ``["model=mlp", "hidden=(8,)"]``."""
    from .config import DEFAULTS

    def get(c: Any, name: str) -> Any:
        return c[name] if isinstance(c, dict) else getattr(c, name)

    first = configs[0]
    return [_setting(first, f) for f in TITLED if get(first, f) != getattr(DEFAULTS, f)
            and all(get(c, f) == get(first, f) for c in configs)]


def default_title(runs: Sequence[Run]) -> str:
    """What the runs share: backend, the data (the book's preset for the chapter's data), the
    settings of :data:`TITLED` that are not the default, and (for one run) the penalty."""
    from .sweep_table import data_name

    parts = []
    backends = {r.config.backend for r in runs}
    if len(backends) == 1:
        parts.append(backends.pop())
    names = {data_name(r.config) for r in runs}
    if len(names) == 1:
        name = names.pop()
        parts.append(f"{name} preset" if runs[0].config.dataset == "synthetic" else name)
    parts += titled_settings([r.config for r in runs])
    if len(runs) == 1:
        parts.append(decay_label(runs[0]))
    return ", ".join(parts)


def curves(ax: Axes, epochs: np.ndarray, train: Sequence[np.ndarray], test: Sequence[np.ndarray],
           name: str, *, linewidth: float = 1.5) -> None:
    """One colour: the mean train curve solid, the mean test curve dotted, over the given runs (one
    curve per seed), with the min-max band of each when there are several."""
    for kind, values, style in (("train", train, "-"), ("test", test, ":")):
        stack = _padded(values, len(epochs))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice" past a divergence
            mean = np.nanmean(stack, axis=0)
            low, high = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
        color = None if kind == "train" else ax.lines[-1].get_color()
        (line,) = ax.semilogy(epochs, mean, style, color=color, lw=linewidth,
                              label=f"{name} {kind}".strip())
        if len(values) > 1:
            ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.15, lw=0)


def _padded(values: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Curves as rows of one array, a diverged (shorter) curve padded with NaN."""
    stack = np.full((len(values), length), np.nan)
    for i, v in enumerate(values):
        stack[i, : len(v)] = np.asarray(v, dtype=float)[:length]
    return stack


def draw(runs: Sequence[Run], ax: Axes, *, labels: Sequence[str] | None = None) -> None:
    """Draw ``runs`` on ``ax``: one colour per run, train solid, test dotted (log scale)."""
    varying = varying_settings(runs)
    for i, run in enumerate(runs):
        name = labels[i] if labels else label(run, varying)
        prefix = "" if len(runs) == 1 else name  # one run: the book's legend, train and test
        curves(ax, run.epochs, [run.train_loss], [run.test_loss], prefix)
    ax.set_xlabel("epochs")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small")


def plot(runs: Run | Sequence[Run] | Mapping[str, Run], path: Target | None = None, *,
         ax: Axes | Sequence[Axes] | None = None, title: str | None = None,
         format: str | None = None) -> Figure:
    """The book's figure of ``runs``: loss against epochs on a log scale, train solid, test dotted.

    ``runs``: one Run or a list (one panel, one colour per run), or a dict of named runs such as
    :func:`wdlib.reproduce` returns (one panel per run, titled by its name, two to a row). Returns
    the Figure (it displays itself in Jupyter); draws on ``ax`` (one Axes per panel) if given; writes
    ``path`` (.png, .svg, .pdf, or a binary file object) only if given. The title names the backend
    and the book's preset the runs share.
    """
    check_target(path, format)
    if isinstance(runs, Mapping):
        named = dict(runs)
        if not named:
            raise ConfigError("runs", runs, "a Run, a non-empty list of runs or a dict of named runs")
        fig, axes = panels(ax, len(named), (5 * min(2, len(named)), 3), columns=2)
        for axis, (name, run) in zip(axes, named.items(), strict=True):
            draw([run], axis, labels=[name])
            axis.set_title(f"{default_title([run]).rsplit(', ', 1)[0]}: {name}", fontsize="medium")
        if title is not None:
            fig.suptitle(title)
    else:
        runs = [runs] if not isinstance(runs, Sequence) else list(runs)
        if not runs:
            raise ConfigError("runs", runs, "a Run, a non-empty list of runs or a dict of named runs")
        fig, (axis,) = panels(ax, 1, (6, 3.5))
        draw(runs, axis)
        axis.set_title(title if title is not None else default_title(runs))
    if path is not None:
        save(fig, path, format)
    return fig
