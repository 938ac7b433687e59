"""Helpers of the store tests: raw rows, small file systems, a failing connection."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def raw_rows(path: Path, table: str = "runs") -> list[tuple[Any, ...]]:
    """Every row of ``table``, column values as stored (bytes for blobs), read without wdlib."""
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        return sorted(db.execute(f"SELECT * FROM {table}").fetchall())


def _mount(*args: str) -> bool:
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """``folder`` as a fresh tmpfs of ``size`` bytes (e.g. "192k"): a disk that fills up. Needs root
    (mount); unmounted after."""
    folder.mkdir(exist_ok=True)
    if not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)):
        pytest.skip("cannot mount a small tmpfs here (needs root): the injected disk-full tests remain")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` made read-only for this process: a read-only bind mount when root (root ignores
    permissions), file modes otherwise. Checked by trying to write; restored after."""
    mounted = os.geteuid() == 0 and _mount("--bind", str(folder), str(folder))
    modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
    try:
        if mounted:
            if not _mount("-o", "remount,bind,ro", str(folder)):
                pytest.skip("cannot remount a folder read-only here")
        else:
            for p in modes:
                p.chmod(0o555 if p.is_dir() else 0o444)
        with pytest.raises(OSError):  # the precondition: nothing can be written there now
            (folder / "probe").write_bytes(b"x")
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)
        for p, mode in modes.items():
            p.chmod(mode)


class FailingConnection:
    """Wraps a sqlite3 connection; executing a statement for which ``fails(sql)`` is true raises
    ``error`` instead (SQLite's own connection cannot be monkeypatched)."""

    def __init__(self, db: sqlite3.Connection, fails: Callable[[str], bool], error: BaseException) -> None:
        self._db, self._fails, self._error = db, fails, error
        self.failed = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self._fails(sql):
            self.failed += 1
            raise self._error
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)
