"""Named data sets and data files (wdlib.datasets): raw loading, seeded standardized splits, .npz/.csv."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_arrays import config_error

import wdlib
from wdlib import datasets
from wdlib.arrays import DataConversionWarning, fingerprint, split, split_rng
from wdlib.datasets import (
    DATASETS,
    DatasetChangedError,
    DatasetNotInstalledError,
    dataset_arrays,
    dataset_shape,
    load_data_file,
    load_diabetes,
)
from wdlib.errors import WdlibError

#: The raw diabetes arrays as scikit-learn ships them; a change here changes every stored run's
#: data_fingerprint, so it should be noticed.
DIABETES_FINGERPRINT = "9e1f6f4642832abcff5e185ac9a05fcb6b7f39d316ddc4dc4940498f274c25b6"


def test_importing_wdlib_imports_neither_sklearn_nor_pandas() -> None:
    code = ("import sys, wdlib, wdlib.arrays, wdlib.datasets; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'pandas', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_diabetes_is_the_raw_bundled_data() -> None:
    X, y = load_diabetes()
    assert X.shape == (442, 10) and y.shape == (442, 1) and X.dtype == y.dtype == np.float64
    np.testing.assert_array_equal(X[0, :4], [59.0, 2.0, 32.1, 101.0])  # age, sex, BMI, blood pressure
    assert set(np.unique(X[:, 1])) == {1.0, 2.0} and y.min() == 25 and y.max() == 346  # unscaled
    from sklearn.datasets import load_diabetes as sk_load

    X_sk, y_sk = sk_load(return_X_y=True, scaled=False)
    np.testing.assert_array_equal(X, X_sk)
    np.testing.assert_array_equal(y[:, 0], y_sk)
    assert fingerprint(X, y) == DIABETES_FINGERPRINT
    assert DATASETS == {"diabetes": load_diabetes}


def test_published_shape_and_fingerprint_are_the_datas() -> None:
    X, y = load_diabetes()
    assert dataset_shape("diabetes") == (*X.shape, fingerprint(X, y)) == (442, 10, DIABETES_FINGERPRINT)
    config = wdlib.make_config(dataset="diabetes")  # what a Config derives from it, importing nothing
    assert (config.n_train, config.n_test, config.num_inputs) == (332, 110, 10)
    assert config.data_fingerprint == DIABETES_FINGERPRINT
    config_error(dataset_shape, "diabetis", field="dataset", accepted="one of 'diabetes'")


@pytest.mark.parametrize("call", ["load", "shape", "arrays"])
def test_missing_sklearn_says_what_to_install(call: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` fails, find_spec finds nothing
    datasets._raw.cache_clear()
    with pytest.raises(DatasetNotInstalledError) as err:
        {"load": load_diabetes, "shape": lambda: dataset_shape("diabetes"),
         "arrays": lambda: dataset_arrays("diabetes", seed=0, test_fraction=0.25)}[call]()
    assert "pip install 'wdlib[datasets]'" in str(err.value) and "'diabetes'" in str(err.value)
    assert isinstance(err.value, ImportError) and isinstance(err.value, WdlibError)


def test_changed_data_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    n, p, _, module = datasets.PUBLISHED["diabetes"]
    monkeypatch.setitem(datasets.PUBLISHED, "diabetes", (n, p, "0" * 64, module))
    datasets._raw.cache_clear()
    with pytest.raises(DatasetChangedError, match=r"fingerprint 9e1f6f464283.*would not be comparable"):
        dataset_arrays("diabetes", seed=0, test_fraction=0.25)
    datasets._raw.cache_clear()


def test_each_call_returns_new_arrays() -> None:
    first = dataset_arrays("diabetes", seed=0, test_fraction=0.25)
    first[0][:] = 0
    first[1][:] = 0
    again = dataset_arrays("diabetes", seed=0, test_fraction=0.25)
    assert np.all(again[0].std(axis=0) > 0.99) and again[1].std() > 0.99


def test_dataset_arrays_split_standardized_with_training_statistics() -> None:
    X_tr, y_tr, X_te, y_te, digest = dataset_arrays("diabetes", seed=0, test_fraction=0.25)
    assert X_tr.shape == (332, 10) and y_tr.shape == (332, 1) and X_te.shape == (110, 10)
    assert y_te.shape == (110, 1) and digest == DIABETES_FINGERPRINT
    for train in (X_tr, y_tr):
        np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(train.std(axis=0), 1, rtol=1e-12)
    X, y = load_diabetes()
    raw_tr, raw_ytr, raw_te, raw_yte = split(X, y, 0.25, split_rng(0))
    np.testing.assert_allclose(X_te, (raw_te - raw_tr.mean(axis=0)) / raw_tr.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(y_te, (raw_yte - raw_ytr.mean()) / raw_ytr.std(), rtol=1e-12)


def test_dataset_arrays_depend_on_seed_and_fraction_only() -> None:
    first = dataset_arrays("diabetes", seed=5, test_fraction=0.25)
    again = dataset_arrays("diabetes", seed=5, test_fraction=0.25)
    assert all(np.array_equal(a, b) for a, b in zip(first[:4], again[:4], strict=True))
    other = dataset_arrays("diabetes", seed=6, test_fraction=0.25)
    assert not np.array_equal(first[2], other[2]) and other[4] == first[4]  # same data, other split
    assert len(dataset_arrays("diabetes", seed=5, test_fraction=0.5)[2]) == 221


def test_standardized_diabetes_trains_with_the_chapters_step_size() -> None:
    """Minibatch SGD at the chapter's lr=0.003 (batch 5): it learns on the standardized arrays, and
    overflows on raw ones, which is why dataset_arrays standardizes features and target."""

    def sgd(X: np.ndarray, y: np.ndarray, epochs: int) -> float:
        w, b, rng = np.zeros((X.shape[1], 1)), 0.0, np.random.default_rng(0)
        with np.errstate(all="ignore"):
            for _ in range(epochs):
                for idx in np.array_split(rng.permutation(len(X)), len(X) // 5):
                    err = X[idx] @ w + b - y[idx]
                    w, b = w - 0.003 * X[idx].T @ err / len(idx), b - 0.003 * err.mean()
            return float(np.mean((X @ w + b - y) ** 2) / 2)

    X_tr, y_tr, *_ = dataset_arrays("diabetes", seed=0, test_fraction=0.25)
    start = float(np.mean(y_tr**2) / 2)  # the loss of w = 0, b = 0: half the target's variance
    assert sgd(X_tr, y_tr, 20) < 0.7 * start
    X, y = load_diabetes()
    assert not np.isfinite(sgd(X, y, 2))


@pytest.mark.parametrize(
    ("kwargs", "field", "accepted"),
    [
        ({"name": "diabets"}, "dataset", "one of 'diabetes'"),
        ({"name": "synthetic"}, "dataset", "one of 'diabetes'"),
        ({"seed": -1}, "seed", "an integer from 0"),
        ({"seed": 1.5}, "seed", "an integer from 0"),
        ({"test_fraction": 1.0}, "test_fraction", "strictly between 0 and 1"),
        ({"test_fraction": 0}, "test_fraction", "strictly between 0 and 1"),
    ],
)
def test_dataset_arrays_errors_come_before_loading(
    kwargs: dict[str, Any], field: str, accepted: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never() -> None:
        raise AssertionError("loaded before the arguments were checked")

    monkeypatch.setitem(datasets.DATASETS, "diabetes", never)
    args = {"name": "diabetes", "seed": 0, "test_fraction": 0.25, **kwargs}
    message = config_error(dataset_arrays, args.pop("name"), **args, field=field, accepted=accepted)
    if kwargs.get("name") == "diabets":
        assert "did you mean 'diabetes'?" in message


# --- data files ------------------------------------------------------------------------------------

X4 = np.array([[1.0, 2.0], [3.0, 4.5], [5.0, -6.0], [7.0, 8.0]])
Y4 = np.array([0.5, 1.5, 2.5, 3.5])


def test_npz_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, X=X4, y=Y4)
    X, y, X_test, y_test = load_data_file(path)
    np.testing.assert_array_equal(X, X4)
    np.testing.assert_array_equal(y, Y4.reshape(-1, 1))
    assert X_test is None and y_test is None
    np.savez(path, X=X4, y=Y4, X_test=X4[:2], y_test=Y4[:2])
    X, y, X_test, y_test = load_data_file(str(path))
    np.testing.assert_array_equal(X_test, X4[:2])
    assert y_test.shape == (2, 1) and X.dtype == X_test.dtype == np.float64


def test_npz_of_integers_warns_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ints.npz"
    np.savez(path, X=X4.astype(int), y=Y4)
    with pytest.warns(DataConversionWarning, match=r"--data .*ints\.npz \[X\]: int64"):
        X, *_ = load_data_file(path)
    assert X.dtype == np.float64


def test_csv_round_trip_target_is_y_or_the_last_column(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,target\n1,2,0.5\n3,4.5,1.5\n\n5,-6,2.5\n7,8e0,3.5\n")  # a blank line is skipped
    X, y, X_test, y_test = load_data_file(path)
    np.testing.assert_array_equal(X, X4)
    np.testing.assert_array_equal(y[:, 0], Y4)
    assert X_test is None and y_test is None
    path.write_text("\ufeffa, y ,b\n1,0.5,2\n3,1.5,4.5\n5,2.5,-6\n7,3.5,8\n")  # y in the middle, a BOM
    X, y, _, _ = load_data_file(path)
    np.testing.assert_array_equal(X, X4)
    np.testing.assert_array_equal(y[:, 0], Y4)


def _npz(**arrays: Any) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **arrays)


def _text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text)


BAD_FILES = [
    # (file name, how to write it (None: not at all), accepted, in the message)
    ("d.npz", None, "an existing .npz or .csv file", "no such file"),
    ("d.txt", _text("1,2\n"), "a file name ending in .npz or .csv", "d.txt"),
    ("d.npz", _npz(X=X4), "arrays X and y", "no array 'y'"),
    ("d.npz", _npz(X=X4, y=Y4, X_test=X4), "optionally X_test and y_test", "no array 'y_test'"),
    ("d.npz", _npz(X=X4, y=Y4, x_test=X4), "arrays X and y", "unknown arrays ['x_test']"),
    ("d.npz", _npz(X=np.array([1, "a", None], dtype=object), y=Y4), "arrays X and y", "without pickle"),
    ("d.npz", _text("not an archive"), "arrays X and y", "not a NumPy .npz archive"),
    ("d.npz", lambda p: p.write_bytes(np.ones(3).tobytes()), "arrays X and y", "not a NumPy .npz"),
    ("d.csv", _text("a,b,y\n1,2,3\n4,x,6\n"), "a header line of column names",
     "line 3, column 'b' (number 2) holds 'x'"),
    ("d.csv", _text("a,b,y\n1,2,3\n4,,6\n"), "one line of numbers", "line 3, column 'b' (number 2) holds ''"),
    ("d.csv", _text("a,b,y\n1,2,3\n4,5\n"), "one line of numbers", "line 3 has 2 cells, the header 3"),
    ("d.csv", _text("1,2,3\n4,5,6\n"), "at least 2 columns", "write a header"),
    ("d.csv", _text("y\n1\n2\n"), "at least 2 columns", "['y']"),
    ("d.csv", _text("y,a,y\n1,2,3\n"), "at least 2 columns", "one column named y"),
    ("d.csv", _text(""), "at least 2 columns", "its first line is None"),
    ("d.csv", _text("a,b,y\n"), "one line of numbers", "no examples"),
    ("d.csv", _text("a,b,y\n1,2,3\n4,nan,6\n7,8,inf\n"), "all finite",
     "2 cells are NaN or infinite; the first is on line 3, column 'b'"),
    ("d.csv", lambda p: p.write_bytes(b"a,b\n\xff\xfe,1\n"), "a .csv file", "not readable as UTF-8"),
]


@pytest.mark.parametrize(("filename", "write", "accepted", "detail"), BAD_FILES)
def test_bad_data_files_name_the_option_and_the_path(
    tmp_path: Path, filename: str, write: Callable[[Path], None] | None, accepted: str, detail: str,
) -> None:
    path = tmp_path / filename
    if write is not None:
        write(path)
    message = config_error(load_data_file, path, field="--data", accepted=accepted)
    assert str(path) in message and detail in message


def test_npy_under_an_npz_name_and_a_folder(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", X4)
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    message = config_error(load_data_file, tmp_path / "a.npz", field="--data", accepted="arrays X and y")
    assert "single .npy array" in message
    (tmp_path / "dir.csv").mkdir()
    message = config_error(load_data_file, tmp_path / "dir.csv", field="--data", accepted="an existing")
    assert "folder" in message


def test_file_arrays_are_checked_like_arguments(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, X=X4[:, 0], y=Y4)
    message = config_error(load_data_file, path, field=f"--data {path} [X]", accepted="2-D array")
    assert "reshape(-1, 1)" in message
    np.savez(path, X=X4, y=Y4, X_test=np.ones((2, 3)), y_test=Y4[:2])
    config_error(load_data_file, path, field=f"--data {path} [X_test]", accepted="2 columns, like [X]")
    np.savez(path, X=X4, y=Y4, X_test=X4, y_test=Y4[:3])
    config_error(load_data_file, path, field=f"--data {path} [y_test]", accepted="4 targets")
    np.savez(path, X=np.where(X4 > 4, np.nan, X4), y=Y4)
    config_error(load_data_file, path, field=f"--data {path} [X]", accepted="finite numbers")
    config_error(load_data_file, tmp_path / "none.csv", name="data_file", field="data_file",
                 accepted="an existing")
