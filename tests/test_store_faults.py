"""A store under trouble (issue 16): locked by another process, read-only, copied while in use,
damaged rows, a full disk. Each gives one clear StoreError (or a warning) and loses no stored run."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import errno
import shutil
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import FailingConnection, raw_rows, read_only, small_disk
from sweep_grid import comparable

import wdlib
from wdlib.cli import main
from wdlib.store import StoreWarning, config_key, result_record

GRID = {"lambdas": [0, 1, 3], "seeds": [0], "backends": ["numpy"], "num_epochs": 5}


@pytest.fixture(scope="module")
def record() -> dict:
    return result_record(wdlib.train("numpy", lambd=3, num_epochs=5, seed=4))


def _store(path: Path, record: dict, n: int = 3) -> Path:
    with wdlib.Store(path) as store:
        for seed in range(n):
            store.put(wdlib.make_config(lambd=3, seed=seed, num_epochs=5), record)
    return path


def _one_line(err: BaseException, *, says: str) -> None:
    """``err`` is a StoreError (not sqlite3's), one line saying ``says``, and no advice to delete; a lock
    or a full disk is exactly a StoreFaultError (the machine's fault: the command line exits 1)."""
    from wdlib.store_file import StoreFaultError

    message = str(err)
    fault = "is locked by another process" in says or "the disk is full" in says
    assert type(err) is (StoreFaultError if fault else wdlib.StoreError), type(err)
    assert says in message and "\n" not in message, message
    assert "not a wdlib store" not in message and "delete" not in message and "remove" not in message


# --- locked by another process ------------------------------------------------------------------

HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
for statement in sys.argv[2:]:
    db.execute(statement).fetchall()
print("holding", flush=True)
time.sleep(120)
"""


@contextlib.contextmanager
def _held(path: Path, *statements: str) -> Iterator[None]:
    """Another process holding a lock on ``path`` (after running ``statements``) until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), *statements],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        yield
    finally:
        holder.kill()
        holder.wait()


def test_put_while_another_process_writes_waits_then_says_locked(tmp_path: Path, record: dict) -> None:
    path = _store(tmp_path / "s.sqlite", record)
    before = raw_rows(path)
    with wdlib.Store(path, timeout=0.5) as store:
        with _held(path, "BEGIN IMMEDIATE"):
            start = time.monotonic()
            with pytest.raises(wdlib.StoreError) as err:
                store.put(wdlib.make_config(lambd=3, seed=9, num_epochs=5), record)
            waited = time.monotonic() - start
            assert store.keys() == {row[0] for row in before}  # reading goes on meanwhile
        _one_line(err.value, says="is locked by another process (waited 0.5 s to store a run)")
        assert waited >= 0.5 and isinstance(err.value.__cause__, sqlite3.OperationalError)
        assert raw_rows(path) == before
        assert store.put(wdlib.make_config(lambd=3, seed=9, num_epochs=5), record)  # lock gone: works
    assert len(raw_rows(path)) == len(before) + 1


@pytest.mark.parametrize("hold", [
    ("BEGIN IMMEDIATE", "CREATE TABLE t (x)"),  # an empty file another process is making a database
    ("PRAGMA locking_mode=EXCLUSIVE", "BEGIN EXCLUSIVE", "SELECT count(*) FROM runs"),  # on a store
])
def test_opening_a_locked_file_says_locked(tmp_path: Path, record: dict, hold: tuple[str, ...]) -> None:
    path = tmp_path / "s.sqlite"
    if "runs" in hold[-1]:
        _store(path, record)
    else:
        path.touch()
    before = path.read_bytes()
    with _held(path, *hold), pytest.raises(wdlib.StoreError) as err:
        wdlib.Store(path, timeout=0.3)
    _one_line(err.value, says="is locked by another process (waited 0.3 s")
    assert path.read_bytes() == before


# --- read-only ------------------------------------------------------------------------------------


