"""A SQLite file of finished runs, one row per run keyed by a hash of its configuration.

Why SQLite: one file, in the standard library, and a committed transaction survives the writer being
killed at any instant (SIGKILL included): the file then holds every row committed before the kill and
nothing half-written. The store runs in WAL mode, so readers never block the writer; each result is
committed in its own transaction the moment it arrives, which is what lets a killed sweep restart and
redo only what was not stored. Several processes may write at once: SQLite serializes the writers
(each waits up to ``timeout`` seconds for the lock, then gets a :class:`StoreError` saying the store
is locked by another process), and a row that is already stored is kept as is.

What a row holds, and its key, are defined in :mod:`wdlib.store_format` (schema 2). A schema-1 file
(wdlib before schema 2) is migrated in one transaction when opened for writing, losing nothing
(:mod:`wdlib.store_v1`), and read as it is when opened with ``readonly=True``. A file that is not a
wdlib store (another application's SQLite database, or any other file) or of an unknown schema is
refused with a :class:`StoreError`, never modified.

Reading checks every row: a row whose configuration does not hash to its key, or whose arrays do
not decode, is skipped with one :class:`StoreWarning` giving the count; a sweep over its
configuration computes it again and replaces it.

Copying a store: a store that no process has open is the ``.sqlite`` file alone (closing a store,
as every sweep does when it ends, checkpoints the write-ahead log into it). To copy a store that is
in use, copy it with SQLite's backup, which takes a consistent snapshot:
``sqlite3 runs.sqlite ".backup copy.sqlite"``, or in Python
``sqlite3.connect("runs.sqlite").backup(sqlite3.connect("copy.sqlite"))``; copying the ``.sqlite``
file alone then may miss the runs still in ``runs.sqlite-wal``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from . import store_v1
from .config import Config
from .store_file import (
    CANTOPEN,
    Messages,
    StoreError,
    StoreWarning,
    check_readable,
    check_store_path,
    code,
    connect,
    enable_wal,
    snapshot,
    transaction,
)
from .store_format import (
    COLUMNS,
    META_TABLE,
    RUNS_TABLE,
    SCHEMA_VERSION,
    DamagedRow,
    config_key,
    config_text_of,
    decode_row,
    result_record,
    row_values,
)

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Store", "StoreError", "StoreWarning", "check_store_path",
           "config_key", "result_record"]

#: ``PRAGMA application_id`` of a wdlib store: the bytes "WDLB".
APPLICATION_ID = int.from_bytes(b"WDLB", "big")
#: Schema versions this wdlib opens (older ones are migrated or read as they are).
READABLE_VERSIONS = ("1", str(SCHEMA_VERSION))


class Store:
    """A wdlib results store (a SQLite file). ``Store(path)`` opens it for writing (creating the file
    if needed, migrating a schema-1 file); ``Store(path, readonly=True)`` only reads an existing store,
    also from a read-only file or folder, and changes nothing.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 600.0,
                 readonly: bool = False) -> None:
        self.timeout, self.readonly = float(timeout), readonly
        self.version = SCHEMA_VERSION  # of the file: 1 only for a schema-1 file read as it is
        self._v1_index: dict[str, str] = {}
        self._v1_unreadable = 0
        self._db: sqlite3.Connection | None = None
        if readonly:
            self.path = Path(path)
            check_readable(self.path)
        else:
            self.path = check_store_path(path)
        self._say = Messages(self.path, self.timeout)
        try:
            with self._say.translated("open it"):
                self._db = connect(self.path, self.timeout, readonly=readonly)
                if readonly:
                    self._open_readonly()
                else:
                    self._open()
        except BaseException:
            self.close()
            raise

    # --- opening ---------------------------------------------------------------------------------

    def _inspect(self) -> str | None:
        """The schema version of the file ("1", "2"), or None for an empty SQLite file; a StoreError
        for anything else. Reads only, in one snapshot (another process may be creating the store)."""
        app_id, tables, version = snapshot(self._connection)
        if app_id == 0:
            if tables:
                raise StoreError(self._say.foreign("it is another application's SQLite database"))
            return None
        if app_id != APPLICATION_ID:
            raise StoreError(self._say.foreign(f"its SQLite application_id is {app_id:#x}"))
        if version not in READABLE_VERSIONS:
            raise StoreError(
                f"store={str(self.path)!r} has schema version {version}, and this wdlib reads versions "
                f"{' and '.join(READABLE_VERSIONS)}; use the wdlib version that wrote it, or choose a "
                "new path for the store"
            )
        if "runs" not in tables:
            raise StoreError(self._say.damaged("its table 'runs' is missing (dropped?)"))
        return version

    def _open(self) -> None:
        """Check the file is a wdlib store; make an empty file one, or migrate a schema-1 store."""
        version = self._inspect()  # refuses a foreign file before anything is changed
        enable_wal(self._connection, self._say)
        if version == str(SCHEMA_VERSION):
            return
        migrated = leftover = 0
        with transaction(self._connection):  # another process creating or migrating the same store waits here
            version = self._inspect_again()
            if version is None:
                db = self._connection
                db.execute(META_TABLE)
                db.execute(RUNS_TABLE)
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                db.execute("INSERT INTO meta VALUES ('created_by', 'wdlib')")
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            elif version == "1":
                migrated, leftover = store_v1.migrate(self._connection)
        if leftover:  # said once committed
            warnings.warn(StoreWarning(
                f"store={str(self.path)!r} migrated to schema {SCHEMA_VERSION}: {migrated} runs; "
                f"{leftover} rows that were damaged or repeated a configuration are kept, unchanged, "
                f"in its table {store_v1.LEFTOVER_TABLE}"), stacklevel=3)

    def _inspect_again(self) -> str | None:
        """:meth:`_inspect` inside the write transaction (its BEGIN/COMMIT would end it)."""
        db = self._connection
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        return db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]

    def _open_readonly(self) -> None:
        try:
            version = self._inspect()
        except sqlite3.OperationalError as err:
            # A WAL file in a read-only folder: SQLite cannot make its -shm index there. With no
            # write-ahead log to read (every commit checkpointed into the file), the file alone is
            # the whole store, and nobody can be writing it (a writer needs a -wal file next to it).
            wal = Path(f"{self.path}-wal")
            if code(err) != CANTOPEN or (wal.exists() and wal.stat().st_size > 0):
                raise
            self._connection.close()
            self._db = connect(self.path, self.timeout, readonly=True, immutable=True)
            version = self._inspect()
        if version is None:
            raise StoreError(self._say.empty())
        if version == "1":
            self.version = 1
            self._v1_index, self._v1_unreadable = store_v1.index(self._connection)

    # --- life ------------------------------------------------------------------------------------

    @property
    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"store={str(self.path)!r} is closed")
        return self._db

    def close(self) -> None:
        """Checkpoint the write-ahead log into the file (so the .sqlite alone holds every committed
        run; see the module docstring) and close. Closing twice is harmless."""
        if self._db is None:
            return
        if not self.readonly:
            with contextlib.suppress(sqlite3.Error):  # busy readers: their last close checkpoints
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
        self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------------

    def put(self, config: Config, record: Mapping[str, Any]) -> bool:
        """Store one run in its own transaction; False (and nothing changed) if it was already stored.

        A damaged row under the same key (see :meth:`records`) is replaced. ``record`` is a
        :func:`result_record`, or a record read from a store.
        """
        return self.put_many([(config, record)]) == 1

    def put_many(self, runs: Iterable[tuple[Config, Mapping[str, Any]]]) -> int:
        """Store several runs (as :meth:`put` does each) in one transaction: all of them or none.
        Returns how many were new. A sweep stores a task's runs together (one commit, not one per λ)."""
        if self.readonly:
            raise StoreError(f"store={str(self.path)!r} was opened with readonly=True: it cannot store runs")
        now = time.time()
        rows = [row_values(config_text_of(config), record, now) for config, record in runs]
        insert = f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        select = f"SELECT {', '.join(COLUMNS)} FROM runs WHERE key=?"
        added = 0
        with self._say.translated("store a run"), transaction(self._connection):
            db = self._connection
            for values in rows:
                found = db.execute(select, (values[0],)).fetchone()
                if found is not None:
                    try:
                        decode_row(dict(zip(COLUMNS, found, strict=True)))
                        continue
                    except DamagedRow:
                        db.execute("DELETE FROM runs WHERE key=?", (values[0],))
                db.execute(insert, values)
                added += 1
        return added

    # --- reading ---------------------------------------------------------------------------------

    def records(self, keys: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """The intact stored runs (of ``keys``, or all, sorted by key) as dicts: every Config field
        (defaults for fields the row does not name), ``key``, the result columns, the loss curves,
        ``params`` (name -> array) and, for the linear model, ``w`` and ``b``.

        Damaged rows (configuration not hashing to the key, arrays that do not decode) are skipped,
        and counted in one :class:`StoreWarning` when the iteration ends.
        """
        damaged = 0
        with self._say.translated("read it"):
            if self.version == 1:
                wanted = sorted(self._v1_index) if keys is None else list(keys)
                damaged = self._v1_unreadable if keys is None else 0
                rows: Iterable[dict[str, Any]] = store_v1.rows(
                    self._connection, [self._v1_index[k] for k in wanted if k in self._v1_index])
                decode = store_v1.decode_v1_row
            else:
                rows = self._rows(keys)
                decode = decode_row
            for row in rows:
                try:
                    record = decode(row)
                except DamagedRow:
                    damaged += 1
                    continue
                yield record
        if damaged:
            warnings.warn(StoreWarning(
                f"store={str(self.path)!r}: {damaged} damaged rows skipped (their arrays do not decode, or "
                "their configuration does not hash to their key); a sweep over them stores them again"),
                stacklevel=2)

    def _rows(self, keys: Iterable[str] | None) -> Iterator[dict[str, Any]]:
        query = f"SELECT {', '.join(COLUMNS)} FROM runs"
        db = self._connection
        if keys is None:
            found: Iterable[tuple[Any, ...]] = db.execute(query + " ORDER BY key")
        else:
            found = (r for k in keys for r in db.execute(query + " WHERE key=?", (k,)))
        for values in found:
            yield dict(zip(COLUMNS, values, strict=True))

    def keys(self, among: Iterable[str] | None = None) -> set[str]:
        """The keys of the intact stored runs (only those in ``among``, when given)."""
        return {record["key"] for record in self.records(among)}

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self.keys([key]))

    def integrity_check(self) -> str:
        """SQLite's own check of the file: "ok" when it is sound."""
        with self._say.translated("check it"):
            return self._connection.execute("PRAGMA integrity_check").fetchone()[0]
