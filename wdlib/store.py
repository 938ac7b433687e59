"""A SQLite file of finished runs, one row per run keyed by a hash of its full configuration.

Why SQLite: one file, in the standard library, and a committed transaction survives the writer being
killed at any instant (SIGKILL included): the file then holds every row committed before the kill and
nothing half-written. The store runs in WAL mode, so readers never block the writer; each result is
committed in its own transaction the moment it arrives, which is what lets a killed sweep restart and
redo only what was not stored. Several processes may write at once: SQLite serializes the writers
(each waits up to ``timeout`` seconds for the lock), and a row that is already stored is kept as is.

A file that is not a wdlib store (another application's SQLite database, or any other file) or that
was written by another schema version is refused with a :class:`StoreError`, never modified.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .errors import WdlibError

#: ``PRAGMA application_id`` of a wdlib store: the bytes "WDLB".
APPLICATION_ID = int.from_bytes(b"WDLB", "big")
SCHEMA_VERSION = 1

#: Columns of a stored run besides its configuration fields and loss curves, in table order.
RESULT_COLUMNS = (
    "backend_version", "engine_used", "seconds", "diverged", "diverged_at_epoch",
    "final_train_loss", "final_test_loss", "w_norm",
)
ARRAY_COLUMNS = ("train_loss", "test_loss", "w", "b")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    key TEXT PRIMARY KEY,          -- config_key(config)
    config TEXT NOT NULL,          -- JSON of every Config field
    backend_version TEXT NOT NULL,
    engine_used TEXT NOT NULL,     -- "eager" or "fused": what engine="auto" chose
    seconds REAL NOT NULL,         -- wall time of the training loop
    diverged INTEGER NOT NULL,     -- 0 or 1
    diverged_at_epoch INTEGER,
    final_train_loss REAL,
    final_test_loss REAL,
    w_norm REAL,
    train_loss BLOB NOT NULL,      -- .npy bytes: dtype and shape kept exactly
    test_loss BLOB NOT NULL,
    w BLOB NOT NULL,
    b BLOB NOT NULL,
    stored_at REAL NOT NULL        -- time.time() when the driver committed the row
);
"""


class StoreError(WdlibError, ValueError):
    """The store path cannot be used: missing folder, not writable, not a wdlib store, other schema."""


