"""The ``wdlib`` command: each subcommand, its outputs, and one-line errors with exit status 2."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wdlib
from wdlib.cli import main, parse_lambdas, parse_seeds

FRAMEWORKS = ("torch", "jax", "jaxlib", "mxnet")


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_ranges() -> None:
    grid = parse_lambdas(["0:10:41"])
    assert len(grid) == 41 and grid[0] == 0 and grid[-1] == 10 and grid[4] == 1.0
    assert grid == np.linspace(0, 10, 41).tolist()  # the same keys as a Python sweep over linspace
    assert parse_lambdas(["0", "3"]) == [0.0, 3.0] == parse_lambdas(["0,3"])
    assert parse_lambdas(["2:2:1"]) == [2.0]
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("0,4,7") == [0, 4, 7] and parse_seeds("3") == [3] and parse_seeds("2-2") == [2]


def _not_wdlib(tmp: Path) -> str:
    (tmp / "other.sqlite").write_text("not a database")
    return str(tmp / "other.sqlite")


def _old_schema(tmp: Path) -> str:
    wdlib.Store(tmp / "old.sqlite").close()
    with sqlite3.connect(tmp / "old.sqlite") as db:
        db.execute("UPDATE meta SET value='0' WHERE key='schema_version'")
    return str(tmp / "old.sqlite")


def _in_a_file(tmp: Path) -> str:
    (tmp / "notes").write_text("a file, not a folder")
    return str(tmp / "notes" / "out.json")


#: argv (``{tmp}`` is a fresh folder; a callable makes a file there first), what stderr must say.
ERRORS = [
    (["train", "--backend", "jaxx"], "--backend jaxx is not a known backend"),
    (["train", "--lambd", "-1"], "--lambd -1.0 is not valid"),
    (["train", "--dtype", "float16"], "--dtype float16"),
    (["train", "--lambd", "x"], "expected one number, got 'x'"),
    (["train", "--set", "lambda=3"], "did you mean 'lambd'"),
    (["train", "--json", _in_a_file], "is a file, not a folder"),  # a missing folder is created
    (["compare", "--backends", "numpy,jaxx"], "did you mean 'jax'"),
    (["compare", "--lambd", "0:10:x"], "--lambd 0:10:x"),
    (["compare", "--plot", "{tmp}/out.txt"], "ending in .png"),
    (["sweep", "--lambd", "0:10:x"], "--lambd 0:10:x is not valid"),
    (["sweep", "--lambd", "10:0:5"], "start <= stop"),
    (["sweep", "--lambd", ","], "--lambd ,"),
    (["sweep", "--lambd", "1", "--seeds", "5-2"], "write the smaller seed first: 2-5"),
    (["sweep", "--lambd", "1", "--seeds", "a-b"], "--seeds a-b"),
    (["sweep", "--lambd", "1", "--backends", "torch,nope"], "--backends nope"),
    (["sweep", "--lambd", "1", "--store", "{tmp}/missing/runs.sqlite"], "does not exist"),
    (["sweep", "--lambd", "1", "--store", "/sys/runs.sqlite"], "not writable"),
    (["sweep", "--lambd", "1", "--store", _not_wdlib], "not a wdlib store"),
    (["sweep", "--lambd", "1", "--store", _old_schema], "schema version 0"),
    (["sweep", "--lambd", "1", "--workers", "0"], "--workers 0"),
    (["sweep", "--lambd", "1", "--backends", "numpy", "--set", "engine=fused", "--set", "penalty=l1",
      "--workers", "1", "--store", "{tmp}/failing.sqlite"], "--set engine=fused is not valid"),
    (["sweep", "--lambd", "1", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
    (["sweep", "--store", "{tmp}/runs.sqlite"], "--lambd=None"),
    (["sweep", "--store", "{tmp}/none.sqlite", "--export", "{tmp}/out.csv"], "existing wdlib store"),
    (["reproduce", "gluon"], "invalid choice: 'gluon'"),
    (["nope"], "invalid choice: 'nope'"),
]


@pytest.mark.parametrize(("argv", "message"), ERRORS)
def test_user_mistakes_print_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list, message: str
) -> None:
    argv = [a(tmp_path) if callable(a) else a.format(tmp=tmp_path) for a in argv]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith("wdlib: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "runs.sqlite").exists()


def test_errors_in_a_real_process_and_help_imports_no_framework(tmp_path: Path) -> None:
    bad = subprocess.run([sys.executable, "-m", "wdlib", "sweep", "--lambd", "0:10:x"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "wdlib: error: --lambd 0:10:x is not valid: expected numbers >= 0 as 3, 0,1,3 or "
        "start:stop:count such as 0:10:41"]
    code = ("import sys; from wdlib.cli import main\n"
            "for argv in (['--help'], ['sweep', '--help'], ['backends'], ['train', '--backend', 'x'],\n"
            "             ['compare', '--lambd', '-1'],\n"
            "             ['sweep', '--lambd', '1', '--store', '/no/s.sqlite']):\n"
            "    main(argv)\n"
            f"print(sorted(set({FRAMEWORKS!r}) & set(sys.modules)), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert "wdlib sweep --lambd 0:10:41" in done.stdout  # the examples in --help


def test_backends(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["backends"], capsys)
    assert code == 0
    for info in wdlib.backends():
        assert str(info) in out


def test_train_writes_json_and_figure(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["train", "--backend", "numpy", "--lambd", "3", "--dtype", "float64",
                            "--num-epochs", "7", "--seed", "2", "--plot", f"{tmp_path}/r.png",
                            "--json", f"{tmp_path}/r.json"], capsys)
    assert code == 0
    run = wdlib.train("numpy", lambd=3, dtype="float64", num_epochs=7, seed=2)
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["test_loss"] == run.test_loss.tolist() and record["w"] == run.params["w"][:, 0].tolist()
    assert record["config"]["seed"] == 2 and record["config"]["lambd"] == 3
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert f"{run.w_norm:.4g}" in out


def test_compare_writes_csv(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["compare", "--backends", "numpy", "--lambd", "0", "3", "--set", "num_epochs=5",
                            "--csv", f"{tmp_path}/c.csv", "--plot", f"{tmp_path}/c.png"], capsys)
    assert code == 0
    with open(tmp_path / "c.csv") as f:
        rows = list(csv.DictReader(f))
    got = [(r["backend"], float(r["lambd"]), r["status"]) for r in rows]
    assert got == [("numpy", 0, "ok"), ("numpy", 3, "ok")]
    assert (tmp_path / "c.png").exists() and "max_abs_dw" in out


def test_sweep_then_export_from_the_store(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = str(tmp_path / "runs.sqlite")
    argv = ["sweep", "--lambd", "0:3:4", "--seeds", "0-1", "--backends", "numpy", "--set", "num_epochs=3",
            "--store", store, "--workers", "1"]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and "8 runs (8 computed, 0 already stored)" in out
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and "8 runs (0 computed, 8 already stored)" in out
    code, out, _ = run_cli(["sweep", "--store", store, "--export", f"{tmp_path}/all.csv", "--plot",
                            f"{tmp_path}/sweep.png"], capsys)
    assert code == 0
    with open(tmp_path / "all.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((float(r["lambd"]), int(r["seed"])) for r in rows) == [
        (lam, s) for lam in (0, 1, 2, 3) for s in (0, 1)]
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_no_vectorize_trains_every_run_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["sweep", "--lambd", "0,3", "--backends", "numpy", "--set", "num_epochs=3", "--workers", "1"]
    for flags, name, engine in (([], "batched", "vectorized"), (["--no-vectorize"], "alone", "fused")):
        code, out, _ = run_cli([*argv, *flags, "--store", f"{tmp_path}/{name}.sqlite"], capsys)
        assert code == 0 and "2 runs (2 computed, 0 already stored)" in out
        rows = wdlib.load_sweep(tmp_path / f"{name}.sqlite").rows
        assert [r["engine_used"] for r in rows] == [engine, engine]
    alone = wdlib.load_sweep(tmp_path / "alone.sqlite").rows
    single = wdlib.train("numpy", lambd=3, num_epochs=3)
    assert alone[1]["w"].tobytes() == single.params["w"].tobytes()


def test_sweep_on_a_dask_scheduler(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from distributed import LocalCluster

    argv = ["sweep", "--lambd", "0,3", "--backends", "numpy", "--set", "num_epochs=3"]
    with LocalCluster(n_workers=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        code, out, _ = run_cli([*argv, "--store", f"{tmp_path}/dask.sqlite", "--scheduler",
                                cluster.scheduler_address], capsys)
    assert code == 0 and "2 runs (2 computed, 0 already stored)" in out
    assert run_cli([*argv, "--store", f"{tmp_path}/local.sqlite", "--workers", "1"], capsys)[0] == 0
    dask, local = (wdlib.load_sweep(tmp_path / f"{name}.sqlite").rows for name in ("dask", "local"))
    assert [(r["key"], r["w"].tobytes()) for r in dask] == [(r["key"], r["w"].tobytes()) for r in local]


@pytest.mark.parametrize(("language", "label"), [("zh_CN", "w的L2范数"), ("en_US", "L2 norm of w:")])
def test_reproduce_prints_the_books_lines_and_writes_figures(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            language: str, label: str) -> None:
    monkeypatch.setenv("LANGUAGE", language)  # the printed lines default to the locale's edition
    code, out, _ = run_cli(["reproduce", "d2l", "--epochs", "5", "--out", f"{tmp_path}/figs"], capsys)
    assert code == 0
    assert out.count(f"printed as the book's code prints it: {label}") == 4
    assert len(list((tmp_path / "figs").glob("d2l-*.png"))) == 4
    assert len(list((tmp_path / "figs").glob("d2l-*.svg"))) == 4


def test_train_and_compare_on_a_data_file_with_model_and_optimizer(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((40, 6)), rng.standard_normal(40)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    code, _, _ = run_cli(["train", "--data", str(tmp_path / "d.npz"), "--model", "mlp", "--hidden", "8x4",
                          "--optimizer", "momentum", "--opt", "beta=0.8", "--opt", "nesterov=true",
                          "--wd", "0.1", "--decay", "decoupled", "--dtype", "float64", "--num-epochs", "4",
                          "--json", str(tmp_path / "r.json")], capsys)
    assert code == 0
    run = wdlib.train("numpy", data=(X, y), model="mlp", hidden=(8, 4), optimizer="momentum",
                      optimizer_args={"beta": 0.8, "nesterov": True}, wd=0.1, decay="decoupled",
                      dtype="float64", num_epochs=4)
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["test_loss"] == run.test_loss.tolist()
    assert record["params"]["W2"] == run.params["W2"].tolist()
    code, out, _ = run_cli(["compare", "--data", str(tmp_path / "d.npz"), "--backends", "numpy,torch",
                            "--lambd", "0", "1", "--set", "num_epochs=3"], capsys)
    assert code == 0 and out.count(" ok") == 4


def test_a_bad_data_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,3\n4,x,6\n")
    code, _, err = run_cli(["train", "--data", str(tmp_path / "d.csv")], capsys)
    assert code == 2 and "--data" in err and len(err.strip().splitlines()) == 1


def test_sweep_takes_a_grid_of_the_optimizers_wd(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--wd 0 1`` (or ``0,1``) is the grid of a concise sweep or an AdamW sweep, λ then 0; the rows are
    those of the Python sweep over ``wd=[0, 1]``."""
    store = tmp_path / "wd.sqlite"
    assert main(["sweep", "--mode", "concise", "--wd", "0", "1", "--backends", "numpy", "--set",
                 "num_epochs=3", "--store", str(store), "--quiet", "--workers", "1"]) == 0
    table = wdlib.load_sweep(store)
    assert sorted(row["wd"] for row in table.rows) == [0.0, 1.0]
    assert {row["lambd"] for row in table.rows} == {0}
    again = wdlib.sweep(backends=["numpy"], mode="concise", wd=[0, 1], num_epochs=3, store=store)
    assert again.computed == 0
    with pytest.raises(wdlib.ConfigError, match=r"^lambdas=None.*wd="):
        wdlib.sweep(backends=["numpy"], store=None)
