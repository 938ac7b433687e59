"""wdlib.train_lambdas: many λ in one batched run, equal to the one-at-a-time runs.

The batched run is the matrix-form SGD of ``wdlib.vectorized`` with one column per λ; it equals the
eager one-at-a-time runs within the cross-backend tolerances (float64 1e-12 on w and the test loss,
float32 1e-4; see tests/test_fused.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_fused import assert_runs_close, large_data_path, set_options

import wdlib
from wdlib import fastpath, vectorized
from wdlib_numpy import NumpyBackend

LAMBDAS = [0.0, 0.5, 3.0, 10.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("preset", ["d2l", "gluonbook"])
def test_vectorized_equals_one_at_a_time(backend: str, preset: str, dtype: str) -> None:
    runs = wdlib.train_lambdas(backend, LAMBDAS, preset, seed=2, dtype=dtype)
    assert [r.config.lambd for r in runs] == LAMBDAS
    for lambd, run in zip(LAMBDAS, runs, strict=True):
        assert run.engine == "vectorized" and run.meta["vectorized_k"] == len(LAMBDAS)
        single = wdlib.train(backend, preset, lambd=lambd, seed=2, dtype=dtype, engine="eager")
        assert run.config == single.config.replace(engine="auto")
        assert_runs_close(run, single, dtype)


def test_vectorized_on_the_large_data_path(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    large_data_path(monkeypatch)
    runs = wdlib.train_lambdas(backend, LAMBDAS, seed=3, dtype="float64", decay_bias=True)
    for lambd, run in zip(LAMBDAS, runs, strict=True):
        single = wdlib.train(backend, lambd=lambd, seed=3, dtype="float64", decay_bias=True, engine="eager")
        assert_runs_close(run, single, "float64")


@pytest.mark.skipif("jax" not in wdlib.installed_backends(), reason="jax is not installed")
@pytest.mark.parametrize("fused_product_max", [0, 2**15])
def test_jax_products_as_loops_or_dots(fused_product_max: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """JAX writes a small batched minibatch product as a fused loop and a large one as ``dot``: each
    form trains every λ as the eager one-at-a-time runs do."""
    from wdlib_jax import direct

    set_options(monkeypatch, fused_product_max=fused_product_max)
    loops = fused_product_max > 0  # the chapter's 5 x 23 x 4 products are below 2**15
    for dtype in ("float64", "float32"):
        direct.snapshots.cache_clear()  # fresh jitted functions, to see which one runs
        runs = wdlib.train_lambdas("jax", LAMBDAS, seed=4, dtype=dtype)
        used = [direct.snapshots(5, 21, form)._cache_size() for form in (loops, not loops)]  # 21 decayed
        assert used == [1, 0]
        for lambd, run in zip(LAMBDAS, runs, strict=True):
            assert_runs_close(run, wdlib.train("numpy", lambd=lambd, seed=4, dtype=dtype, engine="eager"),
                              dtype)


def test_contract(backend: str) -> None:
    runs = wdlib.train_lambdas(backend, [3.0, 0.0, 3.0], num_epochs=4, decay_bias=True)
    assert len(runs) == 3 and runs[0].problem is runs[1].problem is runs[2].problem
    assert [r.config.lambd for r in runs] == [3.0, 0.0, 3.0]
    assert all(r.config.decay_bias and r.config.backend == backend for r in runs)
    # equal λ, equal numbers (to rounding: a batched kernel may treat columns differently)
    np.testing.assert_allclose(runs[0].params["w"], runs[2].params["w"], rtol=1e-5, atol=1e-6)
    assert runs[0].train_loss.shape == (4,)
    assert wdlib.train_lambdas(backend, []) == []


def test_eager_and_l1_run_one_at_a_time() -> None:
    eager = wdlib.train_lambdas("numpy", [0.0, 3.0], num_epochs=5, engine="eager")
    l1 = wdlib.train_lambdas("numpy", [0.0, 3.0], num_epochs=5, penalty="l1")
    assert {r.engine for r in eager + l1} == {"eager"}
    single = wdlib.train("numpy", lambd=3.0, num_epochs=5, penalty="l1")
    assert np.array_equal(l1[1].params["w"], single.params["w"])
    with pytest.raises(wdlib.ConfigError, match="engine"):
        wdlib.train_lambdas("numpy", [3.0], penalty="l1", engine="fused")


def test_bad_lambda_is_rejected_before_training() -> None:
    with pytest.raises(wdlib.ConfigError, match="lambd"):
        wdlib.train_lambdas("numpy", [1.0, -1.0])


def test_backend_without_batched_method_runs_one_at_a_time() -> None:
    class Plain(NumpyBackend):
        name = "plain"
        fused_fit_lambdas = None  # type: ignore[assignment]

        def supports_fused(self, config: wdlib.Config) -> bool:
            return False

    with wdlib.temporary_backend(Plain):
        runs = wdlib.train_lambdas("plain", [0.0, 3.0], num_epochs=3)
    assert [r.engine for r in runs] == ["eager", "eager"]


def test_one_diverging_lambda_leaves_the_others_intact(backend: str) -> None:
    """λ = 3000 makes the decay factor 1 - lr λ = -8: that column diverges, the others do not."""
    runs = wdlib.train_lambdas(backend, [3.0, 3000.0], num_epochs=60, dtype="float64",
                               on_divergence="record")
    assert not runs[0].diverged and runs[1].diverged
    single = wdlib.train(backend, lambd=3000.0, num_epochs=60, dtype="float64", on_divergence="record",
                         engine="eager")
    assert runs[1].meta["diverged_at_epoch"] == single.meta["diverged_at_epoch"]
    assert_runs_close(runs[0], wdlib.train(backend, lambd=3.0, num_epochs=60, dtype="float64",
                                           engine="eager"), "float64")
    with pytest.raises(wdlib.DivergenceError):
        wdlib.train_lambdas(backend, [3.0, 3000.0], num_epochs=60)


def test_loss_rows_keep_every_residual_norm() -> None:
    """Plan.loss_rows: at most q rows, and ||L theta|| = ||Z theta|| for any theta (float64: to 1e-12;
    float32: as accurate as the float32 product with Z itself)."""
    config = wdlib.make_config(dtype="float64")
    plan = vectorized.make_plan(wdlib.make_problem(config), config)
    rng = np.random.default_rng(0)
    for Z in (plan.Z_test, rng.standard_normal((500, 7))):
        L = plan.loss_rows(Z)
        assert L.shape == (Z.shape[1], Z.shape[1]) and L.dtype == Z.dtype
        thetas = rng.standard_normal((Z.shape[1], 50))
        np.testing.assert_allclose(np.linalg.norm(L @ thetas, axis=0), np.linalg.norm(Z @ thetas, axis=0),
                                   rtol=1e-12)
    Z32 = rng.standard_normal((100, 23)).astype(np.float32)
    theta = rng.standard_normal((23, 1)).astype(np.float32)
    exact = np.linalg.norm(Z32.astype(np.float64) @ theta.astype(np.float64))
    direct = np.linalg.norm(Z32 @ theta)
    via_r = np.linalg.norm(plan.loss_rows(Z32) @ theta)
    assert abs(via_r - exact) <= 4 * max(abs(direct - exact), 1e-6 * exact)
    assert plan.loss_rows(plan.Z_train) is plan.Z_train  # 20 rows, 23 columns: kept as is


def test_plan_names_its_layout_and_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """make_plan's choices, as explicit fields: the chapter (20 examples, 200 features) in the dual
    layout, one λ with its step matrices multiplied out (scan; step matrices one at a time above
    scan_max_q), several with minibatches; more data than gather_bytes: blocks."""
    from test_fused import set_options

    config = wdlib.make_config(lambd=3.0)
    problem = wdlib.make_problem(config)
    plan = vectorized.make_plan(problem, config)
    assert (plan.layout, plan.strategy, plan.q) == ("dual", "scan", 23)
    assert plan.step_matrices().shape == (100, 4, 23, 23)
    set_options(monkeypatch, scan_max_q=22)
    assert vectorized.make_plan(problem, config).strategy == "step_matrices"
    sweep = vectorized.make_plan(problem, config, [0.0, 3.0])
    assert (sweep.layout, sweep.strategy, sweep.k) == ("dual", "minibatches", 2)
    set_options(monkeypatch, dual_ratio=0)
    assert vectorized.make_plan(problem, config).layout == "primal"
    assert vectorized.make_plan(problem, config).strategy == "minibatches"  # q = 202 > step_matrix_max_q
    set_options(monkeypatch, gather_bytes=2 * 20 * 202 * 4 - 1)  # one byte short of the chapter's Z and U
    plan = vectorized.make_plan(problem, config)
    assert (plan.layout, plan.strategy, plan.U_train) == ("primal", "blocks", None)
    assert plan.options is fastpath.OPTIONS
    assert set(vectorized.LAYOUTS) == {"primal", "dual"}
    assert set(vectorized.STRATEGIES) == {"scan", "step_matrices", "minibatches", "blocks"}


def test_vectorized_short_last_batch(backend: str) -> None:
    """A λ sweep whose last minibatch is short (23 = 4 x 5 + 3): it decays less, in every column."""
    kw = {"n_train": 23, "batch_size": 5, "num_epochs": 30, "dtype": "float64", "seed": 5}
    runs = wdlib.train_lambdas(backend, LAMBDAS, **kw)
    for lambd, run in zip(LAMBDAS, runs, strict=True):
        assert_runs_close(run, wdlib.train("numpy", lambd=lambd, engine="eager", **kw), "float64")


@pytest.mark.parametrize("kw", [
    {"dtype": "float32", "decay_bias": True, "num_epochs": 31},  # the chapter's shape, a short last segment
    {"n_train": 23, "batch_size": 5, "num_epochs": 31, "dtype": "float64"},  # short last batch
])
@pytest.mark.parametrize("lambdas", [LAMBDAS, [0.0, 0.0]])  # with and without a penalty
def test_mxnet_graphs_equal_the_operators_one_by_one(kw: dict, lambdas: list[float],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """MXNet's λ sweeps of a small state in cached graphs (wdlib_mxnet.graph): the same operators
    as called one by one (options.graph_steps=0), so the same parameters bit for bit; the losses
    (from the QR rows, squares summed in float64) within rounding."""
    if "mxnet" not in wdlib.installed_backends():
        pytest.skip("mxnet is not installed")
    from wdlib_mxnet import graph

    nb = -(-kw.get("n_train", 20) // 5)  # minibatches per epoch
    set_options(monkeypatch, graph_steps=3 * nb)  # segments of 3 epochs, the last of 1
    monkeypatch.setattr(graph._local, "blocks", {}, raising=False)
    graphs = wdlib.train_lambdas("mxnet", lambdas, seed=4, **kw)
    assert {key[0] for key in graph._local.blocks} == {3, 1}
    set_options(monkeypatch, graph_steps=0)
    plain = wdlib.train_lambdas("mxnet", lambdas, seed=4, **kw)
    tol = 1e-12 if kw["dtype"] == "float64" else 1e-5
    for a, b in zip(graphs, plain, strict=True):
        assert np.array_equal(a.params["w"], b.params["w"]) and np.array_equal(a.params["b"], b.params["b"])
        np.testing.assert_allclose(a.test_loss, b.test_loss, rtol=tol, atol=0)
        np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=100 * tol, atol=0)


def test_mxnet_graphs_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each cached graph holds its static memory: past graph.MAX_BLOCKS the oldest is dropped, and a
    shape seen again is built again with the same numbers."""
    if "mxnet" not in wdlib.installed_backends():
        pytest.skip("mxnet is not installed")
    from wdlib_mxnet import graph

    monkeypatch.setattr(graph, "MAX_BLOCKS", 1)
    monkeypatch.setattr(graph._local, "blocks", {}, raising=False)
    first = wdlib.train_lambdas("mxnet", LAMBDAS, num_epochs=3, dtype="float64")
    wdlib.train_lambdas("mxnet", LAMBDAS, num_epochs=2, dtype="float64")
    assert [key[0] for key in graph._local.blocks] == [2]
    again = wdlib.train_lambdas("mxnet", LAMBDAS, num_epochs=3, dtype="float64")
    assert [key[0] for key in graph._local.blocks] == [3]
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.params["w"], b.params["w"])
