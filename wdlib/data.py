"""The chapter's data: y = X w* + b* + noise, with far more features than training examples."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import check_data, fingerprint, split_sizes
from .config import Config, make_config
from .errors import ConfigError
from .model import make_model

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
    init: dict[str, np.ndarray]  # the model's initial parameters; linear: w (num_inputs, 1), b (1,)
    batch_order: np.ndarray  # (num_epochs, n_train), int64
    batch_size: int
    eval_every: int = 1
    eval_orders: np.ndarray | None = None  # (num_evals, n_train), int64
    #: sha256 of the arrays of a user's or bundled data set ("" for the synthetic data, which the seed
    #: and the Config fields determine); a Config describing this problem carries the same value.
    data_fingerprint: str = ""

    @property
    def w0(self) -> np.ndarray:
        """The linear model's initial weight, (num_inputs, 1)."""
        return self.init["w"]

    @property
    def b0(self) -> np.ndarray:
        """The linear model's initial bias, (1,)."""
        return self.init["b"]

    @property
    def n_train(self) -> int:
        return len(self.X_train)

    @property
    def num_inputs(self) -> int:
        return self.X_train.shape[1]

    @property
    def num_epochs(self) -> int:
        return len(self.batch_order)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.init.items())
        data = f", data {self.data_fingerprint[:12]}" if self.data_fingerprint else ""
        return (f"Problem(train {self.X_train.shape[0]}x{self.X_train.shape[1]}, test "
                f"{self.X_test.shape[0]}, {self.num_epochs} epochs of batch {self.batch_size}, "
                f"params {shapes}, {self.X_train.dtype}{data})")

    @classmethod
    def from_arrays(
        cls, X: Any, y: Any, X_test: Any = None, y_test: Any = None, **fields: Any
    ) -> Problem:
        """The problem of your own arrays: ``X`` (n, p) and ``y`` (n,) or (n, 1), with a test set or, without
        one, a seeded split (``test_fraction``); ``fields`` are Config fields (seed, batch_size,
        num_epochs, model, hidden, dtype, ...). Validated once, here; the arrays are copied, not changed."""
        test = None if X_test is None and y_test is None else (X_test, y_test)
        config, arrays = data_config((X, y), test, **fields)
        return make_problem(config, arrays)

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


#: The Config fields that :func:`make_problem` reads for synthetic data (the key of its cache).
_PROBLEM_FIELDS = ("seed", "num_inputs", "true_w", "true_b", "n_train", "n_test", "noise", "dtype",
                   "num_epochs", "model", "hidden", "batch_size", "model_fingerprint")
#: Synthetic problems of at most this many bytes are remembered (the last few), so repeated calls
#: with the same data fields (a loop over λ, a benchmark) skip the draws; each call gets copies.
CACHE_MAX_BYTES = 4 * 2**20
CACHE_ENTRIES = 8
_cache: OrderedDict[tuple[Any, ...], Problem] = OrderedDict()
_cache_lock = threading.Lock()


def make_problem(config: Config, arrays: tuple[np.ndarray, ...] | None = None) -> Problem:
    """Data, initial parameters and batch order for ``config``, all from ``config.seed``.

    Each part draws from its own child stream, so changing ``n_test`` or ``num_epochs`` leaves the
    training data and the initial weights unchanged, and every lambda of a seed sees the same inputs.
    ``arrays`` are the data of ``dataset="arrays"`` (as :func:`data_config` returns them: a training
    and a test set, or one set to split with child stream 4); the bundled data sets load their own.

    Small synthetic problems are drawn once and remembered (:data:`CACHE_ENTRIES` of at most
    :data:`CACHE_MAX_BYTES`); every call returns its own copies of the arrays, the same bits as a draw.
    """
    from .limits import check_run

    check_run(config)  # refused before anything is allocated, also when called directly
    if config.dataset != "synthetic" or arrays is not None:
        return _draw_problem(config, arrays)
    key = (*(getattr(config, name) for name in _PROBLEM_FIELDS), DRAW_BLOCK_BYTES)  # y's rounding
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
    if cached is None:
        cached = _draw_problem(config, None)
        if _problem_bytes(cached) > CACHE_MAX_BYTES:
            return cached
        with _cache_lock:
            _cache[key] = cached
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
    return _copy(cached)


def _problem_bytes(problem: Problem) -> int:
    arrays = (problem.X_train, problem.y_train, problem.X_test, problem.y_test, problem.batch_order)
    return sum(a.nbytes for a in arrays) + sum(v.nbytes for v in problem.init.values())


def _copy(problem: Problem) -> Problem:
    """The problem with its own copies of every array (the cached one is never handed out)."""
    return Problem(
        X_train=problem.X_train.copy(), y_train=problem.y_train.copy(), X_test=problem.X_test.copy(),
        y_test=problem.y_test.copy(), init={k: v.copy() for k, v in problem.init.items()},
        batch_order=problem.batch_order.copy(), batch_size=problem.batch_size,
        data_fingerprint=problem.data_fingerprint,
    )


