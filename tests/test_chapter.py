"""The chapter's result, the run record, and determinism."""

from __future__ import annotations

import numpy as np
import pytest

import wdlib


def test_weight_decay_cures_overfitting(backend: str) -> None:
    plain = wdlib.train(backend, lambd=0)
    decayed = wdlib.train(backend, lambd=3)
    assert plain.test_loss[-1] > 100 * plain.train_loss[-1]  # overfits
    assert plain.w_norm > 10
    assert decayed.test_loss[-1] < plain.test_loss[-1] / 10
    assert decayed.w_norm < 1


def test_run_record(backend: str) -> None:
    run = wdlib.train(backend, "gluonbook", lambd=5, seed=1, dtype="float64")
    c = run.config
    assert (c.backend, c.preset, c.lambd, c.seed, c.batch_size, c.num_epochs) == (
        backend, "gluonbook", 5.0, 1, 1, 10
    )
    assert run.train_loss.shape == run.test_loss.shape == (10,)
    assert run.params["w"].shape == (200, 1) and run.params["b"].shape == (1,)
    assert run.params["w"].dtype == np.float64
    assert run.w_norm == np.linalg.norm(run.params["w"])
    assert run.backend_version == next(i.version for i in wdlib.backends() if i.name == backend)
    p = run.problem
    assert p.X_train.shape == (20, 200) and p.y_train.shape == (20, 1)
    assert p.X_test.shape == (100, 200) and p.y_test.shape == (100, 1)
    assert p.w0.shape == (200, 1) and np.all(p.b0 == 0)
    assert p.batch_order.shape == (10, 20)
    assert all(sorted(order) == list(range(20)) for order in p.batch_order)
    # The recorded losses are the book's: mean of (y_hat - y)^2 / 2 over the whole sets.
    w, b = run.params["w"], run.params["b"]
    assert np.isclose(run.test_loss[-1], np.mean((p.X_test @ w + b - p.y_test) ** 2) / 2, rtol=1e-12)
    assert np.isclose(run.train_loss[-1], np.mean((p.X_train @ w + b - p.y_train) ** 2) / 2, rtol=1e-9)


def test_same_seed_same_backend_is_bitwise_identical(backend: str) -> None:
    a = wdlib.train(backend, lambd=3, seed=5)
    b = wdlib.train(backend, lambd=3, seed=5)
    assert a.train_loss.tobytes() == b.train_loss.tobytes()
    assert a.test_loss.tobytes() == b.test_loss.tobytes()
    assert a.params["w"].tobytes() == b.params["w"].tobytes()
    assert a.params["b"].tobytes() == b.params["b"].tobytes()


def test_other_seed_other_run() -> None:
    a, b = wdlib.train(seed=0), wdlib.train(seed=1)
    assert not np.array_equal(a.problem.X_train, b.problem.X_train)
    assert not np.array_equal(a.params["w"], b.params["w"])


def test_presets() -> None:
    d2l, gluon = wdlib.make_config("d2l"), wdlib.make_config("gluonbook")
    assert (d2l.n_train, d2l.n_test, d2l.num_inputs, d2l.batch_size, d2l.num_epochs) == (20, 100, 200, 5, 100)
    assert (d2l.true_w, d2l.true_b, d2l.noise, d2l.lr, d2l.lambd) == (0.01, 0.05, 0.01, 0.003, 0.0)
    assert (gluon.batch_size, gluon.num_epochs, gluon.lr, gluon.noise) == (1, 10, 0.003, 0.01)
    assert wdlib.make_config("gluonbook", num_epochs=100).num_epochs == 100


def test_inputs_depend_only_on_their_own_fields() -> None:
    """Data and initial weights come from separate streams: epochs or test size do not change them."""
    base = wdlib.make_problem(wdlib.make_config(seed=3))
    other = wdlib.make_problem(wdlib.make_config(seed=3, num_epochs=7, n_test=50))
    assert np.array_equal(base.X_train, other.X_train) and np.array_equal(base.w0, other.w0)
    assert np.array_equal(base.batch_order[:7], other.batch_order)
    assert np.array_equal(base.X_test[:50], other.X_test)


def test_data_follows_the_generating_model() -> None:
    config = wdlib.make_config(n_train=20000, num_inputs=3, noise=0.5, batch_size=5, num_epochs=1)
    p = wdlib.make_problem(config)
    residual = p.y_train - (p.X_train @ np.full((3, 1), 0.01) + 0.05)
    assert abs(residual.std() - 0.5) < 0.02 and abs(residual.mean()) < 0.02


def test_float32_data_are_the_float64_draws_rounded() -> None:
    """A float32 run's problem is stored in float32 (a large X is never held in float64 too), and it
    holds the same examples as the float64 run of the seed, rounded."""
    p32 = wdlib.make_problem(wdlib.make_config(seed=4, dtype="float32"))
    p64 = wdlib.make_problem(wdlib.make_config(seed=4, dtype="float64"))
    for name in ("X_train", "y_train", "X_test", "y_test", "w0", "b0"):
        a, b = getattr(p32, name), getattr(p64, name)
        assert a.dtype == np.float32 and b.dtype == np.float64, name
        assert np.array_equal(a, b.astype(np.float32)), name


def test_drawing_in_blocks_of_rows_gives_the_same_data(monkeypatch: pytest.MonkeyPatch) -> None:
    config = wdlib.make_config(seed=5, dtype="float64")
    whole = wdlib.make_problem(config)
    monkeypatch.setattr(wdlib.data, "DRAW_BLOCK_BYTES", 3 * 8 * config.num_inputs)  # 3 rows a block
    blocks = wdlib.make_problem(config)
    assert np.array_equal(whole.X_train, blocks.X_train) and np.array_equal(whole.X_test, blocks.X_test)
    np.testing.assert_allclose(blocks.y_train, whole.y_train, rtol=0, atol=1e-14)  # BLAS blocking
