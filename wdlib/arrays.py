"""User data as wdlib runs it: checked once at the boundary, split, standardized, fingerprinted.

``wdlib.train(data=(X, y), test=...)``, ``Problem.from_arrays``, compare, sweep and the CLI all go through
these functions, so every entry point accepts the same inputs and words its errors the same way. A checked
pair is two float64 copies, X of shape (n, p) and y of shape (n, 1): the shapes the rest of wdlib uses, and
never the caller's own arrays, which are left untouched. Everything here is plain NumPy (no framework, no
pandas): array-likes such as DataFrames or torch and JAX arrays come in through ``np.asarray``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .config import FIELD_CHECKS
from .errors import ConfigError, warn

#: Child of ``SeedSequence(seed)`` that draws the train/test split; make_problem uses children 0-3
#: (training data, test data, initial parameters, batch order), so a split never shifts those streams.
SPLIT_STREAM = 4

_NUMBERS = "numbers (bool, integer or real floating point)"


class DataConversionWarning(UserWarning):
    """Integer or boolean data were converted to float64 (to silence it, pass float arrays)."""


class _Summary(str):
    """A short description of a value, shown unquoted in a ConfigError (never the array itself)."""

    def __repr__(self) -> str:
        return str(self)


def describe(value: Any, arr: np.ndarray | None = None) -> _Summary:
    """What an error message shows of a value, which may be large: ``<list of shape (5,), dtype int64>``
    (the shape and dtype of ``arr``, the value as NumPy sees it, when given), ``<tuple of 3 items>``."""
    kind = type(value).__name__
    arr = value if arr is None and isinstance(value, np.ndarray) else arr
    if arr is not None:
        return _Summary(f"<{kind} of shape {tuple(int(d) for d in arr.shape)}, dtype {arr.dtype}>")
    if isinstance(value, (tuple, list)):
        return _Summary(f"<{kind} of {len(value)} items>")
    return _Summary(f"<{kind}>")


def _warn(message: str) -> None:
    warn(message, DataConversionWarning)


def _float_array(value: Any, label: str) -> tuple[np.ndarray, _Summary, np.dtype]:
    """``value`` as a new float64 array, refused unless its values are numbers; its summary and dtype."""
    if value is None or isinstance(value, (str, bytes, dict, set)):
        raise ConfigError(label, describe(value), f"an array-like of {_NUMBERS}")
    try:
        arr = np.asarray(value)
    except Exception as err:  # ragged lists, a torch tensor that requires grad or lives on a GPU, ...
        raise ConfigError(label, describe(value), f"an array-like of {_NUMBERS}",
                          f"NumPy could not convert it ({err}); pass a NumPy array") from None
    summary = describe(value, arr)
    if arr.dtype.kind not in "biuf":
        hint = {
            "c": "complex values are not supported: pass the real and imaginary parts as separate features",
            "O": "it holds Python objects (mixed types, None, pd.NA?): convert it, e.g. np.asarray(X, float)",
            "U": "it holds strings: parse them into numbers first",
            "S": "it holds bytes: parse them into numbers first",
        }.get(arr.dtype.kind, "")
        raise ConfigError(label, summary, _NUMBERS, hint)
    return np.array(arr, dtype=np.float64, order="C", copy=True), summary, arr.dtype


def _check_finite(arr: np.ndarray, label: str, summary: _Summary) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        n_nan = int(np.isnan(arr).sum())
        first = ", ".join(str(int(i)) for i in np.unravel_index(np.argmax(bad), bad.shape))
        raise ConfigError(label, summary, "finite numbers",
                          f"it holds {n_nan} NaN and {int(bad.sum()) - n_nan} infinite values, the first at "
                          f"[{first}] (counting from 0): drop or impute them")


def _check_scale(arr: np.ndarray, label: str, summary: _Summary) -> None:
    """Refuse values so large that the squared loss overflows float64 (the run would diverge at once,
    and the learning rate would be blamed)."""
    limit = float(np.sqrt(np.finfo(np.float64).max / max(len(arr), 1))) / 100
    largest = float(np.abs(arr).max())
    if largest > limit:
        raise ConfigError(label, summary, f"values below about {limit:.2g} in absolute value",
                          f"its largest is {largest:.3g}, and the squared loss of such data overflows: "
                          "rescale it, e.g. wdlib.arrays.standardize")


def check_arrays(X: Any, y: Any, x_label: str, y_label: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`check_data` with the names its errors give X and y (e.g. ``"--data d.npz [X]"``)."""
    (Xa, x_sum, x_dtype), (ya, y_sum, y_dtype) = _float_array(X, x_label), _float_array(y, y_label)
    x_accept = "a 2-D array of shape (n_examples, n_features)"
    if Xa.ndim != 2:
        hint = {
            0: "it is a single number",
            1: "a 1-D X is ambiguous: X.reshape(-1, 1) if it is one feature, X.reshape(1, -1) if it is "
               "one example",
        }.get(Xa.ndim, "flatten each example: X.reshape(len(X), -1)")
        raise ConfigError(x_label, x_sum, x_accept, hint)
    if Xa.shape[0] == 0 or Xa.shape[1] == 0:
        raise ConfigError(x_label, x_sum, x_accept + " with at least 1 example and 1 feature")
    if ya.ndim not in (1, 2) or (ya.ndim == 2 and ya.shape[1] != 1):
        raise ConfigError(y_label, y_sum, "a 1-D array (n_examples,) or a column (n_examples, 1)",
                          "one target per example: wdlib fits a single output")
    if ya.shape[0] != Xa.shape[0]:
        raise ConfigError(y_label, y_sum, f"{Xa.shape[0]} targets, one per row of {x_label}",
                          f"{x_label} has {Xa.shape[0]} rows and {y_label} {ya.shape[0]}")
    _check_finite(Xa, x_label, x_sum)
    _check_finite(ya, y_label, y_sum)
    _check_scale(Xa, x_label, x_sum)
    _check_scale(ya, y_label, y_sum)
    for label, dtype in ((x_label, x_dtype), (y_label, y_dtype)):
        if dtype.kind in "biu":  # warned only once the data are known to be usable
            _warn(f"{label}: {dtype} values converted to float64")
    return Xa, ya.reshape(-1, 1)


