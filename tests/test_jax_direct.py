"""JAX's one-λ fused runs (wdlib_jax.direct, what ``JaxBackend.fused_fit`` runs) equal the plan's
path (wdlib_jax.fused.Scan, which λ sweeps and large data still take): the same loop on the same
layout, the losses from Z rather than from its QR rows, so float64 1e-12 and float32 1e-5 relative,
within the fast paths' tolerance against the eager loop (tests/test_fused.py)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import INSTALLED
from fused_support import set_options

import wdlib
from wdlib import vectorized

pytestmark = pytest.mark.skipif("jax" not in INSTALLED, reason="JAX is not installed in this environment")

CASES = [
    {"lambd": 3.0},
    {"lambd": 0.0},
    {"lambd": 3.0, "decay_bias": True},
    {"lambd": 3.0, "n_train": 23},  # a short last batch (23 = 4 * 5 + 3)
    {"lambd": 3.0, "preset": "gluonbook"},  # batch_size 1
    {"lambd": 3.0, "n_train": 150, "num_inputs": 20},  # the primal layout
]


def plan_path(problem: wdlib.Problem, config: wdlib.Config) -> tuple:
    backend = wdlib.get_backend("jax")
    with backend.context(config.dtype):
        return vectorized.single(backend.fit_plan(vectorized.make_plan(problem, config)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fields", CASES, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_one_column_run_equals_the_plans_path(fields: dict, dtype: str) -> None:
    from wdlib_jax import direct

    config = wdlib.make_config(**{"preset": "d2l", **fields}, backend="jax", dtype=dtype)
    problem = wdlib.make_problem(config)
    calls = []
    original = direct.fit
    try:
        direct.fit = lambda *a: calls.append(1) or original(*a)
        got = wdlib.get_backend("jax").fused_fit(problem, config)
    finally:
        direct.fit = original
    assert calls == [1]
    want = plan_path(problem, config)
    tol = 1e-12 if dtype == "float64" else 1e-5
    for a, b, name in zip(got[:2], want[:2], ("train loss", "test loss"), strict=True):
        assert a.shape == b.shape == (config.num_epochs,) and a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=tol * (100 if name == "train loss" else 1), err_msg=name)
    for name in ("w", "b"):
        a, b = got[2][name], want[2][name]
        assert a.shape == b.shape and a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, rtol=10 * tol, atol=10 * tol * np.abs(b).max(), err_msg=name)
    assert not np.allclose(got[2]["w"], problem.w0)


def test_a_diverging_run_keeps_the_parameters_of_its_first_non_finite_epoch() -> None:
    config = wdlib.make_config(backend="jax", lr=0.5, lambd=3.0, num_epochs=100, dtype="float64",
                               on_divergence="record")
    problem = wdlib.make_problem(config)
    train, test, params = wdlib.get_backend("jax").fused_fit(problem, config)
    want = plan_path(problem, config)
    bad = int(np.argmin(np.isfinite(train) & np.isfinite(test)))
    assert 0 < bad < 99 and np.isnan(train[bad + 1 :]).all() and np.isnan(test[bad + 1 :]).all()
    np.testing.assert_array_equal(np.isfinite(train), np.isfinite(want[0]))
    np.testing.assert_allclose(train[:bad], want[0][:bad], rtol=1e-9)
    for name in ("w", "b"):
        finite = np.isfinite(want[2][name])
        np.testing.assert_array_equal(np.isfinite(params[name]), finite)
        np.testing.assert_allclose(params[name][finite], want[2][name][finite], rtol=1e-6)


@pytest.mark.parametrize("change", [{"gather_bytes": 0, "dual_ratio": 0}, {"eval_chunk_bytes": 1}],
                         ids=["large-data", "evaluation-in-chunks"])
def test_other_runs_go_through_the_plan(change: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large data ("blocks") and runs whose snapshots exceed one evaluation chunk keep the driver."""
    from wdlib_jax import direct

    set_options(monkeypatch, **change)
    config = wdlib.make_config(backend="jax", lambd=3.0, num_epochs=5, dtype="float64")
    problem = wdlib.make_problem(config)
    assert direct.fit(problem, config) is None
    run = wdlib.train("jax", lambd=3.0, num_epochs=5, dtype="float64")
    eager = wdlib.train("jax", lambd=3.0, num_epochs=5, dtype="float64", engine="eager")
    assert run.engine == "fused"
    np.testing.assert_allclose(run.test_loss, eager.test_loss, rtol=1e-12)