def test_reading_never_makes_a_store(tmp_path: Path) -> None:
    empty_db = tmp_path / "empty-db.sqlite"
    with contextlib.closing(sqlite3.connect(empty_db)) as db:
        db.execute("PRAGMA user_version=7")  # a SQLite file with no table
    cases = [(tmp_path / "missing.sqlite", "does not exist: expected an existing wdlib store"),
             (tmp_path / "empty.sqlite", "is an empty file, not an existing wdlib store"),
             (empty_db, "is an empty SQLite file, not an existing wdlib store"),
             (tmp_path, "is a folder")]
    (tmp_path / "empty.sqlite").touch()
    files = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    for path, says in cases:
        for read in (wdlib.load_sweep, lambda p: wdlib.Store(p, readonly=True)):
            with pytest.raises(wdlib.StoreError, match=says):
                read(path)
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == files


def test_a_store_in_a_read_only_folder_loads_and_exports(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    table = wdlib.sweep(**GRID, store=folder / "runs.sqlite", executor=cf.ThreadPoolExecutor(1))
    assert sorted(p.name for p in folder.iterdir()) == ["runs.sqlite"]  # closed: the log checkpointed
    with read_only(folder):
        assert comparable(wdlib.load_sweep(folder / "runs.sqlite")) == comparable(table)
        argv = ["sweep", "--store", str(folder / "runs.sqlite"), "--export", str(tmp_path / "t.csv")]
        assert main(argv) == 0
        assert (tmp_path / "t.csv").read_text().count("\n") == 1 + len(table)
        with wdlib.Store(folder / "runs.sqlite", readonly=True) as store:
            assert len(store) == 3
            with pytest.raises(wdlib.StoreError, match="opened with readonly=True"):
                store.put(wdlib.make_config(), {})
        with pytest.raises(wdlib.StoreError, match="is not writable"):
            wdlib.Store(folder / "runs.sqlite")
        assert sorted(p.name for p in folder.iterdir()) == ["runs.sqlite"]
    capsys.readouterr()


def test_readonly_reader_sees_a_live_writers_commits(tmp_path: Path, record: dict) -> None:
    path = tmp_path / "s.sqlite"
    with wdlib.Store(path) as writer:
        writer.put(wdlib.make_config(seed=1), record)
        with wdlib.Store(path, readonly=True) as reader:
            assert len(reader) == 1
            writer.put(wdlib.make_config(seed=2), record)
            assert reader.keys() == {config_key(wdlib.make_config(seed=s)) for s in (1, 2)}


# --- copying: the .sqlite alone holds every committed run ---------------------------------------


def test_closing_checkpoints_so_the_file_alone_is_the_store(tmp_path: Path, record: dict) -> None:
    path = tmp_path / "s.sqlite"
    _store(path, record, n=1)
    with contextlib.closing(sqlite3.connect(path)) as other:  # another connection stays open, so
        other.execute("SELECT count(*) FROM runs").fetchall()  # SQLite's last-close checkpoint waits
        _store(path, record, n=5)
        table = wdlib.sweep(**GRID, store=path, executor=cf.ThreadPoolExecutor(1))
        assert Path(f"{path}-wal").stat().st_size == 0  # everything moved into the file
        copy = tmp_path / "copy" / "s.sqlite"
        copy.parent.mkdir()
        shutil.copy(path, copy)  # the .sqlite file alone
    with wdlib.Store(copy, readonly=True) as store:
        assert len(store) == 5 + 3 and store.integrity_check() == "ok"
    assert comparable(wdlib.sweep(**GRID, store=copy, executor=cf.ThreadPoolExecutor(1))) == comparable(table)


# --- damaged rows ---------------------------------------------------------------------------------

DAMAGE = {
    "params blob": "UPDATE runs SET params = X'504b0304deadbeef' WHERE key = :key",
    "loss blob": "UPDATE runs SET test_loss = substr(test_loss, 1, 40) WHERE key = :key",
    "edited config": "UPDATE runs SET config = replace(config, '1.0', '2.0') WHERE key = :key",
    "config not JSON": "UPDATE runs SET config = '{\"lambd\": ' WHERE key = :key",
    "wrong key": "UPDATE runs SET key = 'f' || substr(key, 2) WHERE key = :key",
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_row_is_skipped_with_a_warning_and_a_sweep_restores_it(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "runs.sqlite"
    table = wdlib.sweep(**GRID, store=path, executor=cf.ThreadPoolExecutor(1))
    key = next(row["key"] for row in table.rows if row["lambd"] == 1.0)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute(DAMAGE[damage], {"key": key}).rowcount == 1
        db.commit()
    before = raw_rows(path)
    with pytest.warns(StoreWarning, match="1 damaged rows skipped") as caught:
        loaded = wdlib.load_sweep(path)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert comparable(loaded) == [r for r in comparable(table) if r["key"] != key]
    assert raw_rows(path) == before  # reading changed nothing
    moved = damage == "wrong key"  # the damaged row is under no key of the grid: it stays, skipped
    for step in ("sweep", "load"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if step == "sweep":
                again = wdlib.sweep(**GRID, store=path, executor=cf.ThreadPoolExecutor(1))
                assert (again.computed, again.skipped) == (1, 2)
            else:
                again = wdlib.load_sweep(path)
        assert comparable(again) == comparable(table)  # the same bits as before the damage
        said = [str(w.message) for w in caught if issubclass(w.category, StoreWarning)]
        assert len(said) == ((step == "sweep") != moved)  # the sweep replaces the row it finds damaged
        assert all("1 damaged rows skipped" in message for message in said)
    assert len(raw_rows(path)) == 3 + moved


def test_a_dropped_table_is_a_clear_error(tmp_path: Path, record: dict) -> None:
    path = _store(tmp_path / "s.sqlite", record)
    with wdlib.Store(path) as store, contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("DROP TABLE runs")
        db.commit()
        with pytest.raises(wdlib.StoreError) as err:
            list(store.records())
        _one_line(err.value, says="is damaged: no such table: runs (dropped?)")
    for open_store in (wdlib.Store, wdlib.load_sweep):
        with pytest.raises(wdlib.StoreError) as err:
            open_store(path)
        _one_line(err.value, says="is damaged: its table 'runs' is missing")


def test_a_truncated_file_is_a_clear_error(tmp_path: Path, record: dict) -> None:
    path = _store(tmp_path / "s.sqlite", record, n=40)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for open_store in (wdlib.Store, wdlib.load_sweep):
        with pytest.raises(wdlib.StoreError) as err:
            open_store(path)
        _one_line(err.value, says="is damaged: SQLite says 'database disk image is malformed'")


# --- a full disk ----------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [sqlite3.OperationalError("database or disk is full"),
                                   OSError(errno.ENOSPC, "No space left on device")])
def test_put_on_a_full_disk_says_so_and_keeps_the_stored_runs(
    tmp_path: Path, record: dict, error: BaseException
) -> None:
    path = _store(tmp_path / "s.sqlite", record)
    before = raw_rows(path)
    with wdlib.Store(path) as store:
        real = store._db
        store._db = FailingConnection(real, lambda sql: sql.startswith("INSERT"), error)
        with pytest.raises(wdlib.StoreError) as err:
            store.put(wdlib.make_config(lambd=3, seed=9, num_epochs=5), record)
        assert store._db.failed == 1
        _one_line(err.value, says="the disk is full (could not store a run); the runs stored before are kept")
        store._db = real
        assert not real.in_transaction and raw_rows(path) == before
        assert store.put(wdlib.make_config(lambd=3, seed=9, num_epochs=5), record)  # space again: works


def test_a_store_filling_a_real_disk(tmp_path: Path, record: dict) -> None:
    """A 192 KiB tmpfs: puts succeed until the disk is full, then one StoreError; every run stored
    before it is intact, in the open store and after reopening."""
    with small_disk(tmp_path / "disk", "192k") as disk:
        path = disk / "s.sqlite"
        stored = []
        with wdlib.Store(path) as store:
            for seed in range(1000):
                config = wdlib.make_config(lambd=3, seed=seed, num_epochs=5)
                try:
                    store.put(config, record)
                except wdlib.StoreError as err:
                    _one_line(err, says="the disk is full (could not store a run)")
                    break
                stored.append(config_key(config))
            else:
                pytest.fail("a 192 KiB disk held 1000 runs")
            assert store.keys() == set(stored) and store.integrity_check() == "ok"
        assert len(stored) > 10
        with wdlib.Store(path, readonly=True) as store:
            assert store.keys() == set(stored)
