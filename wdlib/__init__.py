"""wdlib: weight decay (L2 regularization) experiments on any framework.

>>> import wdlib
>>> run = wdlib.train(backend="numpy", lambd=3)
>>> run.w_norm < 1
True

Importing wdlib imports no deep learning framework; a backend imports its own on first use.
"""

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
    PENALTIES,
    ElasticNet,
    Linear,
    Model,
    Objective,
    Penalty,
    l1_penalty,
    l2_penalty,
    linreg,
    mean_loss,
    register_penalty,
    sgd_step,
    squared_loss,
)
from .plot import plot
from .ridge import RidgePath, RidgeSolution, ridge, ridge_path
from .semantics import convert, decay_semantics
from .store import Store, StoreError
from .sweep import ExecutorError, sweep
from .sweep_table import SweepTable, load_sweep
from .training import Run, fit, train, train_lambdas, train_sequence

__version__ = "0.1.0"

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
