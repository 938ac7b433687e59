"""Test helper: central finite differences of a scalar function of named arrays."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def finite_difference_grads(f: Callable[[dict], float], params: dict, h: float = 1e-6) -> dict:
    """d f / d params[name][i] for every entry, by central differences of step ``h``."""
    grads = {}
    for name, value in params.items():
        numeric = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            step = np.zeros_like(value)
            step[i] = h
            numeric[i] = (f({**params, name: value + step}) - f({**params, name: value - step})) / (2 * h)
        grads[name] = numeric
    return grads
