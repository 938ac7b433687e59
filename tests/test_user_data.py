"""Your own arrays: one source of truth for the sizes, the same numbers on every backend, the fast path
for the linear model, and refusals (not silent wrong results) when a Config disagrees with a Problem."""

from __future__ import annotations

import numpy as np
import pytest

import wdlib


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    X = rng.standard_normal((60, 50))
    y = X[:, :5].sum(axis=1) + 0.1 * rng.standard_normal(60)
    return X, y


@pytest.fixture(scope="module")
def problem(arrays) -> wdlib.Problem:
    return wdlib.Problem.from_arrays(*arrays, batch_size=6, num_epochs=20)


# --- the mismatches of the issue: each was a silent wrong result or a raw traceback --------------------


@pytest.mark.parametrize(("field", "value"), [("num_inputs", 52), ("batch_size", 5), ("num_epochs", 100),
                                              ("n_train", 20)])
def test_fit_refuses_a_config_that_disagrees_with_the_problem(problem, field: str, value: int) -> None:
    config = wdlib.fit("numpy", problem).config.replace(**{field: value})
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.fit("numpy", problem, config)
    assert err.value.field == f"config.{field}"


def test_fit_refuses_a_config_of_another_backend(problem) -> None:
    config = wdlib.fit("numpy", problem).config
    with pytest.raises(wdlib.ConfigError, match=r"config\.backend='numpy'.*'torch'"):
        wdlib.fit(wdlib.get_backend("torch"), problem, config)


def test_fit_takes_a_backend_name_and_derives_the_config(problem) -> None:
    run = wdlib.fit("numpy", problem, lambd=0.5)
    c = run.config
    assert (c.backend, c.n_train, c.n_test, c.num_inputs, c.batch_size, c.num_epochs) == \
        ("numpy", 45, 15, 50, 6, 20)
    assert c.dataset == "arrays" and c.data_fingerprint == problem.data_fingerprint
    assert run.params["w"].shape == (50, 1)


def test_fit_refuses_what_is_not_a_problem() -> None:
    with pytest.raises(wdlib.ConfigError, match=r"wdlib\.Problem"):
        wdlib.fit("numpy", {"X": 1})
    with pytest.raises(wdlib.ConfigError, match="model"):
        wdlib.fit("numpy", wdlib.make_problem(wdlib.make_config()), wdlib.make_config(model="mlp"))


@pytest.mark.parametrize("field", ["n_train", "num_inputs", "dataset", "data_fingerprint"])
def test_train_refuses_fields_the_data_decide(arrays, field: str) -> None:
    value = {"dataset": "synthetic", "data_fingerprint": "x"}.get(field, 7)
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.train("numpy", data=arrays, **{field: value})
    assert err.value.field == field


def test_synthetic_only_fields_are_refused_with_data(arrays) -> None:
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.train("numpy", data=arrays, noise=0.5)
    assert err.value.field == "noise"


def test_test_set_without_data_is_refused() -> None:
    with pytest.raises(wdlib.ConfigError) as err:
        wdlib.train("numpy", test=(np.ones((3, 2)), np.ones(3)))
    assert err.value.field == "test"


# --- the same numbers everywhere --------------------------------------------------------------------


def test_user_data_run_equals_numpy_reference(backend: str, arrays) -> None:
    test = (arrays[0][:10] + 1, arrays[1][:10])
    ref = wdlib.train("numpy", data=arrays, test=test, lambd=0.3, dtype="float64", engine="eager")
    run = wdlib.train(backend, data=arrays, test=test, lambd=0.3, dtype="float64")
    assert run.config.n_test == 10 and run.config.n_train == 60
    np.testing.assert_allclose(run.test_loss, ref.test_loss, rtol=1e-12)
    np.testing.assert_allclose(run.params["w"], ref.params["w"], rtol=1e-12,
                               atol=1e-12 * np.abs(ref.params["w"]).max())


