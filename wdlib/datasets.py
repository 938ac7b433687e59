"""Where arrays come from besides the synthetic problem: named real data sets, and data files.

``DATASETS`` maps a ``Config.dataset`` name to a loader of raw ``(X, y)``; :func:`dataset_arrays` turns
one into a seed's standardized train/test split plus the fingerprint a stored run keeps.
:func:`load_data_file` reads the CLI's ``--data file.npz|file.csv``. scikit-learn, which ships the data
sets, is optional (``pip install 'wdlib[datasets]'``) and imported only when a data set is loaded.
"""

from __future__ import annotations

import csv
import difflib
import functools
import importlib.util
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .arrays import check_arrays, describe, fingerprint, split, split_rng, standardize
from .config import FIELD_CHECKS
from .errors import ConfigError, WdlibError, short_repr


class DatasetNotInstalledError(WdlibError, ImportError):
    """The data set is known but the package that ships it is not installed."""


class DatasetChangedError(WdlibError, RuntimeError):
    """The installed package ships other numbers than the data set wdlib knows by its fingerprint."""


def load_diabetes() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's diabetes data: X (442, 10) float64, y (442, 1) float64.

    Ten baseline measurements of 442 patients (age, sex, body mass index, mean blood pressure and six
    blood serum values) and y, a measure of disease progression a year later. Read from the files inside
    the scikit-learn package, so no network is used.

    The values are raw, in their original units (``scaled=False``). scikit-learn's default instead centres
    and scales each feature column to unit norm using all 442 rows: that mixes the test rows' statistics
    into the training inputs, and leaves the target unscaled anyway. :func:`dataset_arrays` standardizes
    features and target after the split, with the training rows' statistics only, and the fingerprint
    of the raw arrays identifies the data as published.
    """
    try:
        from sklearn import datasets
    except ImportError as err:
        raise DatasetNotInstalledError(_not_installed("diabetes")) from err
    X, y = datasets.load_diabetes(return_X_y=True, scaled=False)
    return np.array(X, dtype=np.float64), np.array(y, dtype=np.float64).reshape(-1, 1)


#: Named data sets: each loader returns raw (X, y), X (n, p) and y (n, 1), float64.
DATASETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {"diabetes": load_diabetes}

#: What each data set is, known without loading it: (n examples, p features, fingerprint of the raw
#: arrays, the module that ships it). A Config derives n_train, n_test, num_inputs and data_fingerprint
#: from this, so make_config imports nothing; loading checks the data against it.
PUBLISHED: dict[str, tuple[int, int, str, str]] = {
    "diabetes": (442, 10, "9e1f6f4642832abcff5e185ac9a05fcb6b7f39d316ddc4dc4940498f274c25b6", "sklearn"),
}


def _known(name: str) -> str:
    if name not in DATASETS:
        close = difflib.get_close_matches(str(name), DATASETS, n=1)
        raise ConfigError("dataset", name, "one of " + ", ".join(map(repr, DATASETS)),
                          f"did you mean {close[0]!r}?" if close else "")
    return name


def dataset_shape(name: str) -> tuple[int, int, str]:
    """``(n, p, fingerprint)`` of data set ``name``, without loading it or importing the package that
    ships it (whose presence is checked, so a missing install is reported before any work starts)."""
    n, p, digest, module = PUBLISHED[_known(name)]
    if importlib.util.find_spec(module) is None:
        raise DatasetNotInstalledError(_not_installed(name))
    return n, p, digest


def _not_installed(name: str) -> str:
    return (f"the {name!r} data set is read from scikit-learn, which is not installed: "
            "pip install 'wdlib[datasets]' (or pip install scikit-learn)")


@functools.cache
def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The raw arrays of ``name``, loaded once per process (read-only: callers get copies)."""
    X, y = DATASETS[name]()
    digest = fingerprint(X, y)
    n, p, expected, _ = PUBLISHED[name]
    if X.shape != (n, p) or digest != expected:
        raise DatasetChangedError(
            f"the installed {name!r} data set has shape {X.shape} and fingerprint {digest[:12]}..., not "
            f"({n}, {p}) and {expected[:12]}...: runs on it would not be comparable with stored ones")
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def dataset_arrays(
    name: str, *, seed: int, test_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """``(X_train, y_train, X_test, y_test, fingerprint)`` of data set ``name`` for ``seed``.

    The rows held out are drawn by :func:`wdlib.arrays.split_rng` (the seed's child stream 4, so the
    synthetic problem's streams 0-3 are untouched) and depend only on ``seed``, ``test_fraction`` and the
    data. Features and target are then standardized with the training rows' mean and standard deviation
    (test rows use the same statistics), so gradient steps of the chapter's size, lr=0.003, act on inputs
    and targets of unit scale whatever the original units; losses are therefore in units of the training
    target's variance. The fingerprint is that of the raw arrays, before split and scaling; data that do
    not match :data:`PUBLISHED` raise :class:`DatasetChangedError`. New arrays are returned each call.
    """
    rng = split_rng(seed)  # the arguments are checked before anything is loaded
    fraction = FIELD_CHECKS["test_fraction"]("test_fraction", test_fraction)
    X, y = _raw(_known(name))
    X_train, y_train, X_test, y_test = split(X, y, fraction, rng)
    X_train, X_test = standardize(X_train, X_test)
    y_train, y_test = standardize(y_train, y_test)
    return X_train, y_train, X_test, y_test, PUBLISHED[name][2]


_FILE_ARRAYS = ("X", "y", "X_test", "y_test")


def load_data_file(
    path: str | Path, *, name: str = "--data",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(X, y, X_test, y_test)`` from a .npz or .csv file (the test pair None when the file has none),
    checked as :func:`check_train_test` checks arrays; errors name ``name`` and the path.

    A .npz holds arrays ``X`` and ``y``, and optionally ``X_test`` and ``y_test`` (``np.savez(path, X=X,
    y=y)``); it is read without pickle, so it cannot run code. A .csv has a header line of column names
    and one example per line; the column named ``y`` (else the last one) is the target, the others are the
    features, in order.
    """
    p = Path(path)
    if p.suffix.lower() not in (".npz", ".csv"):
        raise ConfigError(name, str(p), "a file name ending in .npz or .csv")
    if not p.is_file():
        raise ConfigError(name, str(p), "an existing .npz or .csv file",
                          "it is a folder" if p.is_dir() else "there is no such file")
    found = _read_npz(p, name) if p.suffix.lower() == ".npz" else _read_csv(p, name)
    arrays = [found.get(key) for key in _FILE_ARRAYS]
    label = f"{name} {p}"
    X, y = check_arrays(arrays[0], arrays[1], f"{label} [X]", f"{label} [y]")
    if arrays[2] is None:
        return X, y, None, None
    X_test, y_test = check_arrays(arrays[2], arrays[3], f"{label} [X_test]", f"{label} [y_test]")
    if X_test.shape[1] != X.shape[1]:
        raise ConfigError(f"{label} [X_test]", describe(X_test), f"{X.shape[1]} columns, like [X]")
    return X, y, X_test, y_test


def _read_npz(path: Path, name: str) -> dict[str, np.ndarray]:
    accepted = "a .npz file of arrays X and y, and optionally X_test and y_test"
    unreadable = "it is not a NumPy .npz archive readable without pickle"
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ConfigError(name, str(path), accepted, f"{unreadable} ({err})") from None
    if not hasattr(loaded, "files"):  # a .npy file under a .npz name: np.load returned a bare array
        raise ConfigError(name, str(path), accepted,
                          "it holds a single .npy array: save with np.savez(path, X=X, y=y)")
    try:
        with loaded as npz:
            found = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # e.g. an array of Python objects
        raise ConfigError(name, str(path), accepted, f"{unreadable} ({err})") from None
    missing = [key for key in ("X", "y") if key not in found]
    missing += [a for a, b in (("X_test", "y_test"), ("y_test", "X_test")) if b in found and a not in found]
    unknown = sorted(set(found) - set(_FILE_ARRAYS))
    if missing or unknown:
        problem = f"no array {missing[0]!r}" if missing else f"unknown arrays {unknown}"
        raise ConfigError(name, str(path), accepted, f"it has {problem} (its arrays: {sorted(found)}); save "
                          "with np.savez(path, X=X, y=y, X_test=X_test, y_test=y_test)")
    return found


def _read_csv(path: Path, name: str) -> dict[str, np.ndarray]:
    accepted = "a .csv file: a header line of column names, then one line of numbers per example"
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = [(reader.line_num, row) for row in reader if row]  # blank lines are skipped
    except (UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(name, str(path), accepted, f"it is not readable as UTF-8 CSV text: {err}") from None
    columns = [c.strip() for c in header or []]
    if len(columns) < 2 or columns.count("y") > 1 or all(_is_number(c) for c in columns):
        raise ConfigError(name, str(path), accepted + ", at least 2 columns (features, then the target y)",
                          f"its first line is {short_repr(header)}; write a header such as x1,x2,y (one "
                          "column named y, else the last column is the target)")
    if not rows:
        raise ConfigError(name, str(path), accepted, "it has a header but no examples")
    table = np.empty((len(rows), len(columns)))
    for i, (line, row) in enumerate(rows):
        if len(row) != len(columns):
            raise ConfigError(name, str(path), accepted,
                              f"line {line} has {len(row)} cells, the header {len(columns)}")
        for j, cell in enumerate(row):
            try:
                table[i, j] = float(cell)
            except ValueError:
                raise ConfigError(name, str(path), accepted, f"line {line}, column {columns[j]!r} "
                                  f"(number {j + 1}) holds {cell[:40]!r}, not a number") from None
    bad = ~np.isfinite(table)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise ConfigError(name, str(path), accepted + ", all finite",
                          f"{int(bad.sum())} cells are NaN or infinite; the first is on line {rows[i][0]}, "
                          f"column {columns[j]!r} (number {j + 1})")
    target = columns.index("y") if "y" in columns else len(columns) - 1
    return {"X": np.delete(table, target, axis=1), "y": table[:, target]}


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
