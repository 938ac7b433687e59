"""Sweeps: the grid, the store, restarts after SIGKILL, concurrent writers, Dask, and the figure."""

from __future__ import annotations

import concurrent.futures as cf
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sweep_grid import GRID, TOTAL, comparable
from test_fused import TOL

import wdlib
from wdlib.store import config_key
from wdlib.sweep import MAX_CHUNK, plan_tasks, sweep_configs
from wdlib.sweep_table import store_record


def test_grid_is_every_combination_and_lists_sweep_any_field() -> None:
    configs = sweep_configs([0, 3, 3], seeds=range(2), backends=["numpy"], dtype=["float32", "float64"],
                            preset=["d2l", "gluonbook"], num_epochs=4)
    assert len(configs) == 2 * 2 * 2 * 2  # the repeated 3 is one lambd
    assert len({config_key(c) for c in configs}) == len(configs)
    assert {(c.preset, c.dtype, c.lambd, c.seed) for c in configs} == {
        (p, d, lam, s) for p in ("d2l", "gluonbook") for d in ("float32", "float64")
        for lam in (0.0, 3.0) for s in (0, 1)}
    assert all(c.on_divergence == "record" and c.num_epochs == 4 for c in configs)
    numpy_grid = sweep_configs(np.linspace(0, 1, 3), seeds=np.arange(2), backends="numpy")
    assert [(c.lambd, c.seed) for c in numpy_grid] == [(0, 0), (0, 1), (0.5, 0), (0.5, 1), (1, 0), (1, 1)]


def _numbers(result: Any) -> dict[str, Any]:
    """The numbers of a stored row or of a Run."""
    if isinstance(result, dict):
        return result
    return {"test_loss_curve": result.test_loss, "train_loss_curve": result.train_loss, **result.params,
            "w_norm": result.w_norm, "diverged": result.diverged}


def assert_rows_close(row: dict[str, Any], other: Any) -> None:
    """A stored row equals another row or a Run within the cross-backend tolerance of its dtype
    (float64 1e-12 relative on w and the test loss, float32 1e-4; the training loss as in
    tests/test_fused.py)."""
    tol, train_tol = TOL[row["dtype"]]
    ref = _numbers(other)
    np.testing.assert_allclose(row["test_loss_curve"], ref["test_loss_curve"], rtol=tol, atol=0)
    # The training loss near 0 (λ = 0 overfits) is a cancellation: rounding of the initial loss's scale.
    floor = 10 * np.finfo(row["dtype"]).eps * ref["train_loss_curve"][0]
    np.testing.assert_allclose(row["train_loss_curve"], ref["train_loss_curve"], rtol=train_tol, atol=floor)
    for name in ("w", "b"):
        assert row[name].dtype == ref[name].dtype and row[name].shape == ref[name].shape
        np.testing.assert_allclose(row[name], ref[name], rtol=tol, atol=tol * np.abs(ref["w"]).max())
    assert row["w_norm"] == pytest.approx(ref["w_norm"], rel=tol)
    assert row["diverged"] is ref["diverged"]


def test_sweep_stores_every_run_equal_to_train(swept_grid: wdlib.SweepTable) -> None:
    """The default sweep trains each seed's λ as one batched run: equal to ``wdlib.train`` within the
    tolerance, not bitwise, and stored as "vectorized"."""
    assert len(swept_grid) == TOTAL and (swept_grid.computed, swept_grid.skipped) == (TOTAL, 0)
    assert len({row["key"] for row in swept_grid.rows}) == TOTAL
    assert {row["engine_used"] for row in swept_grid.rows} == {"vectorized"}
    for row in swept_grid.rows[::7]:
        run = wdlib.train("numpy", lambd=row["lambd"], seed=row["seed"], num_epochs=GRID["num_epochs"])
        assert_rows_close(row, run)
        assert row["diverged"] is False


