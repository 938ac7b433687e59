"""How a sweep's runs execute: diverged and failing runs, capability checks before any worker,
executors (threads, Dask) and the progress bar."""

from __future__ import annotations

import concurrent.futures as cf
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from sweep_grid import GRID, TOTAL, comparable

import wdlib
from wdlib.sweep import RunFailedError
from wdlib_numpy import NumpyBackend


def test_diverged_runs_are_stored_not_fatal(tmp_path: Path) -> None:
    table = wdlib.sweep([0, 3], seeds=[0], backends=["numpy"], lr=[0.003, 5.0], num_epochs=20,
                        store=tmp_path / "runs.sqlite", executor=cf.ThreadPoolExecutor(1))
    diverged = {(row["lr"], row["lambd"]): row["diverged"] for row in table.rows}
    assert diverged == {(0.003, 0.0): False, (0.003, 3.0): False, (5.0, 0.0): True, (5.0, 3.0): True}
    bad = next(row for row in table.rows if row["diverged"])
    assert bad["diverged_at_epoch"] >= 1 and bad["test_loss"] is None
    assert "diverged" in str(table)


class _FailsAboveOne(NumpyBackend):
    """NumPy whose gradient fails for lambd > 1: an error that shows only while the run trains."""

    name = "fails-above-one"

    def grad(self, objective, params, X, y):
        if objective.lambd > 1:
            raise wdlib.ConfigError("lambd", objective.lambd, "at most 1 on this backend")
        return super().grad(objective, params, X, y)


def test_a_failing_run_stops_the_sweep_with_one_clear_error_and_keeps_the_rest(tmp_path: Path) -> None:
    """An error raised while a run trains crosses the executor intact (one message naming the run),
    and the runs finished before it stay stored."""
    store = tmp_path / "runs.sqlite"
    with wdlib.temporary_backend(_FailsAboveOne), cf.ThreadPoolExecutor(1) as pool:
        with pytest.raises(RunFailedError, match=r"backend='fails-above-one', lambd=3.0.* at most 1") as err:
            wdlib.sweep([0, 3], backends=["fails-above-one"], engine="eager", num_epochs=5, store=store,
                         executor=pool)
    assert isinstance(err.value, wdlib.WdlibError)
    assert pickle.loads(pickle.dumps(err.value)).args == err.value.args
    assert {r["lambd"] for r in wdlib.load_sweep(store).rows} == {0.0}


def test_a_run_the_backend_cannot_do_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    """The NumPy backend has no fused L1 path and no native recipe for d2l: both known from the
    configuration alone, so refused before the store is created or a worker started."""
    store = tmp_path / "runs.sqlite"
    with pytest.raises(wdlib.ConfigError, match="engine='fused'"):
        wdlib.sweep([0, 3], backends=["numpy"], penalty=["l2", "l1"], engine="fused", store=store)
    with pytest.raises(wdlib.ConfigError, match=r"rng='native'.*no native recipe"):
        wdlib.sweep([0], backends=["numpy"], rng="native", store=store)
    assert not store.exists()


@pytest.fixture
def environ_restored() -> Any:
    """Undo what Dask writes into os.environ (OMP/MKL/OPENBLAS_NUM_THREADS=1 for its workers, kept
    in this process after the cluster closes), so later tests' subprocesses are not affected."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_dask_cluster_gives_the_same_rows(
    swept_grid: wdlib.SweepTable, tmp_path: Path, environ_restored: None
) -> None:
    import dask
    from distributed import Client, LocalCluster

    # Dask's nanny starts workers with one BLAS/OpenMP thread by default ("pre-spawn-environ"). The
    # NumPy fast path's bits currently depend on OpenBLAS's thread count, so give the workers the
    # same thread settings as the local pool: this test is about the sweep machinery.
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}), LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, Client(cluster) as client:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        table = wdlib.sweep(**GRID, store=tmp_path / "dask.sqlite", executor=client.get_executor())
    assert table.computed == TOTAL
    assert comparable(table) == comparable(swept_grid)


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    kw = {"seeds": [0], "backends": ["numpy"], "num_epochs": 2, "executor": cf.ThreadPoolExecutor(1)}
    wdlib.sweep([0, 1], store=tmp_path / "a.sqlite", **kw)  # stderr is not a terminal here: quiet
    assert capsys.readouterr().err == ""
    wdlib.sweep([0, 1], store=tmp_path / "b.sqlite", progress=True, **kw)
    err = capsys.readouterr().err
    assert "sweep" in err and "2/2" in err


def test_store_none_keeps_the_runs_in_the_table_and_writes_no_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    table = wdlib.sweep([0, 3], seeds=[0], backends=["numpy"], num_epochs=5, store=None,
                        executor=cf.ThreadPoolExecutor(1))
    assert table.store is None and len(table) == 2 and table.computed == 2
    assert list(tmp_path.iterdir()) == []  # no runs.sqlite in the working folder
    filed = wdlib.sweep([0, 3], seeds=[0], backends=["numpy"], num_epochs=5, store=tmp_path / "s.sqlite",
                        executor=cf.ThreadPoolExecutor(1))
    for a, b in zip(table.rows, filed.rows, strict=True):
        assert a["key"] == b["key"] and a["test_loss"] == b["test_loss"]
    assert "in memory" not in table.caption() and "s.sqlite" in filed.caption()


def test_a_warning_in_a_worker_process_names_the_worker_not_the_pool(tmp_path: Path,
                                                                     capfd: pytest.CaptureFixture) -> None:
    """A worker process has no line of the user's: the warning says where it came from instead of
    pointing at concurrent/futures/process.py."""
    wdlib.sweep([0.0], backends=["numpy"], lr=0.4, num_epochs=3, store=tmp_path / "runs.sqlite",
                workers=1, progress=False)
    err = capfd.readouterr().err
    assert "<wdlib sweep worker>:0: DivergenceWarning: the training loss grew" in err
    assert "concurrent" not in err
