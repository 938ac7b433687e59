"""Figures and rich display: a Figure returned, no pyplot state touched, files only when asked, short
reprs, notebook HTML, the long per-epoch frame, and one naming of the loss columns everywhere."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import wdlib
from wdlib.plot import FORMATS

EPOCHS = 6


@pytest.fixture(scope="module")
def runs() -> list[wdlib.Run]:
    return [wdlib.train("numpy", lambd=lam, num_epochs=EPOCHS) for lam in (0, 3)]


@pytest.fixture(scope="module")
def comparison() -> wdlib.Comparison:
    return wdlib.compare(["numpy"], lambd=[0, 3], seeds=[0, 1], num_epochs=EPOCHS)


@pytest.fixture(scope="module")
def concise_sweep(tmp_path_factory: pytest.TempPathFactory) -> wdlib.SweepTable:
    import concurrent.futures as cf

    return wdlib.sweep([0], mode="concise", wd=[0, 1, 3], seeds=[0, 1], backends=["numpy"],
                       num_epochs=EPOCHS, store=tmp_path_factory.mktemp("s") / "c.sqlite",
                       executor=cf.ThreadPoolExecutor(1))


def _python(code: str, cwd: Path, **env: str) -> str:
    import os

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_import_and_train_import_no_matplotlib(tmp_path: Path) -> None:
    out = _python("import sys, wdlib; wdlib.train('numpy', num_epochs=2); "
                  "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))", tmp_path)
    assert out.strip() == "[]"


def test_figures_leave_the_users_backend_and_pyplot_alone(tmp_path: Path) -> None:
    """The old plot.py called matplotlib.use("Agg"): the user's own plt.show() then showed nothing."""
    code = (
        "import io, sys, matplotlib\n"
        "matplotlib.use('svg')\n"  # the user's choice, as a desktop user would pick TkAgg
        "import wdlib\n"
        "runs = [wdlib.train('numpy', lambd=l, num_epochs=3) for l in (0, 3)]\n"
        "wdlib.plot(runs); wdlib.plot(runs, io.BytesIO()); wdlib.plot(runs[0], 'f/r.png')\n"
        "wdlib.compare(['numpy'], lambd=3, num_epochs=3).plot(io.BytesIO())\n"
        "import matplotlib.pyplot as plt\n"
        "print(matplotlib.get_backend(), plt.get_fignums())\n"
    )
    assert _python(code, tmp_path).split() == ["svg", "[]"]
    code = ("import sys, wdlib\nwdlib.plot(wdlib.train('numpy', num_epochs=3))\n"
            "print('matplotlib.pyplot' in sys.modules)")
    assert _python(code, tmp_path).strip() == "False"  # wdlib never imports pyplot


