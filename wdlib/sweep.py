"""Sweeps: every combination of lambdas, seeds, backends (and any field given as a list), stored.

Each run is independent and deterministic, so a sweep is a set of configurations, each stored once
under the hash of its configuration (:func:`wdlib.store.config_key`). Runs execute on any
``concurrent.futures.Executor``; only the calling process (the driver) writes the store, one
transaction per run as its future completes. Hence:

- rerunning a sweep skips every run already stored;
- a sweep killed at any moment (even with SIGKILL) loses only runs in flight, which a rerun redoes;
- the same call scales out: pass ``distributed.Client(...).get_executor()`` to run on Dask.

Configurations that differ only in ``lambd`` (and have a fast path: L2, ``mode="scratch"``,
``rng="numpy"``, ``engine`` not ``"eager"``) train together, as the columns of one batched run
(:func:`wdlib.train_lambdas`), in chunks of at most :data:`MAX_CHUNK` λ, one task per chunk. A
batched column equals the one-at-a-time run within the cross-backend tolerance (float64 1e-12
relative on w and the test loss, float32 1e-4), not bitwise, and its bits depend on the other λ of
its chunk (measured on every backend). So chunks are formed from the *whole* grid (stored runs
included) in a fixed way, and a chunk with some runs stored is recomputed whole, storing only the
missing runs: a restarted sweep stores exactly the bits of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Container, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import vectorized
from .config import Config, make_config
from .errors import ConfigError
from .limits import check_count, check_run, run_bytes
from .named import check_one_per_name
from .store import Store, check_store_path, config_key
from .sweep_exec import ExecutorError as ExecutorError  # re-exported: wdlib.ExecutorError
from .sweep_exec import check_executor, execute
from .sweep_exec import default_executor as default_executor  # re-exported: wdlib.mainguard uses it
from .sweep_table import SweepTable
from .sweep_worker import RunFailedError as RunFailedError  # re-exported: wdlib.RunFailedError
from .validate import as_list, check_backends, check_supported, lambda_list, seed_list

if TYPE_CHECKING:  # imported where used: concurrent.futures and multiprocessing cost ~7 ms of `import wdlib`
    import concurrent.futures as cf

#: The most λ one batched task trains. Fixed (not derived from the number of workers) because a
#: column's bits depend on its chunk: the same grid must give the same chunks on any executor.
MAX_CHUNK = 64


# --- the grid ------------------------------------------------------------------------------------

#: Config fields whose one value is a tuple (or a dict): a tuple given is one value, a list the values.
TUPLE_FIELDS = ("hidden", "optimizer_args", "penalize")


def setting_values(name: str, value: Any) -> list[Any]:
    """The values a sweep takes a field through: a list's items, or ``value`` alone. For the fields
    whose value is a tuple (``hidden=(8, 16)``: one MLP of two layers, as in train), a tuple or a
    dict is one value, and a list of them the sweep's values."""
    if name in TUPLE_FIELDS and isinstance(value, (tuple, dict)):
        return [value]
    return as_list(value)



