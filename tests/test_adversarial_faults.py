"""Faults of the machine (issue 16): the CLI exits 1 with one line (no traceback unless --debug) for
a full disk, a refused write, a locked store, no memory, a broken framework or a bug, and changes
no file it did not finish writing."""

from __future__ import annotations

import concurrent.futures as cf
import errno
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from output_helpers import ROOT, ReadOnly, count_training, snapshot

import wdlib
import wdlib.training
from wdlib.cli import main
from wdlib.io import TEMP_MARK

TRAIN = ["train", "--num-epochs", "3"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "runs.sqlite"
    wdlib.sweep([0], [0], ["numpy"], num_epochs=3, store=path, executor=cf.ThreadPoolExecutor(1))
    return path


def _cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(argv)
    _, err = capsys.readouterr()
    return code, err


def _fail_replace(monkeypatch: pytest.MonkeyPatch, error: OSError) -> None:
    """``os.replace`` of a wdlib temporary file raises ``error`` (the write reached the disk's end)."""
    real = os.replace

    def replace(src: Any, dst: Any) -> None:
        if TEMP_MARK in os.fspath(src):
            raise error
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def _fail_savefig(monkeypatch: pytest.MonkeyPatch, error: OSError) -> None:
    from matplotlib.figure import Figure

    real = Figure.savefig

    def savefig(self: Figure, target: Any, *args: Any, **kwargs: Any) -> None:
        real(self, target, *args, **kwargs)  # half the story: the bytes are written, then the disk fails
        raise error

    monkeypatch.setattr(Figure, "savefig", savefig)


def _fail_probe(monkeypatch: pytest.MonkeyPatch, error: OSError) -> None:
    real = os.open

    def fake(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path).endswith("-probe"):
            raise error
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake)


def _raise_in_train(error: BaseException) -> Callable[[pytest.MonkeyPatch], None]:
    def inject(monkeypatch: pytest.MonkeyPatch) -> None:
        def train(*args: Any, **kwargs: Any) -> None:
            raise error

        monkeypatch.setattr(wdlib.training, "train", train)
    return inject


ENOSPC = OSError(errno.ENOSPC, "No space left on device")
EACCES = PermissionError(errno.EACCES, "Permission denied")
#: (id, argv after the output path's option, the fault injected, exit status, what stderr says,
#: whether training ran before the fault).
FAULTS: list[tuple[str, list[str], Callable[[pytest.MonkeyPatch], None], int, str, bool]] = [
    ("json-disk-full", [*TRAIN, "--json", "{tmp}/old.json"], lambda m: _fail_replace(m, ENOSPC), 1,
     "the disk is full: could not write", True),
    ("json-denied", [*TRAIN, "--json", "{tmp}/old.json"], lambda m: _fail_replace(m, EACCES), 1,
     "permission denied by the system", True),
    ("plot-disk-full", [*TRAIN, "--plot", "{tmp}/old.png"], lambda m: _fail_savefig(m, ENOSPC), 1,
     "the disk is full", True),
    ("csv-disk-full", ["compare", "--backends", "numpy", "--set", "num_epochs=3", "--csv", "{tmp}/old.csv"],
     lambda m: _fail_replace(m, ENOSPC), 1, "the disk is full", True),
    ("export-disk-full", ["sweep", "--store", "{tmp}/runs.sqlite", "--export", "{tmp}/old.csv"],
     lambda m: _fail_replace(m, ENOSPC), 1, "the disk is full", False),
    ("probe-disk-full", [*TRAIN, "--json", "{tmp}/old.json"], lambda m: _fail_probe(m, ENOSPC), 1,
     "the disk is full", False),
    ("probe-io-error", [*TRAIN, "--plot", "{tmp}/old.png"],
     lambda m: _fail_probe(m, OSError(errno.EIO, "I/O")), 1, "I/O, EIO)", False),
    ("memory", [*TRAIN], _raise_in_train(MemoryError()), 1, "out of memory (MemoryError)", False),
    ("broken-framework", [*TRAIN],
     _raise_in_train(wdlib.BackendLoadError("torch failed to import: libc10.so")), 1,
     "torch failed to import: libc10.so", False),
    ("bug", [*TRAIN], _raise_in_train(RuntimeError("boom\nsecond line")), 1,
     "unexpected RuntimeError: boom; second line; rerun with --debug", False),
    ("bug-no-message", [*TRAIN], _raise_in_train(KeyError()), 1, "unexpected KeyError; rerun with --debug",
     False),
    ("diverged-is-the-users", [*TRAIN], _raise_in_train(wdlib.DivergenceError("the loss is inf at epoch 2",
     epoch=2, last_loss=1e30)), 2, "the run diverged by epoch 2", False),
    ("interrupted", [*TRAIN], _raise_in_train(KeyboardInterrupt()), 130, "wdlib: interrupted", False),
    ("executor-broke", [*TRAIN], _raise_in_train(wdlib.errors.ExecutorFailedError("the executor broke")), 1,
     "the executor broke", False),
    ("backend-bug", [*TRAIN], _raise_in_train(wdlib.errors.BackendResultError("x: wrong shape")), 1,
     "x: wrong shape", False),
    ("estimate-refused", [*TRAIN], _raise_in_train(wdlib.errors.ResourceError("needs 9 TB")), 2, "needs 9 TB",
     False),
]


