"""Every backend on the same experiment, checked against the NumPy float64 reference.

All backends train on identical inputs (wdlib draws data, initial weights and batch order once, in
the core), so they may differ only by floating-point rounding. :func:`compare` measures that
difference and flags any backend beyond :data:`TOLERANCE`, the bound ``tests/test_cross_backend.py``
asserts (see its docstring for the measured worst cases): relative to the reference, on the test-loss
curve epoch by epoch (a loss near 0 against :func:`loss_scale`) and on w measured against max|w_ref|.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from .captions import shared_settings
from .config import Config, make_config
from .errors import ConfigError
from .limits import check_runs
from .model import weight_names
from .registry import backend_class
from .semantics import core_config
from .table import Table
from .timing import warm_train
from .training import Run, train
from .validate import check_backends, lambda_list, seed_list

#: Largest relative difference from the NumPy float64 reference that counts as agreement, per dtype.
TOLERANCE = {"float32": 1e-4, "float64": 1e-12}

COLUMNS = (
    "backend", "version", "mode", "lambd", "wd", "seed", "dtype", "engine", "train_loss", "test_loss",
    "w_norm", "max_abs_dw", "max_abs_dtest", "seconds", "status",
)
#: The columns that name a run (the long frame's identity columns).
ID_COLUMNS = COLUMNS[:8]


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
    ok = bool(np.all(dw <= tol * np.abs(w_ref).max()) and np.all(dtest <= tol * loss_scale(reference)))
    return float(dw.max()), float(dtest.max()), ok


def loss_scale(reference: Run) -> np.ndarray:
    """What a test loss's difference is measured against, epoch by epoch: the loss itself, but not
    less than ``sqrt(loss * s)``, ``s`` the loss of predicting 0 (half the mean square of y_test).
    A loss ``r^2 / 2`` whose residuals ``r`` are rounded by ``eps * |y|`` moves by about
    ``|r| eps |y|``: relative to the loss that grows without bound as it nears 0 (a fit without
    noise), relative to ``sqrt(loss * s)`` it stays near ``eps``."""
    test_ref = np.abs(reference.test_loss)
    s = float(np.mean(np.square(reference.problem.y_test))) / 2
    return np.maximum(test_ref, np.sqrt(test_ref * s))


class Comparison(Table):
    """The comparison table (one row per backend, penalty and seed) and the runs behind it.

    ``str(comparison)`` is the terminal table, and a notebook shows it as HTML; ``to_pandas()``
    (``long=True``: one row per run and epoch), ``to_csv(path)``, ``to_json(path)``; ``figure()`` or
    ``plot(path)`` for the overlay figure. ``seconds`` is each run's training loop without the
    framework's first-call compile time (:func:`wdlib.timing.warm_train`).
    """

    columns = COLUMNS
    id_columns = ID_COLUMNS

    def __init__(self, rows: list[dict[str, Any]], runs: dict[tuple[str, float, int], Run],
                 references: dict[Config, Run]) -> None:
        self.runs, self.references = runs, references
        super().__init__([_with_run(row, runs.get((row["backend"], row["lambd"], row["seed"])))
                          for row in rows])

    @property
    def flagged(self) -> list[dict[str, Any]]:
        """Rows whose backend disagrees with the reference beyond TOLERANCE (or diverged)."""
        return [row for row in self.rows if row["status"] != "ok"]

    @property
    def shown(self) -> tuple[str, ...]:
        """Every column, less ``mode`` when there is one, and ``lambd``/``wd`` when no run uses it."""
        modes = {row["mode"] for row in self.rows}
        hide = {"mode"} if len(modes) == 1 else set()
        hide |= {"lambd"} if "scratch" not in modes else set()
        hide |= {"wd"} if "concise" not in modes else set()
        return tuple(c for c in self.columns if c not in hide)

    def caption(self) -> str:
        dtypes = sorted({row["dtype"] for row in self.rows})
        tol = ", ".join(f"{TOLERANCE[d]:g} ({d})" for d in dtypes)
        settings = shared_settings([row["_run"].config for row in self.rows if "_run" in row],
                                   (*self.shown, "backend", "on_divergence"))
        concise = ("\nconcise runs train each framework's own loss and optimizer, so frameworks may "
                   "differ from one another (torch's MSELoss has no 1/2): each is checked against the "
                   "NumPy float64 chain equal to it (wdlib.semantics.core_config)"
                   if any(row["mode"] == "concise" for row in self.rows) else "")
        return (f"max_abs_dw, max_abs_dtest: largest |difference| from the NumPy float64 run; "
                f"status DIFFERS beyond relative {tol}" + (f"\nevery run: {settings}" if settings else "")
                + concise)

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.caption()}"

    def __repr__(self) -> str:
        backends = ", ".join(dict.fromkeys(row["backend"] for row in self.rows))
        penalties = ", ".join(dict.fromkeys(_penalty_text(row) for row in self.rows))
        seeds = sorted({row["seed"] for row in self.rows})
        dtypes = "/".join(sorted({row["dtype"] for row in self.rows}))
        bad = len(self.flagged)
        verdict = "all agree with the NumPy float64 run" if not bad else f"{bad} DIFFER or diverged"
        return (f"<Comparison of {backends}: {penalties}; seed{'s' * (len(seeds) > 1)} "
                f"{', '.join(map(str, seeds))}; {dtypes}; {len(self)} run{'s' * (len(self) != 1)}, "
                f"{verdict}>")

    def figure(self, ax: Any = None) -> Any:
        """The overlay: one panel per penalty value, one colour per backend, train solid and test
        dotted; with several seeds the mean and (shaded) the min-max over seeds. ``ax``: one Axes
        per panel to draw on instead of a new figure."""
        from .plot import curves, panels, titled_settings
        from .sweep_table import data_name, penalty_value

        values = list(dict.fromkeys(sorted((row["mode"], penalty_value(row)) for row in self.rows)))
        fig, axes = panels(ax, len(values), (5 * len(values), 3.6))
        seeds = sorted({row["seed"] for row in self.rows})
        configs = [row["_run"].config for row in self.rows]
        presets = ", ".join([*sorted({data_name(c) for c in configs}), *titled_settings(configs)])
        for axis, (mode, value) in zip(axes, values, strict=True):
            rows = [row for row in self.rows if row["mode"] == mode and penalty_value(row) == value]
            backends = list(dict.fromkeys(row["backend"] for row in rows))
            for i, backend in enumerate(backends):  # agreeing backends overlap: widest first, all show
                mine = [row for row in rows if row["backend"] == backend]
                epochs = max((row["epochs"] for row in mine), key=len)
                curves(axis, epochs, [r["train_loss_curve"] for r in mine],
                       [r["test_loss_curve"] for r in mine], backend,
                       linewidth=1 + 2.5 * (1 - i / max(len(backends) - 1, 1)))
            axis.set_xlabel("epochs")
            axis.set_ylabel("loss")
            axis.legend(fontsize="small")
            seed_text = (f"seed {seeds[0]}" if len(seeds) == 1
                         else f"{len(seeds)} seeds: mean, min–max")
            axis.set_title(f"{presets}: {_penalty_text(rows[0])}, {seed_text}")
        return fig


def _with_run(row: dict[str, Any], run: Run | None) -> dict[str, Any]:
    """The row with its run's mode, λ and wd (a concise run's penalty is wd, not lambd) and its loss
    curves: the table's names for them."""
    if run is None:
        return row
    c = run.config
    return {**row, "mode": c.mode, "lambd": c.lambd, "wd": c.wd, "epochs": run.epochs,
            "train_loss_curve": run.train_loss, "test_loss_curve": run.test_loss, "_run": run}