def test_bad_lambdas_and_schedules_are_refused_as_by_the_plan() -> None:
    config = wdlib.make_config(backend="jax", num_epochs=3)
    problem = wdlib.make_problem(config)
    from wdlib import planning

    for lambd in (-1.0, float("nan"), float("inf")):  # a Config refuses them itself
        with pytest.raises(ValueError, match="finite numbers >= 0"):
            planning.choose(problem, config, [lambd])
    assert planning.choose(problem, config)[1:] == planning.choose(problem, config, [config.lambd])[1:]
    every2 = wdlib.Problem(**{**vars(problem), "eval_every": 3})
    with pytest.raises(ValueError, match="evaluation schedule"):
        wdlib.get_backend("jax").fused_fit(every2, config)


def test_compiled_once_per_shape_and_cheap_enough_to_run_inline() -> None:
    """A λ or lr sweep reuses one executable; the chapter's call stays under XLA's inline-execution
    cost (direct.INLINE_FLOPS), which is why the losses are not in it."""
    from wdlib_jax import direct

    wdlib.train("jax", lambd=0.0, num_epochs=3)
    run = direct.snapshots(5, 21, False)
    size = run._cache_size()
    for lambd, lr in ((3.0, 0.003), (7.5, 0.001), (0.25, 0.01)):
        wdlib.train("jax", lambd=lambd, lr=lr, num_epochs=3)
    assert run._cache_size() == size >= 1
    config = wdlib.make_config(backend="jax", lambd=3.0)
    problem = wdlib.make_problem(config)
    Z = np.zeros((20, 23), np.float32)
    cost = run.lower(Z, Z, problem.batch_order, np.zeros((23, 1), np.float32),
                     np.ones((4, 1, 1), np.float32)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    assert 0 < cost["flops"] < direct.INLINE_FLOPS


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fields", [{}, {"n_train": 23, "decay_bias": True},
                                    {"n_train": 150, "num_inputs": 20},
                                    {"on_divergence": "record"}],  # λ = 1e5: 1 - lr λ < -1 diverges
                         ids=["d2l", "short-batch-decay_bias", "primal", "some-diverge"])