def test_unvectorized_sweep_stores_every_run_bitwise_equal_to_train(tmp_path: Path) -> None:
    table = wdlib.sweep([0, 3], seeds=[0, 1], backends=["numpy"], num_epochs=30, vectorize=False,
                        store=tmp_path / "runs.sqlite", executor=cf.ThreadPoolExecutor(2))
    assert len(table) == 4 and {row["engine_used"] for row in table.rows} == {"fused"}
    for row in table.rows:
        run = wdlib.train("numpy", lambd=row["lambd"], seed=row["seed"], num_epochs=30)
        assert row["test_loss_curve"].tobytes() == run.test_loss.tobytes()
        assert row["train_loss_curve"].tobytes() == run.train_loss.tobytes()
        assert row["w"].tobytes() == run.params["w"].tobytes()
        assert row["w_norm"] == run.w_norm and row["diverged"] is False


# --- vectorized sweeps ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vectorized_rows_equal_unvectorized_rows_within_tolerance(
    backend: str, dtype: str, tmp_path: Path
) -> None:
    kw = {"seeds": [0, 1], "backends": [backend], "num_epochs": 20, "dtype": dtype,
          "decay_bias": [False, True], "executor": cf.ThreadPoolExecutor(2)}
    lambdas = [0, 0.5, 3, 10]
    batched = wdlib.sweep(lambdas, store=tmp_path / "v.sqlite", **kw)
    single = wdlib.sweep(lambdas, store=tmp_path / "s.sqlite", vectorize=False, **kw)
    assert [r["key"] for r in batched.rows] == [r["key"] for r in single.rows] and len(batched) == 16
    assert {r["engine_used"] for r in batched.rows} == {"vectorized"}
    assert {r["engine_used"] for r in single.rows} == {"fused"}
    for row, other in zip(batched.rows, single.rows, strict=True):
        assert_rows_close(row, other)


class Spy(cf.ThreadPoolExecutor):
    """A thread pool that records what is submitted to it."""

    def __init__(self) -> None:
        super().__init__(2)
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        self.calls.append((fn.__name__, args))
        return super().submit(fn, *args, **kwargs)


def test_a_group_mixing_seeds_is_split_per_seed_and_other_runs_go_alone(tmp_path: Path) -> None:
    spy = Spy()
    table = wdlib.sweep([3, 0, 1], seeds=[0, 1], backends=["numpy"], penalty=["l2", "l1"], num_epochs=5,
                        store=tmp_path / "runs.sqlite", executor=spy)
    batched = [args for name, args in spy.calls if name == "run_lambdas"]
    assert [(fields["seed"], fields["penalty"], lambdas) for fields, lambdas, *_ in batched] == [
        (0, "l2", [0.0, 1.0, 3.0]), (1, "l2", [0.0, 1.0, 3.0])]  # one task per seed, λ sorted
    alone = [args[0] for name, args in spy.calls if name == "run_config"]
    assert sorted((f["seed"], f["lambd"]) for f in alone) == [(s, lam) for s in (0, 1) for lam in (0, 1, 3)]
    assert {f["penalty"] for f in alone} == {"l1"}  # no fast path: one at a time
    assert len(table) == 12 and table.computed == 12
    for seed in (0, 1):  # each seed's rows are exactly that seed's batched run
        runs = wdlib.train_lambdas("numpy", [0, 1, 3], seed=seed, num_epochs=5)
        rows = [r for r in table.rows if r["seed"] == seed and r["penalty"] == "l2"]
        assert [r["engine_used"] for r in rows] == ["vectorized"] * 3
        assert [r["w"].tobytes() for r in rows] == [run.params["w"].tobytes() for run in runs]


def test_plan_tasks_chunks_depend_on_the_grid_not_on_the_store() -> None:
    configs = sweep_configs(np.arange(130), seeds=[0], backends=["numpy"])
    tasks = plan_tasks(configs, set())
    assert [len(unit) for unit, _ in tasks] == [44, 43, 43]  # ceil(130 / 64) chunks, near-equal
    assert all(len(unit) <= MAX_CHUNK for unit, _ in tasks)
    assert [c.lambd for unit, _ in tasks for c in unit] == [float(x) for x in range(130)]
    stored = {config_key(c) for c in configs[:50]}  # the first chunk stored, 6 of the second
    resumed = plan_tasks(configs, stored)
    assert [unit for unit, _ in resumed] == [unit for unit, _ in tasks[1:]]  # same chunks, trained whole
    assert [len(missing) for _, missing in resumed] == [37, 43]  # only the missing runs are stored
    assert [len(unit) for unit, _ in plan_tasks(configs, set(), vectorize=False)] == [1] * 130
    eager = sweep_configs([0, 3], backends=["numpy"], engine="eager")
    assert [len(unit) for unit, _ in plan_tasks(eager, set())] == [1, 1]
    assert [len(unit) for unit, _ in plan_tasks(sweep_configs([3], backends=["numpy"]), set())] == [1]