def config_key(config: Config) -> str:
    """A stable hash of every field of ``config``: equal configurations, equal keys, across processes."""
    text = json.dumps(dataclasses.asdict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _to_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _from_bytes(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


def result_record(run: Any) -> dict[str, Any]:
    """What the store keeps of a :class:`~wdlib.Run`: plain values and NumPy arrays (picklable, small)."""
    finite = len(run.test_loss) and np.isfinite(run.test_loss[-1])
    return {
        "backend_version": run.backend_version,
        "engine_used": run.engine,
        "seconds": float(run.seconds),
        "diverged": bool(run.diverged),
        "diverged_at_epoch": run.meta.get("diverged_at_epoch"),
        "final_train_loss": float(run.train_loss[-1]) if finite else None,
        "final_test_loss": float(run.test_loss[-1]) if finite else None,
        "w_norm": run.w_norm if np.all(np.isfinite(run.params["w"])) else None,
        "train_loss": np.asarray(run.train_loss),
        "test_loss": np.asarray(run.test_loss),
        "w": np.asarray(run.params["w"]),
        "b": np.asarray(run.params["b"]),
    }


def check_store_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path if a store can be opened or created there; a :class:`StoreError` if not.

    Checked by trying, not with ``os.access`` (which says yes to root even on a read-only folder).
    """
    path = Path(path)
    fix = "choose a path in an existing, writable folder, e.g. store='runs.sqlite'"
    if path.is_dir():
        raise StoreError(f"store={str(path)!r} is a folder: expected a file path; {fix}")
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"store={str(path)!r}: the folder {str(folder)!r} does not exist; "
                         f"create it (mkdir -p {folder}) or {fix}")
    try:
        if path.exists():
            os.close(os.open(path, os.O_RDWR))
        else:
            probe = folder / f".{path.name}.{os.getpid()}.probe"
            os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
            probe.unlink()
    except OSError as err:
        raise StoreError(f"store={str(path)!r} is not writable ({err.strerror}); {fix}") from err
    return path


class Store:
    """A wdlib results store (a SQLite file). Open with ``Store(path)``; creates the file if needed.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 600.0) -> None:
        self.path = check_store_path(path)
        try:
            # isolation_level=None: autocommit, so every transaction below is explicit.
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as err:
            raise StoreError(f"store={str(self.path)!r} cannot be opened ({err})") from err
        try:
            self._open()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise StoreError(
                f"store={str(self.path)!r} is not a wdlib store ({err}); expected a SQLite file "
                "written by wdlib: choose a new path, or remove the file if it is yours to delete"
            ) from err
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        """Check the file is a wdlib store of this schema, or make an empty file one."""
        db = self._db
        # Refuse a foreign file before changing anything in it (reading the header fails on non-SQLite).
        # Both reads in one snapshot: another process may be creating the store right now.
        db.execute("BEGIN")
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            has_tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
        finally:
            db.execute("COMMIT")
        if app_id not in (0, APPLICATION_ID):
            raise StoreError(self._foreign(f"its SQLite application_id is {app_id:#x}"))
        if app_id == 0 and has_tables:
            raise StoreError(self._foreign("it is another application's SQLite database"))
        self._enable_wal()
        db.execute("BEGIN IMMEDIATE")  # another process creating the same store waits here
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if app_id == 0 and not tables:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                db.execute("INSERT INTO meta VALUES ('created_by', 'wdlib')")
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            elif app_id != APPLICATION_ID or "meta" not in tables:
                raise StoreError(self._foreign("it has no wdlib application id"))
            else:
                row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None or row[0] != str(SCHEMA_VERSION):
                    got = None if row is None else row[0]
                    raise StoreError(
                        f"store={str(self.path)!r} has schema version {got}, and this wdlib reads "
                        f"version {SCHEMA_VERSION}; use the wdlib version that wrote it, or choose a new "
                        "path for the store"
                    )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _enable_wal(self) -> None:
        """WAL mode: readers do not block the writer, and a commit is one append to the -wal file.

        synchronous=NORMAL in WAL mode never corrupts the file; a power cut (not a killed process) may
        drop the last commits, which a rerun simply recomputes. Switching needs a moment with no other
        writer: while another process holds the lock, SQLite keeps the old mode or reports the database
        locked (without waiting), so retry briefly.
        """
        deadline = time.monotonic() + 30
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower()
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err):
                    raise
                mode = "locked"
            if mode == "wal":
                break
            if time.monotonic() > deadline:
                raise StoreError(f"store={str(self.path)!r}: SQLite refused WAL mode (got {mode!r}); "
                                 "use a store on a local file system")
            time.sleep(0.01)
        self._db.execute("PRAGMA synchronous=NORMAL")

    def _foreign(self, why: str) -> str:
        return (f"store={str(self.path)!r} is not a wdlib store ({why}); choose a new path for the "
                "store, or remove the file if it is yours to delete")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM runs").fetchone()[0]

    def __contains__(self, key: object) -> bool:
        return self._db.execute("SELECT 1 FROM runs WHERE key=?", (key,)).fetchone() is not None

    def keys(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT key FROM runs")}

    def put(self, config: Config, record: Mapping[str, Any]) -> bool:
        """Store one run in its own transaction; False (and nothing changed) if it was already stored."""
        values = (
            config_key(config), json.dumps(dataclasses.asdict(config), sort_keys=True),
            *(record[c] for c in RESULT_COLUMNS),
            *(_to_bytes(record[c]) for c in ARRAY_COLUMNS),
            time.time(),
        )
        columns = ("key", "config", *RESULT_COLUMNS, *ARRAY_COLUMNS, "stored_at")
        sql = f"INSERT OR IGNORE INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        with self._transaction():
            return self._db.execute(sql, values).rowcount == 1

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def records(self, keys: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Stored runs as dicts: every Config field, the result columns, the arrays, and ``key``."""
        columns = ("key", "config", *RESULT_COLUMNS, *ARRAY_COLUMNS, "stored_at")
        query = f"SELECT {', '.join(columns)} FROM runs"
        if keys is None:
            rows: Iterable[tuple[Any, ...]] = self._db.execute(query + " ORDER BY key")
        else:
            rows = (r for k in keys for r in self._db.execute(query + " WHERE key=?", (k,)))
        for row in rows:
            item = dict(zip(columns, row, strict=True))
            config = json.loads(item.pop("config"))
            item["diverged"] = bool(item["diverged"])
            for name in ARRAY_COLUMNS:
                item[name] = _from_bytes(item[name])
            yield {**config, **item}

    def integrity_check(self) -> str:
        """SQLite's own check of the file: "ok" when it is sound."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]