def test_user_data_linear_run_takes_the_fast_path(backend: str, arrays) -> None:
    fused = wdlib.train(backend, data=arrays, lambd=1.0, dtype="float64")
    eager = wdlib.train(backend, data=arrays, lambd=1.0, dtype="float64", engine="eager")
    assert fused.engine == "fused" and eager.engine == "eager"
    np.testing.assert_allclose(fused.test_loss, eager.test_loss, rtol=1e-12)
    np.testing.assert_allclose(fused.params["w"], eager.params["w"], rtol=1e-12,
                               atol=1e-12 * np.abs(eager.params["w"]).max())


def test_split_is_seeded_and_fingerprinted(arrays) -> None:
    a = wdlib.Problem.from_arrays(*arrays, seed=1)
    b = wdlib.Problem.from_arrays(*arrays, seed=1)
    c = wdlib.Problem.from_arrays(*arrays, seed=2)
    assert np.array_equal(a.X_test, b.X_test) and not np.array_equal(a.X_test, c.X_test)
    assert a.data_fingerprint == c.data_fingerprint  # the data, not the split
    changed = arrays[0].copy()
    changed[3, 4] += 1e-9
    assert wdlib.Problem.from_arrays(changed, arrays[1]).data_fingerprint != a.data_fingerprint
    assert len(a.X_train) + len(a.X_test) == 60
    rows = {tuple(r) for r in a.X_train} | {tuple(r) for r in a.X_test}
    assert len(rows) == 60


def test_the_users_arrays_are_not_changed(arrays) -> None:
    X, y = arrays[0].copy(), arrays[1].copy()
    wdlib.train("numpy", data=(X, y), lambd=1.0, engine="eager")
    assert np.array_equal(X, arrays[0]) and np.array_equal(y, arrays[1])


def test_train_lambdas_on_user_data(arrays) -> None:
    runs = wdlib.train_lambdas("numpy", [0.0, 1.0], data=arrays, dtype="float64")
    alone = wdlib.train("numpy", data=arrays, lambd=1.0, dtype="float64")
    assert runs[1].engine == "vectorized"
    np.testing.assert_allclose(runs[1].test_loss, alone.test_loss, rtol=1e-12)


def test_compare_on_user_data_with_an_mlp(arrays) -> None:
    table = wdlib.compare(["numpy", "torch"], [0.0, 1e-3], data=arrays, model="mlp", hidden=(8,),
                          num_epochs=5)
    assert [row["status"] for row in table.rows] == ["ok"] * 4
    assert {row["backend"] for row in table.rows} == {"numpy", "torch"}


def test_sweep_on_user_data_stores_under_the_fingerprint(arrays, tmp_path) -> None:
    store = tmp_path / "runs.sqlite"
    table = wdlib.sweep([0.0, 1.0], backends=["numpy"], data=arrays, store=store, executor=_threads())
    assert table.computed == 2
    other = (arrays[0] * 2, arrays[1])
    again = wdlib.sweep([0.0, 1.0], backends=["numpy"], data=other, store=store, executor=_threads())
    assert again.computed == 2  # other data, other keys
    same = wdlib.sweep([0.0, 1.0], backends=["numpy"], data=arrays, store=store, executor=_threads())
    assert same.computed == 0


def _threads():
    import concurrent.futures as cf

    return cf.ThreadPoolExecutor(2)


@pytest.mark.parametrize("block", [2**22, 7])  # one call, and a few rows at a time
def test_finite_check_finds_a_bad_value_in_any_row(block: int) -> None:
    from wdlib.validate import _all_finite

    X = np.ones((50, 4))
    assert _all_finite(X, block)
    for bad in (np.nan, np.inf, -np.inf):
        X[-1, -1] = bad
        assert not _all_finite(X, block)
        X[-1, -1] = 1.0


def test_test_fraction_is_checked_before_the_split_uses_it() -> None:
    X = np.random.default_rng(0).standard_normal((30, 3))
    with pytest.raises(wdlib.ConfigError, match="strictly between 0 and 1") as err:
        wdlib.train("numpy", data=(X, X.sum(axis=1)), test_fraction="0.5")
    assert err.value.field == "test_fraction"
