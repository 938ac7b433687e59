"""Crash safety of sweeps: SIGKILL at random moments, and two sweeps on one store at once."""

from __future__ import annotations

import concurrent.futures as cf
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sweep_grid import GRID, TOTAL, comparable

import wdlib

DRIVER = f"""
import sys, wdlib
wdlib.sweep(**{GRID!r}, store=sys.argv[1], workers=1, progress=False)
"""


def _stored(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_at_random_moments_then_resume(swept_grid: wdlib.SweepTable, tmp_path: Path) -> None:
    """Kill the sweep's process with SIGKILL several times mid-sweep; each time the store opens
    cleanly, and the resumed sweep redoes nothing stored and ends equal to the uninterrupted one."""
    store = tmp_path / "runs.sqlite"
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    targets = sorted(rng.sample(range(1, TOTAL - 4), 3))
    stored_at: dict[str, float] = {}
    for target in [0, *targets]:  # 0: kill before any row exists (during start-up / store creation)
        # Each driver must store at least one new row before its kill (a loaded machine may have let
        # the previous kill land later than its target), and a task's rows are stored together, so a
        # target within the last task's rows would be reached only when the sweep is complete.
        target = 0 if target == 0 else max(target, len(stored_at) + 1)
        if target > TOTAL - len(GRID["lambdas"]):
            continue
        log = tmp_path / f"driver-{target}.log"
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(store)], stderr=log.open("w"))
        deadline = time.monotonic() + 60
        delay = rng.uniform(0, 0.5)
        start = time.monotonic()
        while _stored(store) < target or time.monotonic() - start < delay * (target == 0):
            assert driver.poll() is None and time.monotonic() < deadline, "the sweep ended before the kill"
            time.sleep(0.002)
        workers = _children(driver.pid)
        assert driver.poll() is None, f"the sweep stopped by itself: {log.read_text()[-2000:]}"
        assert workers or target == 0, "a sweep with stored rows has a worker process"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        for pid in workers:  # the pool's workers notice and exit too
            for _ in range(100):
                if not _alive(pid):
                    break
                time.sleep(0.05)
            assert not _alive(pid), f"worker {pid} outlived the killed sweep"
        if not store.exists():
            continue
        with wdlib.Store(store) as db:
            assert db.integrity_check() == "ok"
            rows = {r["key"]: r["stored_at"] for r in db.records()}
        assert len(rows) < TOTAL
        assert {k: rows[k] for k in stored_at} == stored_at  # earlier rows untouched
        stored_at = rows
    resumed = wdlib.sweep(**GRID, store=store, executor=cf.ThreadPoolExecutor(2))
    assert (resumed.computed, resumed.skipped) == (TOTAL - len(stored_at), len(stored_at))
    assert len(resumed) == TOTAL == len({row["key"] for row in resumed.rows})
    assert comparable(resumed) == comparable(swept_grid)
    kept = {row["key"]: row["stored_at"] for row in resumed.rows if row["key"] in stored_at}
    assert kept == stored_at


def test_two_sweeps_on_one_store_at_once(swept_grid: wdlib.SweepTable, tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite"
    drivers = [subprocess.Popen([sys.executable, "-c", DRIVER, str(store)], stderr=subprocess.PIPE)
               for _ in range(2)]
    for driver in drivers:
        _, err = driver.communicate(timeout=120)
        assert driver.returncode == 0, err.decode()
    table = wdlib.load_sweep(store)
    with wdlib.Store(store) as db:
        assert db.integrity_check() == "ok"
    assert comparable(table) == comparable(swept_grid)  # every run once: none lost, none duplicated


# --- output ---------------------------------------------------------------------------------------