def _names(name: str) -> tuple[str, str]:
    return ("X", "y") if name == "data" else (f"X_{name}", f"y_{name}")


def _labels(name: str) -> tuple[str, str]:
    x, y = _names(name)
    return f"{name}[0] ({x})", f"{name}[1] ({y})"


_PAIR: Any = object()  # check_data's y when it is given the pair itself


def check_data(X: Any, y: Any = _PAIR, *, name: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """X as a new float64 (n, p) array and y as a new float64 (n, 1) column, or a ConfigError.

    ``check_data(X, y)`` checks two arrays; ``check_data(pair, name="test")`` also checks that ``pair``
    is an (X, y) pair, as :func:`check_pair` does.

    Accepted: anything ``np.asarray`` turns into numbers (lists, NumPy, pandas, torch and JAX arrays), X
    2-D, y 1-D or (n, 1), as many targets as rows, at least one row and one feature, every value finite.
    Integers and bools are converted to float64 with a :class:`DataConversionWarning`. Errors name the
    argument as the caller wrote it: ``data[0] (X)`` for ``name="data"``, ``test[1] (y_test)`` for
    ``name="test"``, and show the value as its shape and dtype only.
    """
    if y is _PAIR:
        return check_pair(X, name=name)
    return check_arrays(X, y, *_labels(name))


def check_pair(pair: Any, *, name: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """``pair`` is ``(X, y)`` (a tuple or list of two): both checked by :func:`check_data`."""
    if isinstance(pair, np.ndarray) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
        x, y = _names(name)
        raise ConfigError(name, describe(pair), f"a pair ({x}, {y}) of features and targets",
                          f"e.g. {name}=({x}, {y}) with {x} of shape (n, p) and {y} of shape (n,)")
    return check_data(pair[0], pair[1], name=name)


def check_train_test(
    data: Any, test: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``data=(X, y)`` and ``test=(X_test, y_test) | None`` checked; X_test must have X's features."""
    X, y = check_pair(data, name="data")
    if test is None:
        return X, y, None, None
    X_test, y_test = check_pair(test, name="test")
    if X_test.shape[1] != X.shape[1]:
        raise ConfigError("test[0] (X_test)", describe(X_test), f"{X.shape[1]} columns, like data[0] (X)",
                          "the test set must have the training set's features, in the same order")
    return X, y, X_test, y_test


def fingerprint(*arrays: np.ndarray | None) -> str:
    """SHA-256 hex digest of the arrays' shapes and float64 values, in order (a None, e.g. no test set,
    is hashed as a marker, so ``fingerprint(X, y)`` and ``fingerprint(X, y, None, None)`` differ).

    Each array is hashed as little-endian C-contiguous float64 with its shape, so the digest is the same
    in every process, on every machine and under NumPy 1 and 2; one changed value changes it.
    """
    digest = hashlib.sha256(b"wdlib-data-v1")
    for arr in arrays:
        if arr is None:
            digest.update(b"|none")
            continue
        a = np.ascontiguousarray(arr, dtype="<f8")
        digest.update(f"|float64({','.join(str(int(d)) for d in a.shape)})|".encode())
        digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()


def split_sizes(n: int, test_fraction: float) -> tuple[int, int]:
    """(n_train, n_test) of a seeded split of ``n`` examples: at least one on each side."""
    if n < 2:
        raise ConfigError("data", f"{n} example(s)", "at least 2 examples when no test set is given",
                          "pass test=(X_test, y_test)")
    n_test = min(n - 1, max(1, round(test_fraction * n)))
    return n - n_test, n_test


def split_rng(seed: int) -> np.random.Generator:
    """The generator that draws a seed's train/test split (child :data:`SPLIT_STREAM` of its seed)."""
    seed = FIELD_CHECKS["seed"]("seed", seed)
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(SPLIT_STREAM + 1)[SPLIT_STREAM])


def split(
    X: np.ndarray, y: np.ndarray, test_fraction: float, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)``: a random ``test_fraction`` of the rows held out.

    The sizes are :func:`split_sizes`'s, from which a Config derives n_train and n_test
    before any data are read (at least one row on each side). The training rows are the first n_train of
    ``rng.permutation(n)``; both sides keep the rows' original order. The rows drawn depend only on
    ``rng`` (:func:`split_rng` for a seed), n and ``test_fraction``.
    """
    fraction = FIELD_CHECKS["test_fraction"]("test_fraction", test_fraction)
    if not isinstance(rng, np.random.Generator):
        raise ConfigError("rng", describe(rng), "a numpy.random.Generator",
                          "e.g. wdlib.arrays.split_rng(seed)")
    n = len(X)
    if len(y) != n:
        raise ConfigError("y", describe(y), f"{n} targets, one per row of X")
    n_train, _ = split_sizes(n, fraction)
    order = rng.permutation(n)
    train, test = np.sort(order[:n_train]), np.sort(order[n_train:])
    return X[train], y[train], X[test], y[test]


def scaling(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and scales of ``train`` (population std; 1 where a column is constant).

    A column counts as constant when its variance is within float64 round-off of 0 (scikit-learn's
    bound), so a column of one repeated value becomes zeros instead of amplified rounding noise.
    """
    train = np.asarray(train, dtype=np.float64)
    mean = train.mean(axis=0, keepdims=True)
    var = train.var(axis=0, keepdims=True)
    n, eps = len(train), np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    return mean, np.where(constant, 1.0, np.sqrt(var))


def standardize(train: np.ndarray, test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``train`` and ``test`` centred and scaled by ``train``'s column statistics (see :func:`scaling`).

    Works for X (n, p) and y (n, 1) alike. Only the training set's statistics are used, so nothing about
    the test set leaks into training; new arrays are returned.
    """
    mean, scale = scaling(train)
    return (train - mean) / scale, None if test is None else (test - mean) / scale