def _draw_problem(config: Config, arrays: tuple[np.ndarray, ...] | None) -> Problem:
    """:func:`make_problem` without its cache: every array drawn (or read) anew."""
    train_rng, test_rng, init_rng, order_rng, split_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(5)
    )
    dt = config.dtype
    if config.dataset == "synthetic":
        true_w = np.full((config.num_inputs, 1), config.true_w)
        X_train, y_train = synthetic_data(train_rng, true_w, config.true_b, config.n_train, config.noise, dt)
        X_test, y_test = synthetic_data(test_rng, true_w, config.true_b, config.n_test, config.noise, dt)
    else:
        X_train, y_train, X_test, y_test = (a.astype(dt) for a in _real_data(config, arrays, split_rng))
    # one call shuffling each row in turn: the same draws, row by row, as a permutation per epoch
    order = order_rng.permuted(np.tile(np.arange(config.n_train, dtype=np.int64), (config.num_epochs, 1)),
                               axis=1)
    init = make_model(config.model, config.hidden).init(init_rng, config.num_inputs)
    return Problem(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        init={k: v.astype(dt, copy=False) for k, v in init.items()},
        batch_order=order,
        batch_size=config.batch_size,
        data_fingerprint=config.data_fingerprint,
    )


def _real_data(config: Config, arrays: tuple[np.ndarray, ...] | None,
               rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(X_train, y_train, X_test, y_test) of a non-synthetic dataset, checked against ``config``."""
    if config.dataset == "diabetes":
        from .datasets import dataset_arrays

        return dataset_arrays("diabetes", seed=config.seed, test_fraction=config.test_fraction)[:4]
    if arrays is None:
        raise ConfigError("data", None, "the arrays of dataset='arrays'",
                          "pass them as wdlib.train(..., data=(X, y)) or Problem.from_arrays(X, y)")
    if fingerprint(*arrays) != config.data_fingerprint:
        raise ConfigError("data", "arrays with another fingerprint",
                          f"the arrays of data_fingerprint={config.data_fingerprint[:12]}...")
    if len(arrays) == 4:
        return arrays
    return split(*arrays, config.test_fraction, rng)


def split(X: np.ndarray, y: np.ndarray, test_fraction: float,
          rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A seeded random split into (X_train, y_train, X_test, y_test), of the sizes :func:`split_sizes`
    gives (the Config derives n_train and n_test with it before any data are read)."""
    n_train, _ = split_sizes(len(X), test_fraction)
    order = rng.permutation(len(X))
    train, test = np.sort(order[:n_train]), np.sort(order[n_train:])
    return X[train], y[train], X[test], y[test]


def data_config(
    data: Any, test: Any = None, preset: str = "d2l", **fields: Any
) -> tuple[Config, tuple[np.ndarray, ...]]:
    """The Config of training on ``data=(X, y)`` (and ``test=(X_test, y_test)`` or a seeded split), with
    n_train, n_test and num_inputs derived from the arrays (a value given that disagrees is refused),
    and the arrays validated once: ``(config, arrays)`` for :func:`make_problem`."""
    X, y = check_data(data, name="data")
    arrays: tuple[np.ndarray, ...]
    if test is None:
        from .config import FIELD_CHECKS

        fraction = fields.get("test_fraction", Config.test_fraction)
        fraction = FIELD_CHECKS["test_fraction"]("test_fraction", fraction)  # checked before it is used
        n_train, n_test = split_sizes(len(X), fraction)
        arrays = (X, y)
    else:
        if "test_fraction" in fields:
            raise ConfigError("test_fraction", fields["test_fraction"], "not set when test=... is given")
        X_test, y_test = check_data(test, name="test")
        if X_test.shape[1] != X.shape[1]:
            raise ConfigError("test[0] (X_test)", f"{X_test.shape[1]} features",
                              f"{X.shape[1]} features, as data[0] (X) has")
        n_train, n_test = len(X), len(X_test)
        arrays = (X, y, X_test, y_test)
    for name in ("dataset", "data_fingerprint"):
        if name in fields:
            raise ConfigError(name, fields[name], "not set with data=... (wdlib sets it)")
    derived = {"n_train": n_train, "n_test": n_test, "num_inputs": X.shape[1]}
    for name, value in derived.items():
        if name in fields and fields[name] != value:
            raise ConfigError(name, fields[name], f"{value}, as the data have (or leave it out)")
    config = make_config(preset, **{**fields, **derived, "dataset": "arrays",
                                    "data_fingerprint": fingerprint(*arrays)})
    return config, arrays
