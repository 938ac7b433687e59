"""Atomic writes (issue 16): a replaced file keeps its mode and owner, a symbolic link is written
through, an exception leaves the old file and no temporary file, and a killed write's leftover is
recognizable and removed by the next write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from output_helpers import ROOT

from wdlib.io import TEMP_MARK, atomic_path, write_text


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604, 0o755, 0o444])
def test_a_replaced_file_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old")
    path.chmod(mode)
    write_text(path, "new")
    assert path.read_text() == "new" and (path.stat().st_mode & 0o7777) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_open_gives(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        write_text(tmp_path / "new" / "out.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "new" / "out.json").stat().st_mode & 0o777 == mode


def _links(tmp: Path, kind: str) -> tuple[Path, Path]:
    """A link (of ``kind``) and the file it leads to."""
    real = tmp / "elsewhere" / "real.csv"
    real.parent.mkdir()
    if kind != "dangling":
        real.write_text("old")
        real.chmod(0o600)
    link = tmp / "link.csv"
    if kind == "relative":
        os.symlink(os.path.join("elsewhere", "real.csv"), link)
    elif kind == "chain":
        os.symlink(real, tmp / "middle.csv")
        os.symlink(tmp / "middle.csv", link)
    else:
        os.symlink(real, link)
    return link, real


@pytest.mark.parametrize("kind", ["absolute", "relative", "chain", "dangling"])
def test_a_symlink_is_written_through(tmp_path: Path, kind: str) -> None:
    link, real = _links(tmp_path, kind)
    target_before = os.readlink(link)
    write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == target_before and real.read_text() == "new"
    assert (real.stat().st_mode & 0o777) == (0o600 if kind != "dangling" else real.stat().st_mode & 0o777)
    assert not [p for p in tmp_path.rglob("*") if TEMP_MARK in p.name]


@pytest.mark.parametrize("error", [ValueError("half written"), KeyboardInterrupt()])
def test_an_exception_leaves_the_old_file_and_no_temporary(tmp_path: Path, error: BaseException) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    with pytest.raises(type(error)), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise error
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.png"]


KILLED = """
import os, signal, sys
from wdlib.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_write_leaves_a_recognizable_file_the_next_write_removes(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", KILLED, str(path)], env=env, timeout=120)
    assert done.returncode == -signal.SIGKILL
    (left,) = [p for p in tmp_path.iterdir() if p != path]
    assert left.name.startswith(f".out.csv{TEMP_MARK}") and path.read_text() == "old"
    mine = tmp_path / f".out.csv{TEMP_MARK}{os.getpid()}-live.csv"  # a live process's write: kept
    other = tmp_path / f".other.csv{TEMP_MARK}999999999-x.csv"  # another file's: kept
    for p in (mine, other):
        p.write_text("x")
    write_text(path, "new")
    assert path.read_text() == "new" and sorted(tmp_path.iterdir()) == sorted([path, mine, other])


def test_the_owner_is_kept_when_the_process_may_keep_it(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old")
    owner = (12345, 12345) if ROOT else (os.getuid(), os.getgid())
    if ROOT:
        os.chown(path, *owner)
    write_text(path, "new")
    assert (path.stat().st_uid, path.stat().st_gid) == owner


def test_a_name_near_the_limit_still_gets_a_temporary_name(tmp_path: Path) -> None:
    path = tmp_path / ("x" * 250 + ".csv")
    write_text(path, "a")
    assert path.read_text() == "a" and len(list(tmp_path.iterdir())) == 1
