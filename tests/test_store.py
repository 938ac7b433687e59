"""The SQLite results store: exact round trip, stable keys, and refusal of files it does not own."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import wdlib
from wdlib.store import APPLICATION_ID, SCHEMA_VERSION, config_key, result_record


@pytest.fixture(scope="module")
def run() -> wdlib.Run:
    return wdlib.train("numpy", lambd=3, num_epochs=5, seed=4)


def test_round_trip_is_exact_and_put_is_idempotent(tmp_path: Path, run: wdlib.Run) -> None:
    with wdlib.Store(tmp_path / "s.sqlite") as store:
        assert store.put(run.config, result_record(run)) is True
        assert store.put(run.config, result_record(run)) is False  # already stored: kept as is
        assert len(store) == 1 and config_key(run.config) in store
        (row,) = store.records()
    for name, array in [("train_loss", run.train_loss), ("test_loss", run.test_loss),
                        ("w", run.params["w"]), ("b", run.params["b"])]:
        assert row[name].dtype == array.dtype and row[name].shape == array.shape
        assert row[name].tobytes() == array.tobytes()
    assert {k: row[k] for k in dataclasses.asdict(run.config)} == dataclasses.asdict(run.config)
    assert row["w_norm"] == run.w_norm and row["final_test_loss"] == run.test_loss[-1]
    assert row["backend_version"] == run.backend_version and row["diverged"] is False
    assert row["key"] == config_key(run.config)


def test_file_is_a_wal_sqlite_database_with_wdlib_id(tmp_path: Path, run: wdlib.Run) -> None:
    with wdlib.Store(tmp_path / "s.sqlite") as store:
        store.put(run.config, result_record(run))
        assert store.integrity_check() == "ok"
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert version == str(SCHEMA_VERSION)
    db.close()


def test_key_covers_every_field_and_is_stable_across_processes() -> None:
    config = wdlib.make_config(lambd=3, seed=1)
    keys = {config_key(config)}
    for field, value in [("lambd", 3.5), ("seed", 2), ("dtype", "float64"), ("num_epochs", 7),
                         ("backend", "torch"), ("on_divergence", "record"), ("decay_bias", True)]:
        keys.add(config_key(config.replace(**{field: value})))
    assert len(keys) == 8
    code = ("import wdlib; from wdlib.store import config_key; "
            "print(config_key(wdlib.make_config(lambd=3, seed=1)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == config_key(config)


def _foreign_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()


def _foreign_app_id(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id=1234")
    db.commit()
    db.close()


def _other_schema(path: Path) -> None:
    wdlib.Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()


@pytest.mark.parametrize(("make", "match"), [
    (lambda p: p.write_bytes(b"this is not a database" * 100), "not a wdlib store"),
    (_foreign_sqlite, "another application's SQLite database"),
    (_foreign_app_id, "application_id is 0x4d2"),
    (_other_schema, "schema version 99.*reads version 1"),
])
def test_refuses_files_it_does_not_own_and_leaves_them_untouched(tmp_path: Path, make, match: str) -> None:
    path = tmp_path / "other.sqlite"
    make(path)
    before = path.read_bytes()
    with pytest.raises(wdlib.StoreError, match=match) as err:
        wdlib.Store(path)
    assert isinstance(err.value, ValueError) and "new path" in str(err.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize(("path", "match"), [
    ("missing/folder/runs.sqlite", "folder .* does not exist; create it"),
    (".", "is a folder"),
    ("/sys/runs.sqlite", "not writable"),  # root may write anywhere else; sysfs refuses new files
])
def test_unusable_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str, match: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(wdlib.StoreError, match=match):
        wdlib.Store(path)
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_empty_file_becomes_a_store(tmp_path: Path, run: wdlib.Run) -> None:
    """An empty file (e.g. from ``touch``) is an empty SQLite database: it is initialized."""
    path = tmp_path / "new.sqlite"
    path.touch()
    with wdlib.Store(path) as store:
        store.put(run.config, result_record(run))
    with wdlib.Store(path) as store:
        assert len(store) == 1


def _open_each(paths: list[str], barrier: Any, errors: Any) -> None:
    """In a spawned process: open every store at the same instant as the other processes."""
    for path in paths:
        barrier.wait()
        try:
            wdlib.Store(path).close()
        except Exception as err:  # reported to the test, which fails on it
            errors.put(repr(err))


def test_many_processes_creating_one_store_at_once(tmp_path: Path) -> None:
    """The creation race: each process must find either nothing (and create the store) or a complete
    store; none may see a half-made one, and SQLite's lock while another switches to WAL is waited out."""
    ctx = multiprocessing.get_context("spawn")
    paths = [str(tmp_path / f"s{i}.sqlite") for i in range(25)]
    barrier, errors = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_open_each, args=(paths, barrier, errors)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * 4
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    for path in paths:
        with wdlib.Store(path) as store:
            assert len(store) == 0 and store.integrity_check() == "ok"
