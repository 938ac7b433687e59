"""Schema-1 stores (tests/data/store_v1.sqlite, written by wdlib's v1 code: tests/store_v1_fixture.py)
open with nothing lost: migrated in one transaction, or read as they are when opened read-only."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import errno
import io
import json
import multiprocessing
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from store_helpers import FailingConnection, raw_rows, small_disk
from store_v1_fixture import FIXTURE, GRIDS, NEGATIVE_ZERO
from sweep_grid import comparable

import wdlib
from wdlib import store as store_module
from wdlib.store import StoreWarning, config_key
from wdlib.store_v1 import LEFTOVER_TABLE, V1_COLUMNS

RESULTS = ("backend_version", "engine_used", "seconds", "diverged_at_epoch", "final_train_loss",
           "final_test_loss", "w_norm", "stored_at")


def _array(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


def _v1_rows(path: Path) -> list[dict[str, Any]]:
    """The v1 rows as v1 stored them, in the order they were stored."""
    rows = [dict(zip(V1_COLUMNS, r, strict=True)) for r in
            sqlite3.connect(path).execute(f"SELECT {', '.join(V1_COLUMNS)} FROM runs")]
    return sorted(rows, key=lambda r: (r["stored_at"], r["key"]))


def _version(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    path = tmp_path / "v1.sqlite"
    shutil.copy(FIXTURE, path)
    assert _version(path) == "1" and len(_v1_rows(path)) == 11
    return path


def _migrate(path: Path) -> None:
    with pytest.warns(StoreWarning, match=f"10 runs; 1 rows .* in its table {LEFTOVER_TABLE}"):
        wdlib.Store(path).close()


def _check_row(row: dict[str, Any], old: dict[str, Any]) -> None:
    """A schema-2 record holds exactly what the v1 row held."""
    assert {k: row[k] for k in json.loads(old["config"])} == json.loads(old["config"])
    assert {k: row[k] for k in RESULTS} == {k: old[k] for k in RESULTS}
    assert row["diverged"] is bool(old["diverged"])
    for name in ("train_loss", "test_loss", "w", "b"):
        array = _array(old[name])
        got = [row[name]] + ([row["params"][name]] if name in ("w", "b") else [])
        assert all(g.dtype == array.dtype and g.shape == array.shape for g in got)
        assert all(g.tobytes() == array.tobytes() for g in got)


def test_migration_keeps_every_row_with_equal_arrays(v1: Path) -> None:
    before = _v1_rows(v1)
    _migrate(v1)
    assert _version(v1) == "2"
    with wdlib.Store(v1) as store:
        rows = {row["key"]: row for row in store.records()}
        assert store.integrity_check() == "ok"
    assert len(rows) == len(before) - 1  # lambd=-0.0 is the same configuration as lambd=0.0
    kept: set[str] = set()
    for old in before:
        # The key a Config rebuilt from the v1 JSON has (fields v1 did not have take their defaults).
        key = config_key(wdlib.make_config(**json.loads(old["config"])))
        if key in kept:  # the repeat, stored after the original: set aside verbatim
            assert json.loads(old["config"])["lambd"] == NEGATIVE_ZERO["lambd"]
            (leftover,) = raw_rows(v1, LEFTOVER_TABLE)
            assert leftover[:-1] == tuple(old[c] for c in V1_COLUMNS)
            assert "same configuration" in leftover[-1] and key in leftover[-1]
            continue
        _check_row(rows[key], old)
        kept.add(key)
    assert kept == set(rows)


def test_a_sweep_over_the_v1_grids_finds_every_run(v1: Path) -> None:
    _migrate(v1)
    stored = {row["key"]: row["stored_at"] for row in wdlib.load_sweep(v1).rows}
    found = 0
    for grid in GRIDS:
        table = wdlib.sweep(**grid, store=v1, executor=cf.ThreadPoolExecutor(1), progress=False)
        assert (table.computed, table.skipped) == (0, len(table))
        assert {row["key"]: row["stored_at"] for row in table.rows} == {
            row["key"]: stored[row["key"]] for row in table.rows}  # the v1 rows, not recomputed
        found += len(table)
    assert found == len(stored) == 10


def test_readonly_reads_v1_as_it_is_and_changes_nothing(v1: Path, tmp_path: Path) -> None:
    before = v1.read_bytes()
    with wdlib.Store(v1, readonly=True) as store:
        assert store.version == 1
        as_is = wdlib.SweepTable(list(store.records()))
        assert len(store) == 10 and config_key(wdlib.make_config(**{
            k: as_is[0][k] for k in wdlib.Config.__dataclass_fields__})) in store
    assert v1.read_bytes() == before and _version(v1) == "1"
    assert comparable(wdlib.load_sweep(v1)) == comparable(as_is)  # load_sweep reads it read-only too
    assert v1.read_bytes() == before
    migrated = tmp_path / "migrated.sqlite"
    shutil.copy(FIXTURE, migrated)
    _migrate(migrated)
    assert comparable(wdlib.load_sweep(migrated)) == comparable(as_is)


def _open(path: str, barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        wdlib.Store(path).close()
    except Exception as err:
        errors.put(repr(err))


def test_processes_opening_a_v1_store_at_once_migrate_it_once(v1: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, errors = ctx.Barrier(3), ctx.Queue()
    workers = [ctx.Process(target=_open, args=(str(v1), barrier, errors)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * 3 and errors.empty()
    assert _version(v1) == "2" and len(raw_rows(v1)) == 10 and len(raw_rows(v1, LEFTOVER_TABLE)) == 1


@pytest.mark.parametrize("error", [sqlite3.OperationalError("database or disk is full"),
                                   OSError(errno.ENOSPC, "No space left on device")])
def test_a_migration_that_fails_leaves_the_v1_store_as_it_was(
    v1: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    before = raw_rows(v1)

    def connect(*args: Any, **kwargs: Any) -> FailingConnection:  # the 5th migrated row fails
        calls = iter(range(100))
        fails = lambda sql: sql.startswith("INSERT INTO runs ") and next(calls) == 4  # noqa: E731
        return FailingConnection(real(*args, **kwargs), fails, error)

    real = store_module.connect
    monkeypatch.setattr(store_module, "connect", connect)
    with pytest.raises(wdlib.StoreError, match=r"the disk is full .*runs stored before are kept") as err:
        wdlib.Store(v1)
    assert "\n" not in str(err.value)
    monkeypatch.undo()
    assert _version(v1) == "1" and raw_rows(v1) == before


def test_a_migration_on_a_full_disk_leaves_the_v1_store_as_it_was(tmp_path: Path) -> None:
    """A real full disk: a tmpfs that holds the v1 file and SQLite's 32 KiB -shm index, not the
    migration's write-ahead log."""
    pages = FIXTURE.stat().st_size // 4096 + 8 + 2
    with small_disk(tmp_path / "disk", f"{pages * 4}k") as disk:
        path = disk / "v1.sqlite"
        shutil.copy(FIXTURE, path)
        before = raw_rows(path)
        with pytest.raises(wdlib.StoreError, match="the disk is full"):
            wdlib.Store(path)
        assert _version(path) == "1" and raw_rows(path) == before
        with wdlib.Store(path, readonly=True) as store:
            assert len(store) == 10