def test_resuming_a_partly_stored_chunk_gives_the_uninterrupted_bits(backend: str, tmp_path: Path) -> None:
    """A batched column's bits depend on the other λ of its chunk; so a resumed sweep trains the
    whole chunk again and stores only what is missing, which equals the uninterrupted sweep."""
    kw = {"seeds": [0], "backends": [backend], "num_epochs": 20, "executor": cf.ThreadPoolExecutor(1)}
    lambdas = [0, 0.5, 1, 3, 10]
    whole = wdlib.sweep(lambdas, store=tmp_path / "whole.sqlite", **kw)
    with wdlib.Store(tmp_path / "part.sqlite") as part:
        for row in whole.rows[1::2]:  # as if killed after storing λ = 0.5 and 3
            config = wdlib.make_config(**{f: row[f] for f in wdlib.Config.__dataclass_fields__})
            part.put(config, store_record(row))
    resumed = wdlib.sweep(lambdas, store=tmp_path / "part.sqlite", **kw)
    assert (resumed.computed, resumed.skipped) == (3, 2)
    assert comparable(resumed) == comparable(whole)


def test_rerun_skips_everything_stored(swept_grid: wdlib.SweepTable) -> None:
    with wdlib.Store(swept_grid.store) as store:
        before = {r["key"]: r["stored_at"] for r in store.records()}
    again = wdlib.sweep(**GRID, store=swept_grid.store, executor=cf.ThreadPoolExecutor(1))
    assert (again.computed, again.skipped) == (0, TOTAL)
    assert comparable(again) == comparable(swept_grid)
    assert {r["key"]: r["stored_at"] for r in again.rows} == before  # nothing rewritten
    assert comparable(wdlib.load_sweep(swept_grid.store)) == comparable(swept_grid)