def sweep_configs(
    lambdas: Any = None, seeds: Any = (0,), backends: Any = None, *, preset: Any = "d2l", **fields: Any
) -> list[Config]:
    """Every combination as a validated Config (duplicates removed, order kept).

    ``lambdas``, ``seeds``, ``backends``, ``preset`` and any other Config field may each be one value
    or a list. In ``mode="concise"`` the λ grid is the framework's weight decay ``wd`` (as in
    :func:`~wdlib.compare`), unless ``wd=`` gives that grid (``lambdas`` then ``[0]``, its default
    when ``wd`` is given). Imports no framework: backends are checked against the installed packages'
    metadata.
    """
    if lambdas is None:
        if "wd" not in fields:
            raise ConfigError("lambdas", None, "a λ grid (one value or a list)",
                              "or wd=[...] for a grid of the optimizer's weight decay (lambdas then [0])")
        lambdas = [0.0]
    if "on_divergence" in fields:
        raise ConfigError("on_divergence", fields["on_divergence"], "not set in a sweep",
                          "a sweep always records diverged runs (run.diverged) instead of stopping")
    for name, plural in (("lambd", "lambdas"), ("seed", "seeds"), ("backend", "backends")):
        if name in fields:
            raise ConfigError(name, fields[name], "not a sweep() keyword", f"use {plural}=... (plural)")
    axes: dict[str, list[Any]] = {
        "backend": check_backends(backends),
        "preset": as_list(preset),
        **{name: setting_values(name, value) for name, value in fields.items()},
        "lambd": lambda_list(lambdas),
        "seed": seed_list(seeds),
    }
    for name, values in axes.items():
        if not values:
            raise ConfigError(name, values, "at least one value", f"give {name} one value or a list")
    check_count("the sweep grid", " x ".join(f"{len(v)} {k}" for k, v in axes.items()),
                math.prod(len(v) for v in axes.values()))
    configs: dict[str, Config] = {}
    for combo in itertools.product(*axes.values()):
        chosen = dict(zip(axes, combo, strict=True))
        if chosen.get("mode") == "concise" and "wd" not in fields:
            chosen["wd"], chosen["lambd"] = chosen["lambd"], 0.0
        elif chosen.get("mode") == "concise" and chosen["lambd"]:
            raise ConfigError("lambdas", axes["lambd"], "[0] with mode='concise' and wd=... given",
                              "give the weight-decay grid once: lambdas=... (it is wd in concise mode)")
        config = make_config(chosen.pop("preset"), on_divergence="record", **chosen)
        configs.setdefault(config_key(config), config)
    grid = list(configs.values())
    check_one_per_name(grid)
    check_supported(grid)  # before any worker starts
    check_run(max(grid, key=lambda c: run_bytes(c)[0]), min(MAX_CHUNK, len(axes["lambd"])))
    return grid


def sweep(
    lambdas: Any = None,
    seeds: Any = (0,),
    backends: Any = None,
    *,
    preset: Any = "d2l",
    store: str | os.PathLike[str] | None = "runs.sqlite",
    executor: cf.Executor | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    vectorize: bool = True,
    data: Any = None,
    test: Any = None,
    **fields: Any,
) -> SweepTable:
    """Run every combination of ``lambdas`` x ``seeds`` x ``backends`` (default: every installed
    backend) x any other Config field given as a list (``lambdas`` may be left out when ``wd=`` gives
    the grid: λ is then 0), storing each run in the SQLite ``store``
    (``store=None``: in a temporary store, removed when the sweep returns; the table keeps the runs).

    Runs already in the store are skipped. Runs execute on ``executor`` (any
    ``concurrent.futures.Executor``; default: a process pool of ``workers`` processes, one per CPU).
    A run whose loss diverges is stored with ``diverged`` set, and the sweep goes on. Returns the
    table of this sweep's runs, in grid order.

    With ``vectorize=True`` (default), runs that differ only in ``lambd`` and have a fast path train
    as one batched run per chunk of at most 64 λ (:func:`wdlib.train_lambdas`; stored with
    ``engine_used="vectorized"``). Their numbers equal the one-at-a-time runs' within the
    cross-backend tolerance (float64 1e-12 relative on w and the test loss, float32 1e-4), not
    bitwise; the chunks are fixed by the whole grid, so rerunning or resuming the same sweep stores
    the same bits. ``vectorize=False`` runs every configuration alone, each row then bitwise equal to
    :func:`wdlib.train` of its configuration; it refuses a store holding vectorized rows of the grid.

    ``data=(X, y)`` (and ``test=(X_test, y_test)``) sweeps your own arrays, validated once here; every
    run's store key includes their fingerprint.

    >>> table = wdlib.sweep(numpy.linspace(0, 10, 11), seeds=range(3), backends=["numpy"])  # doctest: +SKIP
    >>> table.plot("sweep.png")  # doctest: +SKIP
    """
    # Everything is checked before a framework is imported, data generated or the store touched.
    check_executor(executor, workers)
    if store is not None and not isinstance(store, (str, os.PathLike)):
        raise ConfigError("store", store, "a file path (a str or os.PathLike), e.g. 'runs.sqlite', or "
                          "None to keep the runs only in the returned table")
    if not isinstance(vectorize, bool):
        raise ConfigError("vectorize", vectorize, "True or False")
    arrays = None
    if data is not None:
        from .data import data_config

        probe = {k: setting_values(k, v)[0] for k, v in fields.items()}
        config, arrays = data_config(data, test, **probe)
        fields = {**fields, **{k: getattr(config, k) for k in
                               ("dataset", "data_fingerprint", "n_train", "n_test", "num_inputs")}}
    elif test is not None:
        raise ConfigError("test", "a test set", "None unless data=(X, y) is given")
    configs = sweep_configs(lambdas, seeds, backends, preset=preset, **fields)
    if store is None:  # a store of its own, gone when the sweep returns: the table has every row
        import tempfile

        with tempfile.TemporaryDirectory(prefix="wdlib-sweep-") as folder:
            rows, computed = _run_grid(Path(folder) / "runs.sqlite", configs, executor, workers, progress,
                                       vectorize, arrays)
    else:
        check_store_path(store)
        rows, computed = _run_grid(store, configs, executor, workers, progress, vectorize, arrays)
    return SweepTable(rows, computed=computed, skipped=len(configs) - computed,
                      store=None if store is None else Path(store), arrays=arrays)


