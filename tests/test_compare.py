"""compare(): every backend against the NumPy float64 reference, flagged when it disagrees."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import wdlib
from wdlib.compare import TOLERANCE, loss_scale
from wdlib_numpy import NumpyBackend

EPOCHS = 20


@pytest.fixture(scope="module")
def comparison() -> wdlib.Comparison:
    """Every installed backend, lambd 0 and 3, two seeds (short runs: the point is the table)."""
    return wdlib.compare(lambd=[0, 3], seeds=[0, 1], num_epochs=EPOCHS)


def test_one_row_per_backend_lambda_and_seed(comparison: wdlib.Comparison) -> None:
    installed = wdlib.installed_backends()
    assert [(r["backend"], r["lambd"], r["seed"]) for r in comparison.rows] == [
        (b, lam, s) for b in installed for lam in (0.0, 3.0) for s in (0, 1)]
    versions = {info.name: info.version for info in wdlib.backends()}
    assert all(row["version"] == versions[row["backend"]] for row in comparison.rows)
    assert comparison.flagged == [] and {r["status"] for r in comparison.rows} == {"ok"}


def test_differences_are_measured_against_an_independent_reference(comparison: wdlib.Comparison) -> None:
    for row in comparison.rows:
        run = comparison.runs[(row["backend"], row["lambd"], row["seed"])]
        ref = wdlib.train("numpy", lambd=row["lambd"], seed=row["seed"], dtype="float64", num_epochs=EPOCHS)
        assert row["max_abs_dw"] == np.abs(run.params["w"].astype(np.float64) - ref.params["w"]).max()
        assert row["max_abs_dtest"] == np.abs(run.test_loss - ref.test_loss).max()
        assert 0 < row["max_abs_dtest"] <= TOLERANCE["float32"] * ref.test_loss.max()  # float32 rounds
        assert row["test_loss"] == run.test_loss[-1] and row["w_norm"] == run.w_norm
        assert row["seconds"] == run.seconds > 0


def test_float64_numpy_is_the_reference_itself() -> None:
    result = wdlib.compare(["numpy"], lambd=3, dtype="float64", num_epochs=5)
    (row,) = result.rows
    assert row["max_abs_dw"] == 0 and row["max_abs_dtest"] == 0 and row["status"] == "ok"


class SlightlyOff(NumpyBackend):
    """NumPy with a gradient 0.1% too large: close to right, but far beyond the float32 tolerance."""

    name = "slightly-off"

    def grad(self, objective, params, X, y):
        return {k: 1.001 * g for k, g in super().grad(objective, params, X, y).items()}


def test_a_disagreeing_backend_is_flagged_not_hidden() -> None:
    with wdlib.temporary_backend(SlightlyOff):
        result = wdlib.compare(["numpy", "slightly-off"], lambd=3, num_epochs=EPOCHS, engine="eager")
    status = {row["backend"]: row["status"] for row in result.rows}
    assert status == {"numpy": "ok", "slightly-off": "DIFFERS"}
    assert [row["backend"] for row in result.flagged] == ["slightly-off"]
    assert "DIFFERS" in str(result) and "slightly-off" in str(result)


def test_a_noise_free_fit_near_zero_loss_agrees_and_a_wrong_gradient_still_differs() -> None:
    """float32 rounding of residuals near 0 moves a tiny loss by much more than 1e-4 of itself:
    the test loss is measured against compare.loss_scale, which still flags a gradient 0.1% off."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 10))
    common = {"data": (X, X.sum(axis=1)), "lambd": 0, "optimizer": "momentum", "num_epochs": 60}
    with wdlib.temporary_backend(SlightlyOff):
        result = wdlib.compare(["numpy", "slightly-off"], **common, engine="eager")
    row, off = sorted(result.rows, key=lambda r: r["backend"])
    assert row["test_loss"] < 1e-4 and row["status"] == "ok"
    assert row["max_abs_dtest"] > 1e-4 * row["test_loss"]  # the plain relative test would flag it
    assert off["status"] == "DIFFERS"
    chapter = wdlib.train("numpy", lambd=3, num_epochs=5)  # losses far above their rounding
    np.testing.assert_array_equal(loss_scale(chapter), chapter.test_loss)