def test_several_lambdas_equal_the_plans_path(fields: dict, dtype: str) -> None:
    config = wdlib.make_config(backend="jax", dtype=dtype, **fields)
    problem = wdlib.make_problem(config)
    lambdas = [0.0, 0.5, 3.0, 20.0, 1e5 if fields.get("on_divergence") else 80.0]
    with_plan = wdlib.get_backend("jax")
    with with_plan.context(dtype):
        want = with_plan.fit_plan(vectorized.make_plan(problem, config, lambdas))
    got = wdlib.get_backend("jax").fused_fit_lambdas(problem, config, lambdas)
    tol = 1e-12 if dtype == "float64" else 1e-4
    for a, b, name in ((got[0], want[0], "train"), (got[1], want[1], "test")):
        assert a.shape == b.shape == (5, config.num_epochs) and a.dtype == np.float64
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
        np.testing.assert_allclose(a, b, rtol=tol * (200 if name == "train" else 1), err_msg=name)
    for name in ("w", "b"):
        a, b = got[2][name], want[2][name]
        assert a.shape == b.shape and a.dtype == b.dtype == np.dtype(dtype)
        finite = np.isfinite(b)
        np.testing.assert_array_equal(np.isfinite(a), finite, err_msg=name)
        atol = tol * np.abs(b[finite]).max()
        np.testing.assert_allclose(a[finite], b[finite], rtol=tol, atol=atol, err_msg=name)
    if fields.get("on_divergence"):
        assert np.isnan(got[1][-1]).any() and not np.isnan(got[1][0]).any()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_sweeps_losses_in_chunks_equal_the_whole_product(dtype: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """direct._losses: several chunks of epochs and a short last one give the losses of the whole
    (E, rows, k) product; a sweep whose losses come in 3-epoch chunks equals one in a single chunk."""
    from wdlib_jax import direct

    rng = np.random.default_rng(0)
    A, B, S = (rng.standard_normal(s).astype(dtype) for s in ((20, 23), (23, 23), (10, 23, 7)))
    rows = len(A) + len(B)
    monkeypatch.setattr(direct, "CHUNK_BYTES", 3 * rows * 7 * np.dtype(dtype).itemsize)  # 3 + 3 + 3 + 1
    train, test = direct._losses(A, B, S)
    want = [np.square(np.matmul(M, S)).sum(axis=1).T for M in (A, B)]
    tol = 1e-12 if dtype == "float64" else 1e-5
    for a, b in zip((train, test), want, strict=True):
        assert a.shape == (7, 10) and a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=tol)
    config = wdlib.make_config(backend="jax", dtype=dtype, num_epochs=10)
    problem = wdlib.make_problem(config)
    lambdas = [0.0, 3.0, 20.0]
    chunked = wdlib.get_backend("jax").fused_fit_lambdas(problem, config, lambdas)
    monkeypatch.setattr(direct, "CHUNK_BYTES", 1 << 30)
    whole = wdlib.get_backend("jax").fused_fit_lambdas(problem, config, lambdas)
    for a, b in zip(chunked[:2], whole[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=tol)
    np.testing.assert_array_equal(chunked[2]["w"], whole[2]["w"])


def test_a_sweeps_snapshots_in_parts_equal_one_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep's snapshots in several parts of the compiled call (direct.PART_BYTES) give the bits of
    one part, the parameters of a column that diverges in a later part included."""
    from wdlib_jax import direct

    config = wdlib.make_config(backend="jax", dtype="float64", on_divergence="record")
    problem = wdlib.make_problem(config)
    lambdas = [0.0, 3.0, 1e5]  # 1e5 overflows float64 after some 30 epochs
    monkeypatch.setattr(direct, "CHUNK_BYTES", 1)  # losses one epoch at a time: parts of 13 epochs
    runs = {}
    for part_bytes in (1, 1 << 30):
        monkeypatch.setattr(direct, "PART_BYTES", part_bytes)
        runs[part_bytes] = wdlib.get_backend("jax").fused_fit_lambdas(problem, config, lambdas)
        assert len(direct._parts(100, 1, 23 * 3 * 8)) == (8 if part_bytes == 1 else 1)  # 7 x 13 + 9
    parts, whole = runs[1], runs[1 << 30]
    bad = int(np.argmin(np.isfinite(parts[1][2])))
    assert 13 < bad < 99 and np.isfinite(parts[1][:2]).all()
    for a, b in zip((*parts[:2], parts[2]["w"], parts[2]["b"]), (*whole[:2], whole[2]["w"], whole[2]["b"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_sweeps_inputs_are_remembered_by_the_datas_bytes() -> None:
    """wdlib_jax.inputs.cached: a problem of the same bytes (make_problem's fresh copies) reuses the
    inputs; an array changed in place makes them anew, so the sweep sees the new data."""
    from wdlib_jax import inputs

    config = wdlib.make_config(backend="jax", num_epochs=5)
    lambdas = [0.0, 3.0]
    backend = wdlib.get_backend("jax")
    problem = wdlib.make_problem(config)
    first = backend.fused_fit_lambdas(problem, config, lambdas)
    with backend.context(config.dtype):
        x = inputs.cached(problem, config, True)
        assert inputs.cached(wdlib.make_problem(config), config, True) is x
    problem.X_train[3] *= 2
    changed = backend.fused_fit_lambdas(problem, config, lambdas)
    fresh = wdlib.Problem(**{**vars(problem), "X_train": problem.X_train.copy()})
    inputs._cache.clear()
    want = backend.fused_fit_lambdas(fresh, config, lambdas)
    assert not np.array_equal(changed[1], first[1])
    for a, b in zip((*changed[:2], changed[2]["w"]), (*want[:2], want[2]["w"]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_remembered_entry_is_not_changed_by_its_callers_arrays() -> None:
    """The entry holds read-only copies: changing the first problem's X in place after its sweep does
    not reach the weights of a later sweep of the original bytes (a fresh make_problem)."""
    from wdlib_jax import inputs

    config = wdlib.make_config(backend="jax", num_epochs=5)
    backend = wdlib.get_backend("jax")
    inputs._cache.clear()
    first = wdlib.make_problem(config)
    want = backend.fused_fit_lambdas(first, config, [0.0, 3.0])
    first.X_train[...] *= 10  # the array the entry was made from, changed after the sweep
    again = backend.fused_fit_lambdas(wdlib.make_problem(config), config, [0.0, 3.0])
    np.testing.assert_array_equal(again[2]["w"], want[2]["w"])
    np.testing.assert_array_equal(again[1], want[1])
    with backend.context(config.dtype):
        entry = inputs.cached(wdlib.make_problem(config), config, True)
    assert not any(a.flags.writeable for a in (entry.X, entry.w0, entry.Z, entry.U))
