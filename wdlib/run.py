"""The record of a run: :class:`Run`, and how a trained run's losses and parameters become one."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Backend
from .config import Config
from .data import Problem
from .errors import DivergenceError
from .model import weight_names
from .validate import divergence_cause, warn_if_growing


@dataclass(eq=False)
class Run:
    """The result of one training run, as NumPy arrays."""

    config: Config
    problem: Problem
    train_loss: np.ndarray  # (num_epochs,), mean squared loss / 2 on the whole training set
    test_loss: np.ndarray  # (num_epochs,)
    params: dict[str, np.ndarray]  # "w": (num_inputs, 1), "b": (1,)
    backend_version: str
    seconds: float  # wall time of the training loop
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        """True when the loss became NaN or infinite (recorded with ``on_divergence="record"``)."""
        return self.meta.get("diverged_at_epoch") is not None

    @property
    def epochs(self) -> np.ndarray:
        """The epoch (1-based) of each recorded loss: every epoch, or every 5 as d2l records them."""
        return self.problem.eval_every * np.arange(1, len(self.train_loss) + 1)

    @property
    def engine(self) -> str:
        return self.meta.get("engine", "eager")

    @property
    def w_norm_text(self) -> str | None:
        """||w|| as the book's ``print`` shows it (the framework's own norm and scalar type; None for
        the MLP), computed on first use and kept in ``meta``: MXNet's operators cost ~0.5 ms, which
        every run paid when it was computed at the end of each one."""
        if "w_norm_text" not in self.meta:
            from .registry import get_backend

            linear = self.config.model == "linear"
            self.meta["w_norm_text"] = get_backend(self.config.backend).norm_text(self.params["w"]) \
                if linear else None
        return self.meta["w_norm_text"]

    @property
    def printed(self) -> str:
        """The line the book prints after training, e.g. ``w的L2范数是： 14.119074821472168``."""
        from .books import printed_line

        return printed_line(self)

    def plot(self, path: Any = None, **options: Any) -> Any:
        """The book's semilogy figure of this run as a matplotlib Figure (inline in a notebook),
        written to ``path`` (a file name or a binary file object) when one is given; ``options``
        as :func:`wdlib.plot` takes them (``ax=``, ``title=``, ``format=``)."""
        from .plot import plot

        return plot([self], path, **options)

    @property
    def w_norm(self) -> float:
        """The L2 norm of the final weights: ||w||_2 of the linear model, of every weight matrix
        together for the MLP (inf for a diverged run, without NumPy's overflow warning)."""
        with np.errstate(over="ignore", invalid="ignore"):
            weights = [self.params[k].astype(np.float64).ravel() for k in weight_names(self.params)]
            return float(np.linalg.norm(np.concatenate(weights)))

    def __repr__(self) -> str:
        from .captions import shared_settings

        c = self.config
        shown = [f"backend={c.backend!r}", f"preset={c.preset!r}"]
        if c.mode == "scratch":
            shown.append(f"lambd={c.lambd}")
        if c.mode == "concise" or c.wd:
            shown.append(f"wd={c.wd}")
        settings = shared_settings([c], ("backend", "lambd", "wd", "seed", "dtype", "num_epochs"))
        shown += [settings] if settings else []
        shown += [f"seed={c.seed}", f"dtype={c.dtype!r}"]
        if len(self.train_loss):
            shown += [f"train_loss={self.train_loss[-1]:.4g}", f"test_loss={self.test_loss[-1]:.4g}"]
        shown.append(f"w_norm={self.w_norm:.4g}")
        if self.diverged:
            shown.append(f"diverged_at_epoch={self.meta['diverged_at_epoch']}")
        return f"Run({', '.join(shown)})"


def last_loss_text(last: float) -> str:
    """The test loss before a divergence, as an error message says it."""
    if math.isnan(last):
        return "at the first evaluation already"
    return f"last finite test loss: {last:.6g}"


def record(
    backend: Backend, problem: Problem, config: Config, train_loss: np.ndarray, test_loss: np.ndarray,
    params: dict[str, np.ndarray], seconds: float, engine: str,
) -> Run:
    """The Run, cut at the first epoch whose loss is NaN or infinite (raised unless asked to record)."""
    bad = np.flatnonzero(~(np.isfinite(train_loss) & np.isfinite(test_loss)))
    diverged_at = int(bad[0]) if len(bad) else None  # index of the evaluation
    if diverged_at is not None:
        last = test_loss[diverged_at - 1] if diverged_at else float("nan")
        if config.on_divergence == "raise":
            raise DivergenceError(
                f"the run diverged by epoch {(diverged_at + 1) * problem.eval_every}: the loss became "
                f"{train_loss[diverged_at]} ({last_loss_text(last)}); {divergence_cause(config)}",
                epoch=(diverged_at + 1) * problem.eval_every, last_loss=float(last),
            )
        train_loss, test_loss = train_loss[: diverged_at + 1], test_loss[: diverged_at + 1]
    warn_if_growing(train_loss, config)
    meta = {
        "engine": engine,
        "diverged_at_epoch": None if diverged_at is None else (diverged_at + 1) * problem.eval_every,
    }
    return Run(config, problem, train_loss, test_loss, params, backend.version(), seconds, meta)
