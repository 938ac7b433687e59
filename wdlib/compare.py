"""Every backend on the same experiment, checked against the NumPy float64 reference.

All backends train on identical inputs (wdlib draws data, initial weights and batch order once, in
the core), so they may differ only by floating-point rounding. :func:`compare` measures that
difference and flags any backend beyond :data:`TOLERANCE`, the bound ``tests/test_cross_backend.py``
asserts (see its docstring for the measured worst cases): relative to the reference, on the test-loss
curve epoch by epoch and on w measured against max|w_ref|.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backend import backend_class
from .config import make_config
from .errors import ConfigError
from .model import weight_names
from .table import Table
from .training import Run, train
from .validate import check_backends, lambda_list, seed_list

#: Largest relative difference from the NumPy float64 reference that counts as agreement, per dtype.
TOLERANCE = {"float32": 1e-4, "float64": 1e-12}

COLUMNS = (
    "backend", "version", "lambd", "seed", "dtype", "engine", "train_loss", "test_loss", "w_norm",
    "max_abs_dw", "max_abs_dtest", "seconds", "status",
)


def tolerance(run: Run) -> float:
    """TOLERANCE for the run's dtype; in concise float64 runs, the backend's own (MXNet's optimizer
    takes its hyperparameters in float32)."""
    if run.config.mode == "concise" and run.config.dtype == "float64":
        return backend_class(run.config.backend).concise_float64_rtol
    return TOLERANCE[run.config.dtype]


def differences(run: Run, reference: Run) -> tuple[float, float, bool]:
    """(max |w - w_ref|, max over epochs of |test - test_ref|, within the tolerance); w is every
    weight matrix of the model (the linear model's w), flattened in order."""
    tol = tolerance(run)
    if sorted(run.params) != sorted(reference.params):
        return float("nan"), float("nan"), False
    names = weight_names(reference.params)
    w = np.concatenate([run.params[k].astype(np.float64).ravel() for k in names])
    w_ref = np.concatenate([reference.params[k].ravel() for k in names])
    test, test_ref = run.test_loss, reference.test_loss
    if w.shape != w_ref.shape or test.shape != test_ref.shape:
        return float("nan"), float("nan"), False
    dw = np.abs(w - w_ref)
    dtest = np.abs(test - test_ref)
    ok = bool(np.all(dw <= tol * np.abs(w_ref).max()) and np.all(dtest <= tol * np.abs(test_ref)))
    return float(dw.max()), float(dtest.max()), ok


class Comparison(Table):
    """The comparison table (one row per backend, lambd and seed) and the runs behind it.

    ``str(comparison)`` is the terminal table; also ``to_pandas()``, ``to_csv(path)``,
    ``to_json(path)``, and ``plot(path)`` for the overlay figure.
    """

    columns = COLUMNS

    def __init__(self, rows: list[dict[str, Any]], runs: dict[tuple[str, float, int], Run],
                 references: dict[tuple[float, int, float], Run]) -> None:
        super().__init__(rows)
        self.runs, self.references = runs, references

    @property
    def flagged(self) -> list[dict[str, Any]]:
        """Rows whose backend disagrees with the reference beyond TOLERANCE (or diverged)."""
        return [row for row in self.rows if row["status"] != "ok"]

    def __str__(self) -> str:
        dtypes = sorted({row["dtype"] for row in self.rows})
        tol = ", ".join(f"{TOLERANCE[d]:g} ({d})" for d in dtypes)
        note = (f"max_abs_dw, max_abs_dtest: largest |difference| from the NumPy float64 run; "
                f"status DIFFERS beyond relative {tol}")
        return f"{super().__str__()}\n{note}"

    def figure(self) -> Any:
        """The overlay: one panel per lambd, one line per backend (the first seed), train and test."""
        from .plot import _pyplot, draw

        plt = _pyplot()
        lambdas = sorted({key[1] for key in self.runs})
        seed = min(key[2] for key in self.runs)
        fig, axes = plt.subplots(1, len(lambdas), figsize=(5 * len(lambdas), 3.6), layout="constrained",
                                 squeeze=False)
        for ax, lambd in zip(axes[0], lambdas, strict=True):
            keys = [k for k in self.runs if k[1] == lambd and k[2] == seed]
            draw([self.runs[k] for k in keys], ax, labels=[k[0] for k in keys])
            for i, line in enumerate(ax.lines):  # agreeing backends overlap: widest first, so all show
                line.set_linewidth(1 + 2.5 * (1 - (i // 2) / max(len(keys) - 1, 1)))
            ax.legend(fontsize="small")
            ax.set_title(f"λ = {lambd:g}, seed {seed}")
        return fig

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`figure` to ``path`` (.png, .svg or .pdf), atomically."""
        from .plot import save_figure

        return save_figure(self.figure(), path)


def compare(
    backends: Sequence[str] | str | None = None,
    lambd: float | Sequence[float] = 3,
    preset: str = "d2l",
    seeds: Sequence[int] | int = (0,),
    dtype: str = "float32",
    mode: str = "scratch",
    *,
    data: Any = None,
    test: Any = None,
    **fields: Any,
) -> Comparison:
    """Train every requested backend (default: every installed one) on identical inputs and compare
    each with the NumPy float64 run of the same configuration.

    ``lambd`` may be one value or several (one figure panel each); ``seeds`` likewise. Any other
    :class:`~wdlib.Config` field can be set by keyword. A backend that disagrees beyond
    :data:`TOLERANCE` gets status "DIFFERS" in the table (one that diverged, "diverged").
    ``data=(X, y)`` (and ``test=``) compares the frameworks on your own arrays.
    """
    lambdas = lambda_list(lambd, "lambd")
    seed_values = seed_list(seeds)
    for banned in ("backend", "on_divergence", "rng"):
        if banned in fields:
            raise ConfigError(banned, fields[banned], f"not set here: compare() chooses {banned}",
                              "use backends=... to choose backends" if banned == "backend" else "")
    concise = mode == "concise"
    # Every configuration is validated before any framework is imported or any data generated.
    base = {"dtype": dtype, "mode": mode, "on_divergence": "record", **fields}
    if data is not None:
        from .data import data_config

        first = data_config(data, test, preset, **_penalty(concise, lambdas[0]), **base)[0]  # validated once
        base = {**base, "data": data, "test": test}
    elif test is not None:
        raise ConfigError("test", "a test set", "None unless data=(X, y) is given")
    else:
        first = make_config(preset, **_penalty(concise, lambdas[0]), **base)
        for lam in lambdas[1:]:
            make_config(preset, **_penalty(concise, lam), **base)
    names = check_backends(backends)

    # In concise mode each framework trains on its own standard loss; a loss `scale` times the scratch
    # loss makes concise(wd, lr) equal NumPy's concise(wd / scale, scale * lr): that is the reference.
    lr = first.lr
    references: dict[tuple[float, int, float], Run] = {}

    def reference(lam: float, seed: int, scale: float) -> Run:
        if (lam, seed, scale) not in references:
            references[(lam, seed, scale)] = train(
                "numpy", preset, **_penalty(concise, lam / scale),
                **{**base, "dtype": "float64", "seed": seed, "lr": lr * scale},
            )
        return references[(lam, seed, scale)]

    rows, runs = [], {}
    for name in names:
        scale = backend_class(name).concise_loss_scale if concise else 1.0
        for lam in lambdas:
            for seed in seed_values:
                run = train(name, preset, **_penalty(concise, lam), **{**base, "seed": seed})
                dw, dtest, ok = differences(run, reference(lam, seed, scale))
                runs[(name, lam, seed)] = run
                rows.append({
                    "backend": name, "version": run.backend_version, "lambd": lam, "seed": seed,
                    "dtype": run.config.dtype, "engine": run.engine,
                    "train_loss": float(run.train_loss[-1]), "test_loss": float(run.test_loss[-1]),
                    "w_norm": run.w_norm, "max_abs_dw": dw, "max_abs_dtest": dtest,
                    "seconds": run.seconds,
                    "status": "diverged" if run.diverged else ("ok" if ok else "DIFFERS"),
                    "test_loss_curve": run.test_loss, "params": run.params,
                })
    return Comparison(rows, runs, references)


def _penalty(concise: bool, lambd: float) -> dict[str, float]:
    """The from-scratch penalty ``lambd``, or in concise mode the optimizer's weight decay ``wd``."""
    return {"wd": lambd, "lambd": 0.0} if concise else {"lambd": lambd}
