"""A store's file: its path, its SQLite connection and journal mode, and what can go wrong with it.

Every SQLite or OS error a :class:`~wdlib.Store` meets becomes a :class:`StoreError` whose message
names the file, says what happened (locked by another process, disk full, not a wdlib store,
damaged, read-only) and what to do; never a raw ``sqlite3`` exception or traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import WdlibError

# SQLite's primary result codes (the sqlite3 module names them only from Python 3.11 on).
BUSY, LOCKED, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
_FIX_PATH = "choose a path in an existing, writable folder, e.g. store='runs.sqlite'"
_RUN_FIRST = "run a sweep first (wdlib sweep --lambd ... --store FILE)"


class StoreError(WdlibError, ValueError):
    """The store cannot be used: bad path, not a wdlib store, other schema, locked, disk full, damaged."""


class StoreFaultError(StoreError):
    """The machine, not the store, is in the way: the store is locked by another process or the disk
    is full. Nothing stored is lost; retrying later works (the command line exits 1, not 2)."""

    exit_code = 1


class StoreWarning(UserWarning):
    """Stored rows were skipped (damaged) or set aside (on migration); the message gives the count."""


def check_store_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path if a store can be opened or created there; a :class:`StoreError` if not.

    Checked by trying, not with ``os.access`` (which says yes to root even on a read-only folder).
    """
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"store={str(path)!r} is a folder: expected a file path; {_FIX_PATH}")
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"store={str(path)!r}: the folder {str(folder)!r} does not exist; "
                         f"create it (mkdir -p {folder}) or {_FIX_PATH}")
    try:
        if path.exists():
            os.close(os.open(path, os.O_RDWR))
        else:
            probe = folder / f".{path.name}.{os.getpid()}.probe"
            os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
            probe.unlink()
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise StoreFaultError(f"store={str(path)!r}: the disk is full; free some space and retry") \
                from err
        raise StoreError(f"store={str(path)!r} is not writable ({err.strerror}); {_FIX_PATH}") from err
    return path


def check_readable(path: Path) -> None:
    """A store to read must exist and hold something: reading never creates one."""
    if path.is_dir():
        raise StoreError(f"store={str(path)!r} is a folder: expected an existing wdlib store file")
    if not path.is_file():
        raise StoreError(f"store={str(path)!r} does not exist: expected an existing wdlib store file; "
                         f"{_RUN_FIRST}")
    if path.stat().st_size == 0:
        raise StoreError(f"store={str(path)!r} is an empty file, not an existing wdlib store; {_RUN_FIRST}")


def code(err: sqlite3.Error) -> int | None:
    """SQLite's primary result code of ``err`` (Python >= 3.11 gives it), else one read from its text."""
    found = getattr(err, "sqlite_errorcode", None)
    if found is not None:
        return found & 0xFF
    text = str(err)
    for fragment, value in (("locked", BUSY), ("disk is full", FULL), ("not a database", NOTADB),
                            ("unable to open", CANTOPEN), ("malformed", CORRUPT), ("readonly", READONLY)):
        if fragment in text:
            return value
    return None


