"""Helpers of the output tests: folder snapshots, a training counter, read-only paths even as root."""

from __future__ import annotations

import errno
import importlib
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = os.geteuid() == 0


def snapshot(folder: Path) -> dict[str, tuple[str, Any, int]]:
    """Every entry under ``folder``: its kind, content (bytes, link target) and mode, read with lstat.

    SQLite's -shm and -wal files are left out: reading a WAL store makes them (the .sqlite file
    itself, which holds every row of a closed store, is compared)."""
    found: dict[str, tuple[str, Any, int]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + [f for f in filenames if not f.endswith(("-shm", "-wal"))]:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                entry: tuple[str, Any, int] = ("link", os.readlink(path), 0)
            elif stat.S_ISREG(st.st_mode):
                entry = ("file", path.read_bytes(), stat.S_IMODE(st.st_mode))
            else:
                entry = ("dir" if stat.S_ISDIR(st.st_mode) else "other", None, stat.S_IMODE(st.st_mode))
            found[str(path.relative_to(folder))] = entry
    return found


#: (module, function): every way into training that a command or ``reproduce`` takes in-process.
TRAINING_ENTRIES = (("wdlib.training", "train"), ("wdlib.training", "train_sequence"),
                    ("wdlib.training", "get_backend"), ("wdlib.backend", "get_backend"),
                    ("wdlib.compare", "compare"), ("wdlib.sweep", "sweep"))


def count_training(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A list that gets a name each time training (or a backend) is entered; the calls go through."""
    calls: list[str] = []
    for module_name, name in TRAINING_ENTRIES:
        module = importlib.import_module(module_name)
        real = getattr(module, name)

        def counted(*args: Any, _real: Callable = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


class ReadOnly:
    """Makes paths read-only for this process: file modes when not root; as root (who ignores modes)
    the immutable attribute (chattr +i), or, where that is not allowed (or with ``inject=True``), an
    injected EACCES from ``os.open`` and ``os.access`` for paths under them. ``how`` says which."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, inject: bool = False) -> None:
        self.monkeypatch, self.undo, self.injected = monkeypatch, [], []
        self.how = "injected" if inject else "modes" if not ROOT else None

    def __call__(self, path: Path) -> Path:
        if self.how == "modes":
            mode = path.stat().st_mode
            path.chmod(0o555 if path.is_dir() else 0o444)
            self.undo.append(lambda: path.chmod(mode))
        elif self.how != "injected" and _chattr("+i", path):
            self.how = "chattr"
            self.undo.append(lambda: _chattr("-i", path))
        else:
            self.how = "injected"
            self._inject(path)
        with pytest.raises(OSError):  # the precondition: nothing can be written there now
            if path.is_dir():
                os.close(os.open(path / "probe", os.O_CREAT | os.O_WRONLY, 0o600))
            else:
                os.close(os.open(path, os.O_WRONLY))
        return path

    def _inject(self, path: Path) -> None:
        if not self.injected:
            real_open, real_access = os.open, os.access

            def fake_open(target: Any, flags: int, *args: Any, **kwargs: Any) -> int:
                if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and self._under(target):
                    raise PermissionError(errno.EACCES, "Permission denied", str(target))
                return real_open(target, flags, *args, **kwargs)

            def fake_access(target: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
                return False if mode & os.W_OK and self._under(target) else real_access(target, mode)

            self.monkeypatch.setattr(os, "open", fake_open)
            self.monkeypatch.setattr(os, "access", fake_access)
        self.injected.append(os.path.realpath(path))

    def _under(self, target: Any) -> bool:
        full = os.path.realpath(os.fspath(target))
        return any(full == p or full.startswith(p + os.sep) for p in self.injected)

    def restore(self) -> None:
        for undo in reversed(self.undo):
            undo()


def _chattr(flag: str, path: Path) -> bool:
    try:
        return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0
    except OSError:
        return False