def test_outputs(comparison: wdlib.Comparison, tmp_path: Path) -> None:
    text = str(comparison)
    for column in ("backend", "version", "train_loss", "test_loss", "w_norm", "max_abs_dw", "max_abs_dtest",
                   "seconds", "status"):
        assert column in text.splitlines()[0]
    assert len(text.splitlines()) == 2 + len(comparison) + 2  # header, rule, rows, tolerance, settings
    assert text.splitlines()[-1] == f"every run: num_epochs={EPOCHS}"  # what no column shows

    comparison.to_csv(tmp_path / "c.csv")
    with open(tmp_path / "c.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["test_loss"]) for r in rows] == [r["test_loss"] for r in comparison.rows]
    assert list(rows[0]) == list(comparison.columns)

    comparison.to_json(tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text())
    assert len(data) == len(comparison) and len(data[0]["test_loss_curve"]) == EPOCHS

    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            comparison.to_pandas()
    else:
        frame = comparison.to_pandas()
        assert list(frame.columns) == list(comparison.columns) and len(frame) == len(comparison)
        assert frame["test_loss"].tolist() == [r["test_loss"] for r in comparison.rows]


def test_overlay_figure_has_one_panel_per_lambda_and_a_line_per_backend(
    comparison: wdlib.Comparison, tmp_path: Path
) -> None:
    fig = comparison.figure()
    assert [ax.get_title() for ax in fig.axes] == ["d2l: λ = 0, 2 seeds: mean, min–max",
                                                   "d2l: λ = 3, 2 seeds: mean, min–max"]
    for ax, lambd in zip(fig.axes, (0.0, 3.0), strict=True):
        labels = [line.get_label() for line in ax.lines]
        assert labels == [f"{b} {part}" for b in wdlib.installed_backends() for part in ("train", "test")]
        first_backend_test = ax.lines[1].get_ydata()  # the mean over both seeds, every seed drawn
        runs = [comparison.runs[(wdlib.installed_backends()[0], lambd, s)] for s in (0, 1)]
        np.testing.assert_allclose(first_backend_test, np.mean([r.test_loss for r in runs], axis=0),
                                   rtol=1e-12)
        assert len(ax.collections) == 2 * len(wdlib.installed_backends())  # min-max bands
    assert comparison.plot(tmp_path / "compare.png") is not None
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"backends": ["jaxx"]}, wdlib.UnknownBackendError, "did you mean 'jax'"),
    ({"backends": []}, wdlib.ConfigError, "non-empty"),
    ({"lambd": []}, wdlib.ConfigError, "lambd=\\[\\]"),
    ({"lambd": -1}, wdlib.ConfigError, "lambd=-1.0"),
    ({"seeds": [-1]}, wdlib.ConfigError, "seeds=-1"),
    ({"dtype": "float16"}, wdlib.ConfigError, "dtype='float16'"),
    ({"mode": "fast"}, wdlib.ConfigError, "mode='fast'"),
    ({"backend": "torch"}, wdlib.ConfigError, "use backends="),
    ({"seed": 1}, wdlib.ConfigError, "use seeds="),  # it was silently replaced by seeds' default 0
    ({"mode": "concise", "wd": [0, 3]}, wdlib.ConfigError, "lambd=... is the weight decay wd"),
])
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match) as err:
        wdlib.compare(**kwargs)
    assert isinstance(err.value, ValueError)


def test_compare_warms_up_again_when_lambda_becomes_nonzero() -> None:
    """JAX compiles a run without the penalty's term for λ = 0: a λ of 0.1 after it is a new compile,
    so its time would include compilation unless it is warmed up too."""
    from wdlib.timing import warm_key

    def key(**fields):
        return warm_key("jax", "d2l", fields)

    assert key(lambd=0.0) != key(lambd=0.1) == key(lambd=3.0) != key(lambd=3.0, wd=1.0)
    assert key(lambd=3.0, seed=1) == key(lambd=3.0, seed=2)
