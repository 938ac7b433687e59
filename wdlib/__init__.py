"""wdlib: weight decay (L2 regularization) experiments on any framework.

>>> import wdlib
>>> run = wdlib.train(backend="numpy", lambd=3)
>>> run.w_norm < 1
True

Importing wdlib imports no deep learning framework; a backend imports its own on first use. The
names below are loaded on first access (PEP 562): ``import wdlib`` reads only this file, and
``wdlib.train`` imports what a run needs the first time it is used.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

import numpy  # noqa: F401  (every call works in NumPy arrays; its import time is NumPy's, not wdlib's)

if TYPE_CHECKING:  # the same names for type checkers and editors, which do not run __getattr__
    from . import optim
    from .backend import (
        Backend,
        BackendInfo,
        backend_class,
        backends,
        get_backend,
        installed_backends,
        register_backend,
        temporary_backend,
    )
    from .books import BOOKS, printed_line, reproduce
    from .compare import Comparison, compare
    from .config import PRESETS, Config, make_config
    from .data import Problem, make_problem, synthetic_data
    from .errors import (
        BackendLoadError,
        BackendNotInstalledError,
        ConfigError,
        DivergenceError,
        UnknownBackendError,
        WdlibError,
    )
    from .model import (
        MLP,
        Linear,
        Model,
        Objective,
        linreg,
        mean_loss,
        register_model,
        sgd_step,
        squared_loss,
    )
    from .penalty import PENALTIES, ElasticNet, Penalty, l1_penalty, l2_penalty, register_penalty
    from .plot import plot
    from .ridge import RidgePath, RidgeSolution, ridge, ridge_path
    from .run import Run
    from .semantics import convert, decay_semantics
    from .store import Store, StoreError
    from .sweep import ExecutorError, sweep
    from .sweep_table import SweepTable, load_sweep
    from .training import fit, train, train_lambdas, train_sequence

__version__ = "0.1.0"

#: The public names of each submodule: ``wdlib.NAME`` imports ``wdlib.MODULE`` on first access.
_MODULES: dict[str, tuple[str, ...]] = {
    "optim": ("optim",),
    "backend": (
        "Backend", "BackendInfo", "backend_class", "backends", "get_backend", "installed_backends",
        "register_backend", "temporary_backend",
    ),
    "books": ("BOOKS", "printed_line", "reproduce"),
    "compare": ("Comparison", "compare"),
    "config": ("PRESETS", "Config", "make_config"),
    "data": ("Problem", "make_problem", "synthetic_data"),
    "errors": (
        "BackendLoadError", "BackendNotInstalledError", "ConfigError", "DivergenceError",
        "UnknownBackendError", "WdlibError",
    ),
    "model": (
        "MLP", "Linear", "Model", "Objective", "linreg", "mean_loss", "register_model", "sgd_step",
        "squared_loss",
    ),
    "penalty": ("PENALTIES", "ElasticNet", "Penalty", "l1_penalty", "l2_penalty", "register_penalty"),
    "plot": ("plot",),
    "ridge": ("RidgePath", "RidgeSolution", "ridge", "ridge_path"),
    "semantics": ("convert", "decay_semantics"),
    "store": ("Store", "StoreError"),
    "sweep": ("ExecutorError", "sweep"),
    "sweep_table": ("SweepTable", "load_sweep"),
    "run": ("Run",),
    "training": ("fit", "train", "train_lambdas", "train_sequence"),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first access and kept here after."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    loaded = importlib.import_module(f"{__name__}.{module}")
    value = loaded if name == "optim" else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """wdlib's module type: importing a submodule whose name is also a public function (plot,
    compare, sweep, ridge) binds the function here, not the module, whichever is imported first."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name and name != "optim":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "BOOKS",
    "MLP",
    "PENALTIES",
    "PRESETS",
    "Backend",
    "BackendInfo",
    "BackendLoadError",
    "BackendNotInstalledError",
    "Comparison",
    "Config",
    "ConfigError",
    "DivergenceError",
    "ElasticNet",
    "ExecutorError",
    "Linear",
    "Model",
    "Objective",
    "Penalty",
    "Problem",
    "RidgePath",
    "RidgeSolution",
    "Run",
    "Store",
    "StoreError",
    "SweepTable",
    "UnknownBackendError",
    "WdlibError",
    "backend_class",
    "backends",
    "compare",
    "convert",
    "decay_semantics",
    "fit",
    "get_backend",
    "installed_backends",
    "l1_penalty",
    "l2_penalty",
    "linreg",
    "load_sweep",
    "make_config",
    "make_problem",
    "mean_loss",
    "optim",
    "plot",
    "printed_line",
    "register_backend",
    "register_model",
    "register_penalty",
    "reproduce",
    "ridge",
    "ridge_path",
    "sgd_step",
    "squared_loss",
    "sweep",
    "synthetic_data",
    "temporary_backend",
    "train",
    "train_lambdas",
    "train_sequence",
]