def test_plot_returns_a_figure_and_writes_nothing_without_a_path(
        runs: list[wdlib.Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fig = wdlib.plot(runs)
    assert isinstance(fig, Figure) and list(tmp_path.iterdir()) == []
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and ax.get_title() == "numpy, d2l preset"
    assert [line.get_label() for line in ax.lines] == [
        "numpy, λ=0 train", "numpy, λ=0 test", "numpy, λ=3 train", "numpy, λ=3 test"]
    np.testing.assert_array_equal(ax.lines[3].get_ydata(), runs[1].test_loss)
    assert wdlib.plot(runs[1]).axes[0].get_title() == "numpy, d2l preset, λ=3"
    png = fig._repr_png_()  # what Jupyter shows inline
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_draws_on_a_given_axes(runs: list[wdlib.Run]) -> None:
    mine = Figure()
    left, right = mine.subplots(1, 2)
    assert wdlib.plot(runs, ax=right) is mine
    assert len(right.lines) == 4 and len(left.lines) == 0
    sub = Figure().subfigures(1, 2)[1]
    assert wdlib.plot(runs[0], ax=sub.subplots()) is sub.figure  # the root figure, to save or show
    with pytest.raises(wdlib.ConfigError, match=r"ax=.*a matplotlib Axes"):
        wdlib.plot(runs, ax="left")


@pytest.mark.parametrize("fmt", [f[1:] for f in FORMATS])
def test_plot_writes_files_and_file_objects(runs: list[wdlib.Run], tmp_path: Path, fmt: str) -> None:
    magic = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[fmt]
    path = tmp_path / "new" / "folder" / f"runs.{fmt}"  # missing folders are created
    assert isinstance(wdlib.plot(runs, path), Figure)
    assert path.read_bytes().startswith(magic)
    buffer = io.BytesIO()
    wdlib.plot(runs, buffer, format=fmt)
    assert buffer.getvalue().startswith(magic)


def test_bad_targets_are_refused_before_drawing(runs: list[wdlib.Run], tmp_path: Path) -> None:
    with pytest.raises(wdlib.ConfigError, match=r"path=.*\.png, \.svg, \.pdf"):
        wdlib.plot(runs, tmp_path / "runs.bmp")
    with pytest.raises(wdlib.ConfigError, match=r"path=42"):
        wdlib.plot(runs, 42)
    with pytest.raises(wdlib.ConfigError, match=r"format='bmp'.*'png', 'svg', 'pdf', .*'jpg'"):
        wdlib.plot(runs, io.BytesIO(), format="bmp")  # matplotlib writes jpg, not bmp
    with pytest.raises(wdlib.ConfigError, match=r"runs=\[\]"):
        wdlib.plot([])
    assert list(tmp_path.iterdir()) == []


def test_a_dict_of_runs_gets_one_panel_each(runs: list[wdlib.Run]) -> None:
    fig = wdlib.plot({"no decay": runs[0], "decay": runs[1], "again": runs[0]})
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [
        "numpy, d2l preset: no decay", "numpy, d2l preset: decay", "numpy, d2l preset: again"]
    assert len(fig.axes) == 4  # two to a row; the empty fourth panel hidden


def test_comparison_repr_html_and_figure(comparison: wdlib.Comparison) -> None:
    text = repr(comparison)
    assert text.startswith("<Comparison of numpy: λ = 0, λ = 3; seeds 0, 1; float32; 4 runs")
    assert "all agree" in text and len(text) < 200
    page = comparison._repr_html_()
    assert page.startswith('<table class="dataframe">') and page.count("<tr>") == 1 + len(comparison)
    assert "<th>lambd</th>" in page and "<th>wd</th>" not in page and "<th>mode</th>" not in page
    fig = comparison.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[0].get_title() == "d2l: λ = 0, 2 seeds: mean, min–max"
    mean = np.mean([comparison.runs[("numpy", 3.0, s)].test_loss for s in (0, 1)], axis=0)
    np.testing.assert_allclose(fig.axes[1].lines[1].get_ydata(), mean, rtol=1e-12)
    mine = Figure()
    axes = mine.subplots(1, 2)
    assert comparison.figure(ax=list(axes)) is mine and len(axes[0].lines) == 2
    with pytest.raises(wdlib.ConfigError, match="a sequence of 2 matplotlib Axes"):
        comparison.plot(ax=axes[0])


def test_concise_comparison_shows_wd_not_lambd() -> None:
    result = wdlib.compare(["numpy"], mode="concise", lambd=3, num_epochs=EPOCHS)
    (row,) = result.rows
    assert (row["mode"], row["wd"], row["lambd"]) == ("concise", 3.0, 0.0)
    header = str(result).splitlines()[0].split()
    assert "wd" in header and "lambd" not in header
    assert "wd = 3 (concise)" in repr(result)
    assert result.figure().axes[0].get_title() == "d2l: wd = 3 (concise), seed 0"


def test_long_frames_have_one_row_per_run_and_epoch(comparison: wdlib.Comparison,
                                                    concise_sweep: wdlib.SweepTable) -> None:
    for table in (comparison, concise_sweep):
        frame = table.to_pandas(long=True)
        assert len(frame) == len(table) * EPOCHS
        assert list(frame.columns[-3:]) == ["epoch", "train_loss", "test_loss"]
        assert set(frame.columns) >= {"backend", "seed", "mode", "lambd", "wd"}
        assert frame["epoch"].tolist()[:EPOCHS] == list(range(1, EPOCHS + 1))
        last = frame[frame["epoch"] == EPOCHS]["test_loss"].tolist()
        assert last == pytest.approx([row["test_loss"] for row in table.rows], rel=1e-15)
        wide = table.to_pandas()
        assert {"train_loss", "test_loss"} <= set(wide.columns) and len(wide) == len(table)
    with pytest.raises(wdlib.ConfigError, match="long='yes'"):
        comparison.to_pandas(long="yes")


def test_one_naming_of_the_loss_columns(comparison: wdlib.Comparison, concise_sweep: wdlib.SweepTable,
                                        tmp_path: Path) -> None:
    import csv
    import json

    for table, name in ((comparison, "c"), (concise_sweep, "s")):
        table.to_csv(tmp_path / "missing" / f"{name}.csv")  # a missing folder is created, as for figures
        with open(tmp_path / "missing" / f"{name}.csv") as f:
            header = next(csv.reader(f))
        assert {"train_loss", "test_loss", "w_norm", "seconds"} <= set(header)
        assert not any(c.startswith("final_") for c in header)
        data = json.loads(table.to_json())
        assert len(data[0]["train_loss_curve"]) == len(data[0]["test_loss_curve"]) == EPOCHS
        assert data[0]["test_loss"] == data[0]["test_loss_curve"][-1]


def test_sweep_table_repr_html_and_concise_figure(concise_sweep: wdlib.SweepTable) -> None:
    text = repr(concise_sweep)
    assert text == ("<SweepTable in c.sqlite: 6 runs (6 computed, 0 already stored); backends numpy; "
                    "wd 0, 1, 3; seeds 0, 1>")
    assert concise_sweep.shown[:3] == ("backend", "wd", "seed")
    page = concise_sweep._repr_html_()
    assert "<th>wd</th>" in page and "<th>lambd</th>" not in page and "6 runs (6 computed" in page
    fig = concise_sweep.plot()
    loss_ax, _ = fig.axes
    assert loss_ax.get_xlabel() == "wd (concise)"
    (sgd,) = loss_ax.lines  # no exact ridge path for concise runs
    np.testing.assert_allclose(sgd.get_xdata(), [0, 1, 3])


def test_html_tables_are_cut_for_long_tables() -> None:
    from wdlib.table import HTML_ROWS, Table

    table = Table([{"a": i, "b": "<x>"} for i in range(HTML_ROWS + 5)], columns=["a", "b"])
    page = table._repr_html_()
    assert page.count("<tr>") == 1 + HTML_ROWS + 1 and "... 5 more rows" in page
    assert "&lt;x&gt;" in page and "<x>" not in page


def test_ridge_reprs_are_short() -> None:
    config = wdlib.make_config(seed=0)
    solution = wdlib.ridge(config, 3)
    text = repr(solution)
    assert text.startswith("RidgeSolution(lambd=3, train_loss=") and "w: (200, 1)" in text
    assert len(text) < 150
    path = wdlib.ridge_path(config, np.linspace(0, 10, 101))
    text = repr(path)
    assert text.startswith("RidgePath(101 λ from 0 to 10; lowest test_loss") and len(text) < 150


def test_a_plain_table_has_a_short_repr_and_says_it_has_no_figure() -> None:
    table = wdlib.decay_semantics()
    assert repr(table).startswith(f"<DecayTable: {len(table)} rows; columns key, framework")
    with pytest.raises(TypeError, match="has no figure: Comparison and SweepTable have one"):
        table.plot()


def test_legend_and_title_name_what_tells_the_runs_apart() -> None:
    """Adam + L2 against AdamW: the legend names the decay (λ, or wd and how it acts), the title what
    the runs share (the optimizer, the learning rate); a user's data are not called the book's."""
    common = {"optimizer": "adam", "lr": 0.01, "num_epochs": 3}
    l2 = wdlib.train("numpy", lambd=0.01, **common)
    adamw = wdlib.train("numpy", wd=0.01, decay="decoupled", **common)
    fast = wdlib.train("numpy", lambd=0.01, **{**common, "lr": 0.02})
    ax = wdlib.plot([l2, adamw]).axes[0]
    assert ax.get_title() == "numpy, d2l preset, optimizer=adam, lr=0.01"
    assert [line.get_label() for line in ax.lines][::2] == [
        "numpy, λ=0.01 train", "numpy, λ=0, wd=0.01 (decoupled) train"]
    ax = wdlib.plot([l2, fast]).axes[0]
    assert [line.get_label() for line in ax.lines][::2] == [
        "numpy, λ=0.01, lr=0.01 train", "numpy, λ=0.01, lr=0.02 train"]
    X = np.random.default_rng(0).standard_normal((40, 3))
    own = wdlib.train("numpy", data=(X, X.sum(axis=1)), num_epochs=2)
    assert wdlib.plot(own).axes[0].get_title() == "numpy, your data, λ=0"


def test_sweep_and_compare_titles_name_the_model_the_runs_share() -> None:
    common = {"model": "mlp", "hidden": (8,), "num_epochs": 2}
    table = wdlib.sweep([0.0, 1.0], backends=["numpy"], store=None, progress=False, workers=1, **common)
    assert [ax.get_title() for ax in table.figure().axes][:1] == [
        "d2l, model=mlp, hidden=(8,): final test loss (1 seed: mean, min–max)"]
    comparison = wdlib.compare(["numpy"], lambd=1.0, **common)
    assert comparison.figure().axes[0].get_title() == "d2l, model=mlp, hidden=(8,): λ = 1, seed 0"