def _run_grid(store: str | os.PathLike[str], configs: list[Config], executor: cf.Executor | None,
              workers: int | None, progress: bool | None, vectorize: bool,
              arrays: tuple[Any, ...] | None) -> tuple[list[dict[str, Any]], int]:
    """Run the configurations ``store`` lacks; (the stored rows of every configuration, how many ran)."""
    with Store(store) as db:
        if not vectorize:
            _refuse_vectorized_rows(db, configs, store)
        tasks = plan_tasks(configs, db.keys(config_key(c) for c in configs), vectorize=vectorize)
        computed = sum(len(missing) for _, missing in tasks)
        if tasks:
            execute(tasks, db, executor, workers, progress, arrays)
        return list(db.records(config_key(c) for c in configs)), computed


def _refuse_vectorized_rows(db: Store, configs: Sequence[Config], store: Any) -> None:
    """``vectorize=False`` promises rows bitwise equal to wdlib.train; a store keeps one row per
    configuration, so one that holds batched rows of this grid cannot keep that promise."""
    batched = [r for r in db.records(config_key(c) for c in configs) if r["engine_used"] == "vectorized"]
    if batched:
        raise ConfigError("vectorize", False, f"True with store={str(store)!r}: it holds {len(batched)} runs "
                          "of this grid trained vectorized (engine_used='vectorized'), which vectorize=False "
                          "would return instead of runs bitwise equal to wdlib.train",
                          "sweep into another store, or keep vectorize=True")


#: One task of a sweep: the configurations it trains (one, or a chunk differing only in lambd,
#: sorted by lambd), and those of them to store (the ones not stored yet).
Task = tuple[list[Config], list[Config]]


def plan_tasks(configs: Sequence[Config], stored: Container[str], *, vectorize: bool = True) -> list[Task]:
    """The tasks that compute every configuration of ``configs`` whose key is not in ``stored``,
    in the order of their first configuration in ``configs``.

    With ``vectorize``, the configurations with a fast path (:func:`wdlib.vectorized.supports`,
    ``engine`` not "eager") that share every field but ``lambd`` form a group; a group of two or
    more is split, sorted by lambd, into ceil(size / MAX_CHUNK) chunks of near-equal size, each one
    batched task. The chunks depend on ``configs`` alone, never on ``stored``: a chunk with some of
    its runs stored is trained whole, and only its missing runs are stored.
    """
    groups: dict[tuple[Any, ...], list[Config]] = {}
    if vectorize:
        for config in configs:
            if config.engine != "eager" and vectorized.supports(config):
                groups.setdefault(_without_lambd(config), []).append(config)
    chunk_of: dict[str, list[Config]] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda c: c.lambd)
        count = -(-len(members) // MAX_CHUNK)
        size, extra = divmod(len(members), count)
        start = 0
        for i in range(count):
            chunk = members[start : start + size + (i < extra)]
            start += len(chunk)
            for config in chunk:
                chunk_of[config_key(config)] = chunk
    tasks: list[Task] = []
    planned: set[str] = set()
    for config in configs:
        key = config_key(config)
        if key in planned:
            continue
        unit = chunk_of.get(key, [config])
        planned.update(config_key(c) for c in unit)
        missing = [c for c in unit if config_key(c) not in stored]
        if missing:
            tasks.append((unit, missing))
    return tasks


def _without_lambd(config: Config) -> tuple[Any, ...]:
    return tuple(getattr(config, f.name) for f in dataclasses.fields(Config) if f.name != "lambd")
