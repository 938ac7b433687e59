"""User data at the boundary (wdlib.arrays): checks and their errors, fingerprints, split, standardize."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from wdlib.arrays import (
    SPLIT_STREAM,
    DataConversionWarning,
    check_data,
    check_pair,
    check_train_test,
    fingerprint,
    scaling,
    split,
    split_rng,
    split_sizes,
    standardize,
)
from wdlib.errors import ConfigError

X5 = np.arange(15.0).reshape(5, 3)
Y5 = np.arange(5.0)


def config_error(fn: Callable[..., Any], *args: Any, field: str, accepted: str, **kwargs: Any) -> str:
    """The ConfigError ``fn`` raises: it names ``field`` first and says what is ``accepted``."""
    with pytest.raises(ConfigError) as err:
        fn(*args, **kwargs)
    message = str(err.value)
    assert message.startswith(f"{field}="), message
    assert accepted in message, message
    assert err.value.field == field and isinstance(err.value, ValueError)
    return message


BAD_DATA = [
    # (X, y, name, field, accepted, also in the message)
    (np.ones(5), Y5, "data", "data[0] (X)", "2-D array", "X.reshape(-1, 1)"),
    (np.float64(3.0), Y5, "data", "data[0] (X)", "2-D array", "single number"),
    (np.ones((5, 3, 2)), Y5, "data", "data[0] (X)", "2-D array", "flatten"),
    (np.ones((0, 3)), np.ones(0), "data", "data[0] (X)", "at least 1 example and 1 feature", "(0, 3)"),
    (np.ones((5, 0)), Y5, "data", "data[0] (X)", "at least 1 example and 1 feature", "(5, 0)"),
    (X5, np.ones((5, 2)), "data", "data[1] (y)", "(n_examples, 1)", "single output"),
    (X5, np.float64(1.0), "data", "data[1] (y)", "(n_examples, 1)", "shape ()"),
    (X5, np.ones(4), "data", "data[1] (y)", "5 targets, one per row of data[0] (X)", "(4,)"),
    (np.where(X5 == 5, np.nan, X5), Y5, "data", "data[0] (X)", "finite numbers", "1 NaN and 0 infinite"),
    (X5, np.where(Y5 > 2, np.inf, Y5), "data", "data[1] (y)", "finite numbers", "0 NaN and 2 infinite"),
    (np.array([["a", "b"]]), [1.0], "data", "data[0] (X)", "numbers (bool, integer or real", "strings"),
    (np.array([[1.0, None]], dtype=object), [1.0], "data", "data[0] (X)", "numbers (bool", "Python objects"),
    (X5 + 1j, Y5, "data", "data[0] (X)", "numbers (bool, integer or real", "complex"),
    ([[1.0, 2.0], [3.0]], [1.0, 2.0], "data", "data[0] (X)", "an array-like of numbers", "inhomogeneous"),
    (None, Y5, "data", "data[0] (X)", "an array-like of numbers", "<NoneType>"),
    (X5, "12345", "data", "data[1] (y)", "an array-like of numbers", "<str>"),
    (np.ones(5), Y5, "test", "test[0] (X_test)", "2-D array", "reshape"),
    (X5, np.ones(4), "test", "test[1] (y_test)", "5 targets, one per row of test[0] (X_test)", ""),
    (X5, np.full(5, np.nan), "test", "test[1] (y_test)", "finite numbers", "5 NaN"),
]


@pytest.mark.parametrize(("X", "y", "name", "field", "accepted", "detail"), BAD_DATA)
def test_bad_data_names_the_argument_and_what_it_accepts(
    X: Any, y: Any, name: str, field: str, accepted: str, detail: str,
) -> None:
    message = config_error(check_data, X, y, name=name, field=field, accepted=accepted)
    assert detail in message


def test_nan_message_counts_and_locates_the_first() -> None:
    X = X5.copy()
    X[3, 1], X[4, 0], X[1, 2] = np.nan, np.inf, np.nan
    message = config_error(check_data, X, Y5, field="data[0] (X)", accepted="finite")
    assert "2 NaN and 1 infinite values, the first at [1, 2]" in message


def test_error_shows_a_summary_never_the_array() -> None:
    X = np.random.default_rng(0).standard_normal(10_000)
    message = config_error(check_data, X, X, field="data[0] (X)", accepted="2-D")
    assert "<ndarray of shape (10000,), dtype float64>" in message
    assert len(message) < 400 and repr(float(X[0]))[:8] not in message
    message = config_error(check_data, X.reshape(-1, 1).tolist(), [1.0], field="data[1] (y)",
                           accepted="10000 targets")
    assert "<list of shape (1,), dtype float64>" in message


def test_error_pickles() -> None:  # raised in a sweep worker process, it must reach the parent whole
    with pytest.raises(ConfigError) as err:
        check_data(np.ones(3), np.ones(3))
    again = pickle.loads(pickle.dumps(err.value))
    assert str(again) == str(err.value) and again.field == "data[0] (X)"


@pytest.mark.parametrize(
    ("pair", "name", "accepted"),
    [
        (np.ones((2, 5)), "data", "a pair (X, y)"),
        ((X5, Y5, Y5), "data", "a pair (X, y)"),
        (None, "data", "a pair (X, y)"),
        ({"X": X5, "y": Y5}, "data", "a pair (X, y)"),
        ([X5], "test", "a pair (X_test, y_test)"),
        (X5, "test", "a pair (X_test, y_test)"),
    ],
)
def test_pair_form_is_checked(pair: Any, name: str, accepted: str) -> None:
    message = config_error(check_pair, pair, name=name, field=name, accepted=accepted)
    assert len(message) < 300


def test_check_data_of_one_argument_checks_the_pair() -> None:
    X, y = check_data((X5, Y5), name="test")
    assert X.shape == (5, 3) and y.shape == (5, 1)
    config_error(check_data, np.ones((2, 5)), field="data", accepted="a pair (X, y)")
    config_error(check_data, [X5], name="test", field="test", accepted="a pair (X_test, y_test)")
    config_error(check_data, (X5, Y5[:2]), name="test", field="test[1] (y_test)", accepted="5 targets")


def test_test_set_needs_the_training_features() -> None:
    message = config_error(check_train_test, (X5, Y5), (np.ones((2, 4)), [1.0, 2.0]),
                           field="test[0] (X_test)", accepted="3 columns, like data[0] (X)")
    assert "(2, 4)" in message
    config_error(check_train_test, (X5, Y5), X5, field="test", accepted="a pair (X_test, y_test)")
    config_error(check_train_test, X5, None, field="data", accepted="a pair (X, y)")


def test_good_pairs_become_float64_copies_with_a_column_target() -> None:
    X, y, X_test, y_test = check_train_test([X5, Y5], (X5[:2], Y5[:2].reshape(-1, 1)))
    assert X.shape == (5, 3) and y.shape == (5, 1) and X_test.shape == (2, 3) and y_test.shape == (2, 1)
    assert all(a.dtype == np.float64 and a.flags.c_contiguous for a in (X, y, X_test, y_test))
    np.testing.assert_array_equal(y[:, 0], Y5)
    assert check_train_test((X5, Y5))[2:] == (None, None)
    X, y = check_data(np.asfortranarray(X5.astype(np.float32)), list(Y5))
    assert X.dtype == np.float64 and X.flags.c_contiguous and np.array_equal(X, X5)


def test_the_users_arrays_are_never_modified_or_shared() -> None:
    X_user, y_user = X5.copy(), Y5.copy()
    X, y = check_data(X_user, y_user)
    assert not np.shares_memory(X, X_user) and not np.shares_memory(y, y_user)
    X += 1
    y *= 2
    standardize(X_user, X_user)
    split(X_user, y_user.reshape(-1, 1), 0.4, split_rng(0))
    np.testing.assert_array_equal(X_user, X5)
    np.testing.assert_array_equal(y_user, Y5)


def test_integers_and_bools_are_converted_with_a_warning_naming_the_argument() -> None:
    expected = r"data\[0\] \(X\): int64 values converted to float64"
    with pytest.warns(DataConversionWarning, match=expected) as rec:
        X, _ = check_data(X5.astype(np.int64), Y5)
    assert X.dtype == np.float64 and np.array_equal(X, X5)
    assert rec[0].filename == __file__  # points at the caller's line, not inside wdlib
    with pytest.warns(DataConversionWarning, match=r"test\[1\] \(y_test\): bool"):
        _, y = check_data(X5, Y5 > 2, name="test")
    np.testing.assert_array_equal(y[:, 0], [0, 0, 0, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # floats of any width convert silently
        check_data(X5.astype(np.float32), Y5.astype(np.float16))
        # refused data get the error alone, not a conversion warning first
        config_error(check_data, np.arange(5), Y5.astype(int), field="data[0] (X)", accepted="2-D")


def test_pandas_torch_and_jax_inputs() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X5, columns=["a", "b", "c"])
    X, y = check_data(frame, pd.Series(Y5))
    assert np.array_equal(X, X5) and np.array_equal(y[:, 0], Y5)
    mixed = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    message = config_error(check_data, mixed, [1.0, 2.0], field="data[0] (X)", accepted="numbers")
    assert "<DataFrame of shape (2, 2), dtype object>" in message
    torch = pytest.importorskip("torch")
    X, y = check_data(torch.tensor(X5, dtype=torch.float32), torch.tensor(Y5))
    assert X.dtype == np.float64 and np.array_equal(X, X5)
    message = config_error(check_data, torch.ones(3, 2, requires_grad=True), Y5[:3], field="data[0] (X)",
                           accepted="an array-like of numbers")
    assert "detach" in message and "<Tensor>" in message
    jnp = pytest.importorskip("jax.numpy")
    X, _ = check_data(jnp.asarray(X5), jnp.asarray(Y5))
    assert X.dtype == np.float64 and np.array_equal(X, X5)


# Written down once: the same digest must come out under NumPy 1 (.venv) and NumPy 2 (.venv-modern).
FINGERPRINT_3X2 = "549162b0dec1bf866ae3c8b31f488fc9e7307a6d5000042dea83f76533ef1c47"


def test_fingerprint_is_stable_across_processes_and_numpy_versions() -> None:
    X, y = np.arange(6.0).reshape(3, 2), np.ones((3, 1))
    assert fingerprint(X, y) == FINGERPRINT_3X2
    code = "import numpy as np; from wdlib.arrays import fingerprint as f; "
    code += "print(f(np.arange(6).reshape(3, 2), np.ones((3, 1), dtype='>f8')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == FINGERPRINT_3X2  # ints, big-endian: the same float64 values


def test_fingerprint_sees_one_changed_value_shape_order_and_arity() -> None:
    X, y = np.arange(6.0).reshape(3, 2), np.ones((3, 1))
    base = fingerprint(X, y)
    nudged = X.copy()
    nudged[2, 1] = np.nextafter(nudged[2, 1], np.inf)
    assert fingerprint(nudged, y) != base
    assert fingerprint(X.reshape(2, 3), y) != base
    assert fingerprint(y, X) != base
    assert fingerprint(X, y, None) != base and fingerprint(X) != base
    assert fingerprint(np.asfortranarray(X), y) == base
    assert len(base) == 64 and int(base, 16) >= 0


def test_split_rng_is_the_seeds_reserved_child_stream() -> None:
    children = np.random.SeedSequence(7).spawn(5)
    assert SPLIT_STREAM == 4
    draws = split_rng(7).random(3)
    np.testing.assert_array_equal(draws, np.random.default_rng(children[4]).random(3))
    for child in children[:4]:  # make_problem's streams are not reused
        assert not np.array_equal(draws, np.random.default_rng(child).random(3))
    config_error(split_rng, -1, field="seed", accepted="integer from 0")


def test_split_is_reproducible_disjoint_and_keeps_pairs() -> None:
    n = 40
    X = np.arange(n, dtype=float).reshape(-1, 1) * np.ones((1, 2))
    y = 10 * X[:, :1]
    X_tr, y_tr, X_te, y_te = split(X, y, 0.25, split_rng(3))
    assert len(X_te) == 10 and len(X_tr) == 30
    ids_tr, ids_te = X_tr[:, 0], X_te[:, 0]
    assert set(ids_tr).isdisjoint(ids_te) and sorted([*ids_tr, *ids_te]) == list(range(n))
    np.testing.assert_array_equal(y_tr[:, 0], 10 * ids_tr)
    np.testing.assert_array_equal(y_te[:, 0], 10 * ids_te)
    assert np.all(np.diff(ids_tr) > 0) and np.all(np.diff(ids_te) > 0)  # original order kept
    again = split(X, y, 0.25, split_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(again, (X_tr, y_tr, X_te, y_te), strict=True))
    assert not np.array_equal(split(X, y, 0.25, split_rng(4))[2], X_te)


@pytest.mark.parametrize(
    ("n", "fraction", "n_test"),
    [(442, 0.25, 110), (40, 0.25, 10), (30, 0.1, 3), (2, 0.5, 1), (3, 0.01, 1), (3, 0.9, 2), (10, 1e-12, 1)],
)
def test_split_sizes_are_the_configs(n: int, fraction: float, n_test: int) -> None:
    X = np.ones((n, 1))
    sizes = [len(a) for a in split(X, X, fraction, split_rng(0))]
    assert sizes == [n - n_test, n - n_test, n_test, n_test]
    assert split_sizes(n, fraction) == (n - n_test, n_test)  # what a Config derives n_train, n_test from


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, math.nan, math.inf, True, "0.2", None])
def test_split_refuses_a_bad_fraction(fraction: Any) -> None:
    config_error(split, X5, Y5, fraction, split_rng(0), field="test_fraction",
                 accepted="a number strictly between 0 and 1")


def test_split_needs_two_rows_and_a_generator() -> None:
    message = config_error(split, np.ones((1, 1)), np.ones((1, 1)), 0.5, split_rng(0), field="data",
                           accepted="at least 2 examples")
    assert "pass test=(X_test, y_test)" in message
    config_error(split, X5, Y5, 0.2, 0, field="rng", accepted="a numpy.random.Generator")
    config_error(split, X5, Y5, 0.2, np.random.RandomState(0), field="rng", accepted="Generator")
    config_error(split, X5, Y5[:4], 0.2, split_rng(0), field="y", accepted="5 targets")


def test_standardize_uses_training_statistics_for_both_sets() -> None:
    rng = np.random.default_rng(0)
    train, test = rng.normal(5, 3, (50, 4)), rng.normal(5, 3, (20, 4))
    train_s, test_s = standardize(train, test)
    np.testing.assert_allclose(train_s.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(train_s.std(axis=0), 1, rtol=1e-12)
    np.testing.assert_allclose(test_s, (test - train.mean(axis=0)) / train.std(axis=0), rtol=1e-12)
    assert abs(test_s.mean()) > 1e-6  # the test set's own statistics were not used
    y_s, none = standardize(train[:, :1])
    assert y_s.shape == (50, 1) and none is None and abs(y_s.std() - 1) < 1e-12


def test_constant_columns_stay_finite() -> None:
    train = np.column_stack([np.full(7, 0.1), np.zeros(7), np.arange(7.0)])
    test = np.array([[0.3, 2.0, 1.0]])
    mean, scale = scaling(train)
    np.testing.assert_array_equal(scale[0, :2], [1.0, 1.0])
    np.testing.assert_allclose(mean[0], [0.1, 0.0, 3.0], rtol=1e-15)
    train_s, test_s = standardize(train, test)
    assert np.all(np.isfinite(train_s)) and np.all(np.isfinite(test_s))
    np.testing.assert_allclose(train_s[:, :2], 0, atol=1e-15)  # not round-off noise blown up to ~1
    np.testing.assert_allclose(test_s[0, :2], [0.2, 2.0], rtol=1e-12)
    assert abs(train_s[:, 2].std() - 1) < 1e-12
