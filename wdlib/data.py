"""The chapter's data: y = X w* + b* + noise, with far more features than training examples."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .config import Config

#: synthetic_data draws at most this many bytes of float64 features at a time.
DRAW_BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class Problem:
    """The exact inputs of a run; a backend casts them to the run's dtype (a no-op for
    :func:`make_problem`'s, which are stored in it: float32 data are the float64 draws rounded, so a
    float32 and a float64 run of one seed see the same examples, and a large X is never held twice).

    ``batch_order[e]`` is the permutation of training indices used in epoch ``e``: its consecutive
    slices of ``batch_size`` are the minibatches (the last may be shorter, as in both books).

    Losses are recorded every ``eval_every`` epochs. With ``eval_orders`` None they are means over the
    whole sets; otherwise they are measured as d2l's ``evaluate_loss`` does, batch by batch over the
    data loaders, the training set in the order ``eval_orders[k]`` of the k-th evaluation.
    """

    X_train: np.ndarray  # (n_train, num_inputs)
    y_train: np.ndarray  # (n_train, 1)
    X_test: np.ndarray  # (n_test, num_inputs)
    y_test: np.ndarray  # (n_test, 1)
    w0: np.ndarray  # (num_inputs, 1), initial weight
    b0: np.ndarray  # (1,), initial bias
    batch_order: np.ndarray  # (num_epochs, n_train), int64
    batch_size: int
    eval_every: int = 1
    eval_orders: np.ndarray | None = None  # (num_evals, n_train), int64

    def batches(self, epoch: int) -> Iterator[np.ndarray]:
        """Index arrays of the minibatches of one epoch."""
        order = self.batch_order[epoch]
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size]


def synthetic_data(
    rng: np.random.Generator, true_w: np.ndarray, true_b: float, n: int, noise: float,
    dtype: str | np.dtype = "float64",
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` examples of y = X true_w + true_b + N(0, noise^2), X ~ N(0, 1), returned in ``dtype``.

    Drawn in float64 in blocks of rows (the same numbers as one draw: the stream is consumed in row
    order), each rounded into the result as it comes, so a large float32 X never exists in float64.
    """
    p = len(true_w)
    X = np.empty((n, p), dtype=dtype)
    y = np.empty((n, 1))
    rows = max(1, DRAW_BLOCK_BYTES // (8 * max(p, 1)))
    for start in range(0, n, rows):
        block = rng.standard_normal((min(rows, n - start), p))
        y[start : start + len(block)] = block @ true_w + true_b
        X[start : start + len(block)] = block
    y += noise * rng.standard_normal(y.shape)
    return X, y.astype(dtype, copy=False)


def make_problem(config: Config) -> Problem:
    """Data, initial parameters and batch order for ``config``, all from ``config.seed``.

    Each part draws from its own child stream, so changing ``n_test`` or ``num_epochs`` leaves the
    training data and the initial weights unchanged, and every lambda of a seed sees the same inputs.
    """
    train_rng, test_rng, init_rng, order_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4)
    )
    true_w = np.full((config.num_inputs, 1), config.true_w)
    dt = config.dtype
    X_train, y_train = synthetic_data(train_rng, true_w, config.true_b, config.n_train, config.noise, dt)
    X_test, y_test = synthetic_data(test_rng, true_w, config.true_b, config.n_test, config.noise, dt)
    order = np.stack([order_rng.permutation(config.n_train) for _ in range(config.num_epochs)])
    return Problem(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        w0=init_rng.standard_normal((config.num_inputs, 1)).astype(dt, copy=False),
        b0=np.zeros(1, dtype=dt),
        batch_order=order.astype(np.int64),
        batch_size=config.batch_size,
    )