def test_a_larger_sweep_computes_only_the_new_runs(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite"
    pool = cf.ThreadPoolExecutor(2)
    kw = {"backends": ["numpy"], "num_epochs": 3, "store": store, "executor": pool}
    first = wdlib.sweep([0, 3], seeds=[0], **kw)
    second = wdlib.sweep([0, 3, 5], seeds=[0, 1], **kw)
    assert (first.computed, second.computed, second.skipped) == (2, 4, 2)
    assert len(wdlib.load_sweep(store)) == 6


def test_exports_and_figure(swept_grid: wdlib.SweepTable, tmp_path: Path) -> None:
    import csv

    swept_grid.to_csv(tmp_path / "t.csv")
    with open(tmp_path / "t.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == TOTAL and {"key", "lambd", "seed", "backend", "test_loss"} <= set(rows[0])
    assert [float(r["test_loss"]) for r in rows] == [r["test_loss"] for r in swept_grid.rows]
    swept_grid.to_json(tmp_path / "t.json")
    data = json.loads((tmp_path / "t.json").read_text())
    assert len(data) == TOTAL and len(data[0]["test_loss_curve"]) == GRID["num_epochs"]
    try:
        import pandas  # noqa: F401  (optional: the table works without it)
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            swept_grid.to_pandas()
    else:
        frame = swept_grid.to_pandas()
        assert frame.shape == (TOTAL, len(swept_grid.columns))
        assert frame["test_loss"].tolist() == [r["test_loss"] for r in swept_grid.rows]

    fig = swept_grid.figure()
    loss_ax, norm_ax = fig.axes
    assert loss_ax.get_xscale() == "symlog" and loss_ax.get_yscale() == "log"
    (sgd,) = [line for line in loss_ax.lines if "SGD" in line.get_label()]
    expected = [np.mean([r["test_loss"] for r in swept_grid.rows if r["lambd"] == lam])
                for lam in GRID["lambdas"]]
    np.testing.assert_allclose(sgd.get_ydata(), expected, rtol=1e-12)
    (exact,) = [line for line in norm_ax.lines if line.get_label() == "exact ridge"]
    x, y = exact.get_xdata(), exact.get_ydata()
    at3 = np.mean([wdlib.ridge(wdlib.make_config(seed=s), 3).w_norm for s in GRID["seeds"]])
    assert y[list(x).index(3.0)] == pytest.approx(at3, rel=1e-10)
    swept_grid.plot(tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- argument errors --------------------------------------------------------------------------------


def _not_wdlib(path: Path) -> Path:
    path.write_text("hello")
    return path


def _other_schema(path: Path) -> Path:
    wdlib.Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='0' WHERE key='schema_version'")
    return path


BAD = [
    ({"lambdas": []}, wdlib.ConfigError, "lambdas=\\[\\] .*non-empty"),
    ({"lambdas": [1, -1]}, wdlib.ConfigError, "lambdas=-1.0"),
    ({"seeds": []}, wdlib.ConfigError, "seeds=\\[\\] .*non-empty"),
    ({"backends": ["jaxx"]}, wdlib.UnknownBackendError, "did you mean 'jax'"),
    ({"backends": []}, wdlib.ConfigError, "non-empty list of backend names"),
    ({"executor": "dask"}, wdlib.ExecutorError, "not a concurrent.futures.Executor"),
    ({"executor": cf.ThreadPoolExecutor(1), "workers": 2}, wdlib.ConfigError, "workers=2"),
    ({"workers": 0}, wdlib.ConfigError, "workers=0"),
    ({"vectorize": "no"}, wdlib.ConfigError, "vectorize='no'"),
    ({"dtype": ["float32", "float16"]}, wdlib.ConfigError, "dtype='float16'"),
    ({"on_divergence": "raise"}, wdlib.ConfigError, "always records"),
    ({"store": "missing/runs.sqlite"}, wdlib.StoreError, "does not exist"),
    ({"store": "/sys/runs.sqlite"}, wdlib.StoreError, "not writable"),
    ({"store": _not_wdlib}, wdlib.StoreError, "not a wdlib store"),
    ({"store": _other_schema}, wdlib.StoreError, "schema version 0"),
]


@pytest.mark.parametrize(("changes", "error", "match"), BAD)
def test_bad_arguments_are_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], error: type, match: str
) -> None:
    monkeypatch.chdir(tmp_path)
    kwargs = {**GRID, "store": "runs.sqlite", **changes}
    if callable(kwargs["store"]):
        kwargs["store"] = kwargs["store"](tmp_path / "given.sqlite")
    with pytest.raises(error, match=match) as err:
        wdlib.sweep(**kwargs)
    assert isinstance(err.value, wdlib.WdlibError) and isinstance(err.value, (ValueError, TypeError))
    assert not (tmp_path / "runs.sqlite").exists()  # nothing was run or stored


def test_native_rng_runs_draw_their_own_inputs(tmp_path: Path) -> None:
    """A sweep of rng="native" configs stores the same bits as wdlib.train with the book's draws."""
    table = wdlib.sweep([0.0, 3.0], backends=["torch"], rng="native", num_epochs=10,
                        store=tmp_path / "native.sqlite", workers=1)
    for lam in (0.0, 3.0):
        row = next(r for r in table.rows if r["lambd"] == lam)
        run = wdlib.train("torch", lambd=lam, rng="native", num_epochs=10)
        assert row["test_loss"] == run.test_loss[-1]


def test_a_concise_sweep_grids_the_frameworks_weight_decay(tmp_path: Path) -> None:
    """In mode="concise" the λ grid is wd (as in compare): each row is wdlib.train(mode="concise", wd=λ)."""
    table = wdlib.sweep([0, 3], backends=["numpy"], mode="concise", store=tmp_path / "c.sqlite",
                        num_epochs=10)
    assert [(row["mode"], row["lambd"], row["wd"]) for row in table.rows] == [
        ("concise", 0.0, 0.0), ("concise", 0.0, 3.0)]
    alone = wdlib.train("numpy", mode="concise", wd=3, num_epochs=10)
    assert table.rows[1]["test_loss"] == alone.test_loss[-1]
    same = wdlib.sweep([0], backends=["numpy"], mode="concise", wd=[0, 3], store=tmp_path / "c.sqlite",
                       num_epochs=10)  # the grid given as wd=: the same runs, found in the store
    assert same.computed == 0 and [row["key"] for row in same.rows] == [row["key"] for row in table.rows]
    with pytest.raises(wdlib.ConfigError, match=r"^lambdas=.*give the weight-decay grid once"):
        wdlib.sweep([0, 3], backends=["numpy"], mode="concise", wd=1, store=tmp_path / "c.sqlite")


def test_sweep_figure_of_your_own_data_draws_its_ridge_path(tmp_path) -> None:
    """The exact ridge line is that of the swept arrays (not the chapter's data); a model it does not
    describe (the MLP) gets none; the titles and legends say what was trained."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8))
    y = X @ rng.standard_normal(8) + 0.1 * rng.standard_normal(60)
    table = wdlib.sweep([0.0, 1.0, 10.0], data=(X, y), backends=["numpy"], progress=False,
                        store=tmp_path / "own.sqlite", workers=1)
    loss_ax, norm_ax = table.figure().axes
    assert loss_ax.get_title().startswith("your data:")
    (exact,) = [line for line in norm_ax.lines if line.get_label() == "exact ridge"]
    config, arrays = wdlib.data.data_config((X, y), lambd=10.0)
    expected = wdlib.ridge(wdlib.make_problem(config, arrays), 10.0).w_norm
    assert exact.get_ydata()[list(exact.get_xdata()).index(10.0)] == pytest.approx(expected, rel=1e-12)
    reloaded = wdlib.load_sweep(tmp_path / "own.sqlite")  # the store has no arrays: no ridge line
    assert [line.get_label() for line in reloaded.figure().axes[1].lines] == ["numpy (SGD)"]
    mlp = wdlib.sweep([0.0, 1.0], data=(X, y), backends=["numpy"], model="mlp", hidden=(4,),
                      optimizer="adam", lr=0.01, num_epochs=5, progress=False, workers=1)
    assert [line.get_label() for line in mlp.figure().axes[0].lines] == ["numpy (Adam)"]


def test_a_tuple_valued_setting_is_one_value_and_a_list_the_values_swept() -> None:
    """hidden=(8, 16) is one MLP of two layers in a sweep as in train (it was two one-layer MLPs)."""
    one = sweep_configs([0.0], backends=["numpy"], model="mlp", hidden=(8, 16), penalize=("W1", "b1"),
                        optimizer="momentum", optimizer_args={"beta": 0.5})
    assert [(c.hidden, c.penalize, c.optimizer_args) for c in one] == [
        ((8, 16), ("W1", "b1"), (("beta", 0.5),))]
    two = sweep_configs([0.0], backends=["numpy"], model="mlp", hidden=[(8,), (8, 16)])
    assert [c.hidden for c in two] == [(8,), (8, 16)]


def test_sweep_figure_puts_the_swept_penalty_on_its_x_axis() -> None:
    """A grid over the optimizer's wd (AdamW) is drawn against wd, one line per other setting swept;
    a grid over λ against λ."""
    table = wdlib.sweep([0], backends=["numpy"], optimizer="adam", decay="decoupled", lr=[0.01, 0.03],
                        wd=[0.0, 1.0, 10.0], num_epochs=5, progress=False, workers=1)
    loss_ax, _ = table.figure().axes
    assert loss_ax.get_xlabel() == "wd"
    lines = {line.get_label(): sorted(line.get_xdata()) for line in loss_ax.lines}
    assert lines == {"numpy, lr=0.01 (AdamW)": [0.0, 1.0, 10.0], "numpy, lr=0.03 (AdamW)": [0.0, 1.0, 10.0]}
    by_lambd = wdlib.sweep([0, 1, 3], backends=["numpy"], num_epochs=5, progress=False, workers=1)
    assert by_lambd.figure().axes[0].get_xlabel() == "λ"
