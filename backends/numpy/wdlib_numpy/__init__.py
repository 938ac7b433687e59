"""NumPy backend: the reference. Gradients are the hand-derived ones of :class:`wdlib.Objective`."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from wdlib import Backend, Objective
from wdlib.model import Params


class NumpyBackend(Backend):
    name = "numpy"
    framework = "numpy"
    install = "pip install numpy"

    def context(self, dtype: str) -> contextlib.AbstractContextManager[Any]:
        # A diverging run overflows to inf/NaN; the core detects and reports that, so stay quiet here.
        return np.errstate(over="ignore", invalid="ignore")

    def asarray(self, x: np.ndarray, dtype: str) -> np.ndarray:
        return np.array(x, dtype=dtype)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def take(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return x[idx]

    def dot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a @ b

    def sign(self, a: np.ndarray) -> np.ndarray:
        return np.sign(a)

    def grad(self, objective: Objective, params: Params, X: np.ndarray, y: np.ndarray) -> Params:
        return objective.gradient(self, params, X, y)
