"""The "scan" strategy (wdlib.scan: the step matrices multiplied out by a blocked prefix product) gives
the eager loop's numbers within the fast paths' tolerances (tests/fused_support.py: float64 1e-12,
float32 1e-4) on every backend, whatever the block size and evaluation chunk, and records divergence
as the eager loop does. Both books' configs and both dtypes: tests/test_fused.py (loop="scan")."""

from __future__ import annotations

import numpy as np
import pytest
from fused_support import assert_divergence_recorded, assert_runs_close, set_options

import wdlib
from wdlib import scan, vectorized


def _plan(**fields: object) -> vectorized.Plan:
    config = wdlib.make_config(**fields)
    return vectorized.make_plan(wdlib.make_problem(config), config)


@pytest.mark.parametrize("fields", [{}, {"decay_bias": True}, {"n_train": 23}, {"dtype": "float64"},
                                    {"lambd": 0.0}])
def test_dual_step_matrices_are_the_products_scattered(fields: dict) -> None:
    """Without a matrix product: the same matrices as ``D - U_B^T Z_B`` (b's row summed in another
    order: rounding only)."""
    plan = _plan(**{"lambd": 3.0, **fields})
    assert plan.layout == "dual" and plan.strategy == "scan"
    A = plan.step_matrices()
    expected = -plan.step_products()  # the generic construction, in the run's dtype
    d = np.ones((len(plan.bounds()), plan.q))
    d[:, : plan.decayed_rows] = [[plan.decay(t - s)[0, 0]] for s, t in plan.bounds()]
    expected[:, :, np.arange(plan.q), np.arange(plan.q)] += d.astype(A.dtype)
    eps = np.finfo(A.dtype).eps
    np.testing.assert_allclose(A, expected, rtol=0, atol=8 * eps * np.abs(expected).max())
    rows = np.arange(plan.q) != plan.bias_row
    assert np.array_equal(A[:, :, rows], expected[:, :, rows])  # only b's row differs


def _scattered(plan: vectorized.Plan) -> np.ndarray:
    """The step matrices as wdlib made them before ``dual_step_matrices``: ``-(lr/bs) Z_i`` scattered
    into zeros, b's rows by ``np.add.reduceat``, then the decay added on the diagonal."""
    E, n, q = plan.num_epochs, plan.n_train, plan.q
    bounds = plan.bounds()
    nb = len(bounds)
    A = np.zeros((E, nb, q, q), dtype=plan.Z_train.dtype)
    rows = np.negative(plan.Z_train)
    rows *= A.dtype.type(plan.step)
    gathered = rows[plan.batch_order]
    which = np.repeat(np.arange(nb), [t - s for s, t in bounds])
    flat = (np.arange(E)[:, None] * nb + which[None, :]) * q + plan.batch_order
    A.reshape(E * nb * q, q)[flat.ravel()] = gathered.reshape(E * n, q)
    A[:, :, plan.bias_row, :] += np.add.reduceat(gathered, [s for s, _ in bounds], axis=1)
    d = np.ones((nb, q))
    d[:, : plan.decayed_rows] = [[plan.decay(t - s)[0, 0]] for s, t in bounds]
    A[:, :, np.arange(q), np.arange(q)] += d.astype(A.dtype)
    return A


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8, 9, 12])
@pytest.mark.parametrize("fields", [{}, {"decay_bias": True}, {"n_train": 23}, {"dtype": "float64"},
                                    {"lambd": 0.0}, {"zeros": True}])
def test_dual_step_matrices_bit_for_bit(batch_size: int, fields: dict) -> None:
    """``dual_step_matrices`` (tables, one gather and scatter, b's rows summed by slices) gives the
    bits of the scatter into zeros with ``reduceat``, short last batches, minibatches of more than 8
    rows (reduceat's pairwise sum) and signed zeros (zero columns of Z) included."""
    fields = dict(fields)
    zeros = fields.pop("zeros", False)
    plan = _plan(**{"lambd": 3.0, "num_epochs": 6, "batch_size": batch_size, **fields})
    assert plan.layout == "dual"
    if zeros:  # -(lr/bs) * 0 is -0.0: the sums' zeros must come out as 0 + (-0.0) did
        Z = plan.Z_train.copy()
        Z[:, [3, 5]] = 0
        Z[::2, 7] = -0.0
        plan.__dict__["Z_train"] = Z
    expected, A = _scattered(plan), scan.dual_step_matrices(plan)
    assert A.dtype == expected.dtype and A.shape == expected.shape and A.tobytes() == expected.tobytes()


def test_block_size() -> None:
    assert scan.block_size(_plan()) == 10
    assert scan.block_size(_plan(num_epochs=7)) == 3
    assert scan.block_size(_plan(num_epochs=1)) == 1


@pytest.mark.parametrize("options", [{"scan_block": 1}, {"scan_block": 3}, {"scan_block": 7},
                                     {"scan_block": 100}, {"eval_chunk_bytes": 23 * 150 * 8 * 7},
                                     {"eval_chunk_bytes": 1}])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_any_block_and_chunk(backend: str, options: dict, dtype: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks that do not divide the epochs (a zero-padded last block), one epoch a block, one block,
    and several evaluation chunks (each scanned from the state the last one ended in)."""
    set_options(monkeypatch, **options)
    kw = {"lambd": 3.0, "dtype": dtype, "seed": 2}
    assert _plan(**kw).strategy == "scan"
    assert_runs_close(wdlib.train(backend, engine="fused", **kw), wdlib.train(backend, engine="eager", **kw),
                      dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_error_does_not_grow_with_the_epochs(backend: str, dtype: str) -> None:
    """Products reassociated over 500 epochs and a large step (lr 0.02, near the stability limit of
    the chapter's data): still within the tolerances of a 100-epoch run."""
    kw = {"lambd": 3.0, "dtype": dtype, "num_epochs": 500, "lr": 0.02, "seed": 3}
    assert _plan(**kw).strategy == "scan"
    assert_runs_close(wdlib.train(backend, engine="fused", **kw), wdlib.train(backend, engine="eager", **kw),
                      dtype)


def test_divergence_on_the_scan(backend: str) -> None:
    """lr 0.5 diverges: the first non-finite epoch and the history before it as the eager loop's
    (the snapshots after an overflow are non-finite too, as products with it)."""
    assert _plan(lr=0.5, dtype="float64").strategy == "scan"
    assert_divergence_recorded(backend)


def test_float32_divergence_on_the_scan(backend: str) -> None:
    kw = {"lr": 0.5, "dtype": "float32", "on_divergence": "record"}
    eager, fused = (wdlib.train(backend, engine=engine, **kw) for engine in ("eager", "fused"))
    assert eager.diverged and fused.diverged
    assert eager.meta["diverged_at_epoch"] == fused.meta["diverged_at_epoch"]
    before = eager.meta["diverged_at_epoch"] - 1
    np.testing.assert_allclose(fused.test_loss[:before], eager.test_loss[:before], rtol=1e-4)
