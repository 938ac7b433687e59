"""The chapter as each book runs it: ``reproduce("gluonbook" | "d2l")``.

Both runs use the framework's own random streams (``rng="native"``), so they equal the books' code run
with the same seed, to the last bit (``tests/test_books.py`` checks that against transcriptions).

Where a book's text and its code disagree, wdlib follows the code:

- gluonbook: the text draws the label noise with standard deviation 0.1; the code uses 0.01.
- gluonbook: the text's update subtracts ``lambda * w`` without the learning rate; the code (minibatch
  SGD on loss + penalty) subtracts ``lr * lambda * w``.
- gluonbook: the code trains 10 epochs; the printed d2l-zh (2019) ran the same code for 100 epochs
  and printed ``L2 norm of w: 11.611941`` for lambda = 0 (MXNet's unseeded state is seed 0):
  ``reproduce("gluonbook", num_epochs=100)``.
- both: the text says one sometimes also penalizes the bias; the code never does (``decay_bias=True``
  does).
- d2l: ``train_concise`` trains on ``nn.MSELoss``, the mean of (y_hat - y)^2 without the 1/2 of the
  scratch loss, so ``weight_decay=3`` there equals the scratch ``lambd=1.5`` with a doubled learning
  rate, not the scratch ``lambd=3`` it is shown next to; its curves are on a 2x scale.
- d2l: the concise net also draws its bias from N(0, 1) (``normal_()`` on every parameter), where
  the scratch code starts the bias at 0.
- d2l: ``evaluate_loss`` with ``nn.MSELoss()`` averages batch means; that is the overall mean only
  because 5 divides 20 and 100.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import make_config
from .errors import ConfigError
from .outputs import check_output

if TYPE_CHECKING:
    from .training import Run

#: The editions whose printed lines wdlib knows: English (d2l.ai) and Chinese (zh.d2l.ai, d2l-zh).
EDITIONS = ("en", "zh")


@dataclass(frozen=True)
class Book:
    """How one book runs the chapter: its framework, preset, and the calls its notebook makes."""

    backend: str
    preset: str
    calls: tuple[tuple[str, float], ...]  # (mode, lambd or wd) in notebook order
    printed: dict[str, dict[str, str]]  # edition -> mode -> the label the book prints before ||w||


_ENGLISH = {"scratch": "L2 norm of w:", "concise": "L2 norm of w:"}
BOOKS = {
    # Both editions of the MXNet book print the English label (d2l-zh 2019 included).
    "gluonbook": Book("mxnet", "gluonbook", (("scratch", 0), ("scratch", 5)),
                      {"en": _ENGLISH, "zh": _ENGLISH}),
    "d2l": Book(
        "torch", "d2l", (("scratch", 0), ("scratch", 3), ("concise", 0), ("concise", 3)),
        {"en": _ENGLISH, "zh": {"scratch": "w的L2范数是：", "concise": "w的L2范数："}},
    ),
}


def default_edition(environ: Mapping[str, str] = os.environ) -> str:
    """The edition in the user's language: "zh" when the locale (``LANGUAGE``, ``LC_ALL``,
    ``LC_MESSAGES`` or ``LANG``, the first one set) is Chinese, "en" otherwise."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def check_edition(edition: str | None) -> str:
    """``edition``, or the default one when None; a ConfigError for anything else."""
    if edition is None:
        return default_edition()
    if edition not in EDITIONS:
        raise ConfigError("edition", edition, "one of " + ", ".join(map(repr, EDITIONS)),
                          "or None for the edition in your locale's language")
    return edition


def printed_line(run: Run, edition: str | None = None) -> str:
    """The line the book prints for ``run``: label and ||w|| as its framework formats it, in
    ``edition`` (default: the run's, as :func:`reproduce` chose it, else :func:`default_edition`)."""
    edition = check_edition(edition if edition is not None else run.meta.get("edition"))
    book = BOOKS.get(run.config.preset, BOOKS["gluonbook"])
    label = book.printed[edition].get(run.config.mode, "L2 norm of w:")
    text = run.w_norm_text
    return f"{label} {text if text is not None else run.w_norm}"


def check_formats(formats: Any, needed: bool = True) -> tuple[str, ...]:
    """``formats`` as a tuple of figure formats: one format (``"png"``) or an iterable of them (at
    least one when figures are ``needed``)."""
    from .outputs import check_format

    items = (formats,) if isinstance(formats, str) else formats
    try:
        items = tuple(items)
    except TypeError:
        raise ConfigError("formats", formats, "a figure format such as 'png', or a tuple of them") from None
    if not items and needed:
        raise ConfigError("formats", formats, "at least one figure format, e.g. ('png', 'svg')",
                          "or out=None to write no figures")
    return tuple(dict.fromkeys(check_format(fmt, "formats") for fmt in items))


def reproduce(
    book: str, out: str | os.PathLike[str] | None = None, *, edition: str | None = None, seed: int = 0,
    num_epochs: int | None = None, formats: str | Sequence[str] = ("png", "svg"),
) -> dict[str, Run]:
    """Run the chapter as ``book`` ("gluonbook": MXNet, or "d2l": PyTorch) does, in one process.

    Returns the runs by name (``"scratch, λ=0"``, ..., ``"concise, wd=3"``); with ``out``, writes each
    run's figure there as ``<book>-<mode>-<value>.<format>`` (the folder is created; a file of that
    name is replaced; ``out`` naming an existing file, not a folder, is refused before training).
    ``formats``: one figure format (``"png"``) or a tuple of them (any format matplotlib writes).
    ``edition`` ("en" or "zh"; default: the one in your locale's language) chooses the line
    ``run.printed`` gives: the English edition prints ``L2 norm of w: ...``, the Chinese d2l
    ``w的L2范数是： ...``. ``wdlib.plot(runs)`` draws them all, one panel each.
    """
    if book not in BOOKS:
        raise ConfigError("book", book, "one of " + ", ".join(map(repr, BOOKS)))
    edition = check_edition(edition)
    formats = check_formats(formats, needed=out is not None)
    out_dir = check_output(out, "out", "folder")
    spec = BOOKS[book]
    names = [[f"{book}-{mode}-{value:g}.{fmt}" for fmt in formats] for mode, value in spec.calls]
    if out_dir is not None:  # each figure's file too: a folder or a read-only file in the way
        for name in (n for per_run in names for n in per_run):
            check_output(out_dir / name, "out", "figure")
    extra: dict[str, Any] = {} if num_epochs is None else {"num_epochs": num_epochs}
    configs = [
        make_config(spec.preset, backend=spec.backend, rng="native", seed=seed, mode=mode,
                    **({"lambd": value} if mode == "scratch" else {"wd": value}), **extra)
        for mode, value in spec.calls
    ]
    from .plot import plot, save
    from .training import train_sequence

    runs = {}
    for (mode, value), files, run in zip(spec.calls, names, train_sequence(configs), strict=True):
        name = f"{mode}, {'λ' if mode == 'scratch' else 'wd'}={value:g}"
        run.meta["edition"] = edition
        runs[name] = run
        if out_dir is not None:
            fig = plot(run, title=f"{book}: {name}")
            for file in files:  # the folder is created by the first one
                save(fig, out_dir / file)
    return runs