class Messages:
    """The one-line messages about the store at ``path`` (opened with lock wait ``timeout``)."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path, self.timeout = path, timeout

    @property
    def name(self) -> str:
        return f"store={str(self.path)!r}"

    def foreign(self, why: str) -> str:
        return (f"{self.name} is not a wdlib store ({why}); choose a new path for the store, or remove "
                "the file if it is yours to delete")

    def locked(self, action: str) -> str:
        return (f"{self.name} is locked by another process (waited {self.timeout:g} s to {action}); "
                "retry when that process is done, or pass a longer timeout")

    def full(self, action: str) -> str:
        return (f"{self.name}: the disk is full (could not {action}); the runs stored before are kept: "
                "free some space and rerun")

    def damaged(self, what: str) -> str:
        return f"{self.name} is damaged: {what}; restore the file from a copy, or choose a new path"

    def empty(self) -> str:
        return f"{self.name} is an empty SQLite file, not an existing wdlib store; {_RUN_FIRST}"

    def _no_space(self) -> bool:
        """The folder's file system has no block left (SQLite reports a failed -shm write on a full
        disk as an I/O error, not as SQLITE_FULL)."""
        try:
            return os.statvfs(self.path.resolve().parent).f_bavail == 0
        except (OSError, AttributeError):  # AttributeError: no statvfs on Windows
            return False

    def error(self, err: sqlite3.Error, action: str) -> StoreError:
        """SQLite's error as a one-line StoreError (a StoreFaultError for a lock or a full disk)."""
        found, text = code(err), str(err)
        if found in (BUSY, LOCKED) or "locked" in text:
            return StoreFaultError(self.locked(action))
        if found == FULL or "disk is full" in text or (found == IOERR and self._no_space()):
            return StoreFaultError(self.full(action))
        return StoreError(self._explain(err, action))

    def _explain(self, err: sqlite3.Error, action: str) -> str:
        found, text = code(err), str(err)
        if found == NOTADB:
            return self.foreign(text)
        if "no such table" in text:
            return self.damaged(f"{text} (dropped?)")
        if found == CORRUPT:
            return self.damaged(f"SQLite says {text!r}")
        if found == READONLY:
            return (f"{self.name} is read-only ({text}); read it with readonly=True (load_sweep does), "
                    "or choose a writable path")
        return f"{self.name}: SQLite could not {action} ({text})"

    @contextlib.contextmanager
    def translated(self, action: str) -> Iterator[None]:
        """SQLite's errors, and the OS's disk-full error, as one-line StoreErrors."""
        try:
            yield
        except sqlite3.Error as err:
            raise self.error(err, action) from err
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            raise StoreFaultError(self.full(action)) from err


def connect(path: Path, timeout: float, *, readonly: bool = False,
            immutable: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (every transaction explicit), waiting up to ``timeout``
    seconds for another process's lock; ``readonly`` opens with ``mode=ro``, which never writes the
    file, and ``immutable`` also tells SQLite that no one else can write it (no locks, no -shm)."""
    if not readonly:
        return sqlite3.connect(path, timeout=timeout, isolation_level=None)
    uri = path.resolve().as_uri() + ("?immutable=1" if immutable else "?mode=ro")
    return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)


def enable_wal(db: sqlite3.Connection, say: Messages) -> None:
    """WAL mode: readers do not block the writer, and a commit is one append to the -wal file.

    synchronous=NORMAL in WAL mode never corrupts the file; a power cut (not a killed process) may
    drop the last commits, which a rerun simply recomputes. Switching needs a moment with no other
    writer: while another process holds the lock, SQLite keeps the old mode or reports the database
    locked (without waiting), so retry for up to ``say.timeout`` seconds.
    """
    deadline = time.monotonic() + say.timeout
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower()
        except sqlite3.OperationalError as err:
            if code(err) not in (BUSY, LOCKED):
                raise
            mode = "locked"
        if mode == "wal":
            break
        if time.monotonic() > deadline:
            if mode == "locked":
                raise StoreFaultError(say.locked("switch it to WAL mode"))
            raise StoreError(f"{say.name}: SQLite refused WAL mode (got {mode!r}); use a store on a "
                             "local file system")
        time.sleep(0.01)
    db.execute("PRAGMA synchronous=NORMAL")


def snapshot(db: sqlite3.Connection) -> tuple[int, set[str], str | None]:
    """The file's application id, table names and ``meta`` schema version (None if it has none),
    read in one snapshot (another process may be creating or migrating the store right now)."""
    db.execute("BEGIN")
    try:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = None
        if "meta" in tables:
            found = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = None if found is None else found[0]
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return app_id, tables, version


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction: BEGIN IMMEDIATE (waiting for the lock), COMMIT, or ROLLBACK on error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