@pytest.mark.parametrize(("case", "argv", "inject", "status", "says", "trains"), FAULTS,
                         ids=[f[0] for f in FAULTS])
def test_a_fault_is_one_line_and_nothing_written_changes(
        tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        case: str, argv: list[str], inject: Callable, status: int, says: str, trains: bool) -> None:
    shutil.copy(store, tmp_path / "runs.sqlite")
    for suffix in (".json", ".png", ".csv"):
        (tmp_path / f"old{suffix}").write_text("the user's file")
        (tmp_path / f"old{suffix}").chmod(0o600)
    before, trained = snapshot(tmp_path), count_training(monkeypatch)
    inject(monkeypatch)
    code, err = _cli([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == status and err.count("\n") == 1 and says in err, err
    assert err.startswith("wdlib: error: " if status != 130 else "wdlib: interrupted")
    assert bool(trained) == trains and snapshot(tmp_path) == before  # no temporary file either


@pytest.mark.parametrize("where", [["--debug", *TRAIN], [*TRAIN, "--debug"]])
def test_debug_shows_the_exception_itself(monkeypatch: pytest.MonkeyPatch, where: list[str]) -> None:
    _raise_in_train(RuntimeError("boom"))(monkeypatch)
    with pytest.raises(RuntimeError, match="boom"):
        main(where)
    with pytest.raises(wdlib.ConfigError, match=r"lambd=-1\.0"):
        main([*where, "--lambd", "-1"])


def test_a_locked_store_is_exit_1_and_unchanged(tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    path = Path(shutil.copy(store, tmp_path / "runs.sqlite"))
    monkeypatch.setitem(wdlib.Store.__init__.__kwdefaults__, "timeout", 0.3)  # the lock wait
    holder = sqlite3.connect(path, isolation_level=None)
    for statement in ("PRAGMA locking_mode=EXCLUSIVE", "BEGIN EXCLUSIVE", "SELECT count(*) FROM runs"):
        holder.execute(statement).fetchall()
    try:
        before = snapshot(tmp_path)
        for argv in (["sweep", "--lambd", "0", "1", "--backends", "numpy", "--set", "num_epochs=3",
                      "--workers", "1", "--store", str(path)],
                     ["sweep", "--store", str(path), "--export", str(tmp_path / "out.csv")]):
            code, err = _cli(argv, capsys)
            assert code == 1 and err.count("\n") == 1, err
            assert "is locked by another process (waited 0.3 s" in err and "remove" not in err
            assert snapshot(tmp_path) == before
    finally:
        holder.close()
    assert _cli(["sweep", "--store", str(path), "--export", str(tmp_path / "out.csv")], capsys)[0] == 0


@pytest.mark.parametrize("inject", [False, True])
def test_a_read_only_folder_as_the_user_sees_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture, inject: bool) -> None:
    """Read-only by file modes, or as root by chattr +i, else by injection (never skipped; the
    injection is also tested where chattr works)."""
    read_only = ReadOnly(monkeypatch, inject=inject)
    folder = read_only((tmp_path / "ro").mkdir() or tmp_path / "ro")
    try:
        trained = count_training(monkeypatch)
        code, err = _cli([*TRAIN, "--json", str(folder / "r.json")], capsys)
        assert code == 2 and err.count("\n") == 1 and "is not writable" in err and trained == []
        assert read_only.how == "injected" if inject else read_only.how in (
            ("chattr", "injected") if ROOT else ("modes",))
        assert list(folder.iterdir()) == []
    finally:
        read_only.restore()


# --- in a real process: no traceback ---------------------------------------------------------------


def _wdlib(*argv: str, stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "wdlib", *argv], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=300, env=env)


@pytest.mark.parametrize(("argv", "status", "says"), [
    ([*TRAIN, "--plot", "{tmp}/x.txt"], 2, "--plot "),
    ([*TRAIN, "--json", "{tmp}/file/x.json"], 2, "is a file, not a folder"),
    (["reproduce", "d2l", "--out", "{tmp}/file"], 2, "--out "),
    (["decay-table", "--json", "{tmp}/file/t.json"], 2, "is a file, not a folder"),
])
def test_no_traceback_in_a_real_process(tmp_path: Path, argv: list[str], status: int, says: str) -> None:
    (tmp_path / "file").write_text("x")
    done = _wdlib(*[a.format(tmp=tmp_path) for a in argv])
    assert done.returncode == status and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_debug_in_a_real_process_prints_the_traceback(tmp_path: Path) -> None:
    done = _wdlib("--debug", *TRAIN, "--plot", str(tmp_path / "x.txt"))
    assert done.returncode == 1 and "Traceback" in done.stderr and "OutputError: --plot=" in done.stderr


def test_a_closed_pipe_ends_quietly() -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        done = _wdlib("backends", stdout=write)
    finally:
        os.close(write)
    assert done.returncode == 1 and done.stderr == ""


def test_a_real_full_disk_is_exit_1_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    from store_helpers import small_disk

    with small_disk(tmp_path / "disk", "64k") as disk:
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        done = _wdlib(*TRAIN, "--json", str(disk / "r.json"))
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1 and "the disk is full" in done.stderr, done.stderr
        assert [p.name for p in disk.iterdir()] == ["filler"]
