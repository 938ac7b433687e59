"""Shared fixtures: every test that takes ``backend`` runs once per installed backend."""

from __future__ import annotations

import functools

import pytest
import sweep_grid

import wdlib

INSTALLED = wdlib.installed_backends()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", INSTALLED)


@functools.cache
def _reference(preset: str, lambd: float, seed: int, **overrides: object) -> wdlib.Run:
    """The NumPy float64 run every backend is checked against: the eager loop with the hand-derived
    gradient (cached: it is deterministic)."""
    overrides = {"engine": "eager", **overrides}
    return wdlib.train("numpy", preset, lambd=lambd, seed=seed, dtype="float64", **overrides)


@pytest.fixture
def reference():
    """``reference(preset, lambd, seed, **overrides)``: the NumPy float64 run for that config."""
    return _reference


@pytest.fixture(scope="module")
def swept_grid(tmp_path_factory: pytest.TempPathFactory) -> wdlib.SweepTable:
    """GRID swept without interruption, on the default process pool."""
    return wdlib.sweep(**sweep_grid.GRID, store=tmp_path_factory.mktemp("ref") / "runs.sqlite")
