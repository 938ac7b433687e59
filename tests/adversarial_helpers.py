"""Fixtures of the adversarial tables (tests/test_adversarial_*.py): a store holding vectorized rows,
its contents as bytes, and the misbehaving backends and executors the cases use."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import wdlib
from wdlib_numpy import NumpyBackend

#: The memory every case sees (WDLIB_MEMORY_LIMIT): fixed, so the size refusals do not depend on the machine.
LIMIT = "1G"
#: The stored grid: two λ of one configuration, trained as one vectorized chunk.
STORED = {"lambdas": [0.0, 1.0], "backends": ["numpy"], "num_epochs": 3}


def make_store(path: Path) -> Path:
    with cf.ThreadPoolExecutor(1) as pool:
        table = wdlib.sweep(store=path, executor=pool, **STORED)
    assert {row["engine_used"] for row in table.rows} == {"vectorized"}
    return path


def contents(path: Path) -> list[tuple[Any, ...]]:
    """Every stored row, as SQLite has it (read-only: reading changes nothing)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("SELECT * FROM runs ORDER BY key").fetchall()


def loads_with(error: Exception) -> type[NumpyBackend]:
    """A backend whose framework import raises ``error``."""

    class Failing(NumpyBackend):
        name = f"load-{type(error).__name__.lower()}"

        def load(self) -> None:
            raise error

    return Failing


def plans_with(change: Callable[[Any], Any]) -> type[NumpyBackend]:
    """A backend whose fit_plan result is ``change(correct result)``."""

    class Wrong(NumpyBackend):
        name = "wrong-plan"

        def fit_plan(self, plan: Any) -> Any:
            return change(super().fit_plan(plan))

    return Wrong


class NoFastPathUnloadable(NumpyBackend):
    """No fit_plan, and a framework that cannot load: a check that runs after load() is too late."""

    name = "no-fast-path"
    fit_plan = wdlib.Backend.fit_plan

    def load(self) -> None:
        raise RuntimeError("the framework was imported: checks ran too late")


def named(name: str) -> type[NumpyBackend]:
    return type("Named", (NumpyBackend,), {"name": name})


class FailingExecutor(cf.Executor):
    """An executor whose every task fails with ``error`` (a broken pool, a worker out of memory)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        future.set_exception(self.error)
        return future


def shut_down() -> cf.Executor:
    pool = cf.ThreadPoolExecutor(1)
    pool.shutdown()
    return pool


class FakeEntryPoint:
    """A ``wdlib.backends`` entry point whose ``load()`` gives ``value`` or raises it."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def load(self) -> Any:
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


def problem_with(**changes: Any) -> wdlib.Problem:
    """The chapter's problem (3 epochs) with some arrays replaced, as a user might build one."""
    config = wdlib.make_config(num_epochs=3)
    problem = wdlib.make_problem(config)
    arrays = {k: v(problem) if callable(v) else v for k, v in changes.items()}
    return dataclasses.replace(problem, **arrays)


def poisoned(name: str, value: float) -> Callable[[wdlib.Problem], np.ndarray]:
    def change(problem: wdlib.Problem) -> np.ndarray:
        arr = getattr(problem, name).copy()
        arr.flat[0] = value
        return arr

    return change