def _penalty_text(row: dict[str, Any]) -> str:
    return f"wd = {row['wd']:g} (concise)" if row["mode"] == "concise" else f"λ = {row['lambd']:g}"


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
    hints = {"backend": "use backends=... to choose backends", "seed": "use seeds=... (one or several)"}
    for banned in ("backend", "seed", "on_divergence", "rng"):
        if banned in fields:
            raise ConfigError(banned, fields[banned], f"not set here: compare() chooses {banned}",
                              hints.get(banned, ""))
    concise = mode == "concise"
    if concise and "wd" in fields:
        raise ConfigError("wd", fields["wd"], "not set with mode='concise' in compare()",
                          "lambd=... is the weight decay wd in concise mode (one value or several)")
    # Every configuration is validated before any framework is imported or any data generated.
    base = {"dtype": dtype, "mode": mode, "on_divergence": "record", **fields}
    if data is not None:
        from .data import data_config

        first = data_config(data, test, preset, **_penalty(concise, lambdas[0]), **base)[0]  # validated once
        base = {**base, "data": data, "test": test}
    elif test is not None:
        raise ConfigError("test", "a test set", "None unless data=(X, y) is given")
    else:
        first, *_ = [make_config(preset, **_penalty(concise, lam), **base) for lam in lambdas]
    names = check_backends(backends)
    check_runs([first], (len(names) + 1) * len(lambdas) * len(seed_values), "lambd", lambd)  # kept together

    # In concise mode each framework trains on its own loss (torch's MSELoss is twice the books'), with
    # its own optimizer: the reference is the NumPy float64 core chain that equals it step for step.
    references: dict[Config, Run] = {}

    def reference(run: Run, seed: int, scale: float) -> Run:
        fields = {"lambd": run.config.lambd}
        if concise:
            core = core_config(run.config, scale)
            fields = {name: getattr(core, name) for name in ("mode", "lambd", "lr", "wd", "optimizer_args")}
        key = dataclasses.replace(run.config, **fields, backend="numpy", dtype="float64", engine="auto")
        if key not in references:
            references[key] = train("numpy", preset, **{**base, **fields, "dtype": "float64", "seed": seed})
        return references[key]

    rows, runs = [], {}
    for name in names:
        scale = backend_class(name).concise_loss_scale if concise else 1.0
        for lam in lambdas:
            for seed in seed_values:
                run = warm_train(name, preset, **_penalty(concise, lam), **{**base, "seed": seed})
                dw, dtest, ok = differences(run, reference(run, seed, scale))
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
