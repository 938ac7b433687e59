"""The eager loop and its optional backend hooks (``index``, ``make_grad``): the same numbers as the plain
methods they speed up."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import wdlib
from wdlib.model import PENALTIES, Objective, sgd_step
from wdlib_numpy import NumpyBackend


def fingerprint(run: wdlib.Run) -> list[bytes]:
    return [np.ascontiguousarray(a).tobytes() for a in (run.train_loss, run.test_loss, *run.params.values())]


class Minimal(wdlib.Backend):
    """NumPy with only the required methods: every optional hook at its default."""

    name = "minimal"
    framework = "numpy"
    install = "pip install numpy"

    def asarray(self, x: np.ndarray, dtype: str) -> np.ndarray:
        return np.array(x, dtype=dtype)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def take(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return x[idx]

    def dot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a @ b

    def sign(self, a: np.ndarray) -> np.ndarray:
        return np.sign(a)

    def grad(self, objective: Objective, params: dict, X: np.ndarray, y: np.ndarray) -> dict:
        return objective.gradient(self, params, X, y)


@pytest.mark.parametrize("preset", ["d2l", "gluonbook"])
def test_a_backend_with_only_the_required_methods_trains_as_numpy(preset: str) -> None:
    kw = {"lambd": 3.0, "engine": "eager", "num_epochs": 6, "n_train": 7}
    with wdlib.temporary_backend(Minimal):
        minimal = wdlib.train("minimal", preset, **kw)
    assert fingerprint(minimal) == fingerprint(wdlib.train("numpy", preset, **kw))


class Recording(NumpyBackend):
    """NumPy that records the rows of every ``take``."""

    name = "recording"

    def __init__(self) -> None:
        self.taken: list[np.ndarray] = []

    def take(self, x: np.ndarray, idx: Any) -> np.ndarray:
        self.taken.append(np.array(idx))
        return super().take(x, idx)


def test_the_minibatches_are_the_problems() -> None:
    """Every minibatch of Problem.batches, in order, the short last one included (X's rows, then y's)."""
    config = wdlib.make_config(n_train=7, batch_size=3, num_epochs=4, engine="eager")
    problem = wdlib.make_problem(config)
    with wdlib.temporary_backend(Recording):
        impl = wdlib.get_backend("recording")
        wdlib.fit(impl, problem, config.replace(backend="recording"))
    expected = [idx for epoch in range(config.num_epochs) for idx in problem.batches(epoch)]
    assert [len(i) for i in expected] == [3, 3, 1] * config.num_epochs
    assert len(impl.taken) == 2 * len(expected)
    for got, want in zip(impl.taken[::2], expected, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(impl.taken[1::2], expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_take_of_a_slice_of_the_index_is_those_rows(backend: str) -> None:
    impl = wdlib.get_backend(backend)
    x = np.arange(42.0).reshape(7, 6)
    order = np.array([[3, 0, 6, 1, 5, 2, 4], [6, 5, 4, 3, 2, 1, 0]], dtype=np.int64)
    X, index = impl.asarray(x, "float32"), impl.index(order)
    for epoch in range(len(order)):
        for start in range(0, 7, 3):
            got = impl.to_numpy(impl.take(X, index[epoch][start : start + 3]))
            np.testing.assert_array_equal(got, x[order[epoch][start : start + 3]])


@pytest.mark.parametrize("penalty", ["l1", "l2"])
@pytest.mark.parametrize("decay_bias", [False, True])
def test_make_grad_steps_as_grad(backend: str, penalty: str, decay_bias: bool) -> None:
    """SGD steps with ``make_grad``'s function (which may reuse its buffers) are bitwise those with
    ``grad``, each step starting from the last one's parameters as in the eager loop."""
    impl = wdlib.get_backend(backend)
    rng = np.random.default_rng(5)
    batches = [(rng.standard_normal((5, 200)), rng.standard_normal((5, 1))) for _ in range(4)]
    start = {"w": rng.standard_normal((200, 1)), "b": rng.standard_normal(1)}
    objective = Objective(lambd=2.5, penalty=PENALTIES[penalty], decay_bias=decay_bias)
    with impl.context("float64"):
        as_array = lambda a: impl.asarray(a, "float64")  # noqa: E731
        batches = [(as_array(X), as_array(y)) for X, y in batches]
        grad = impl.make_grad(objective)
        ours = {k: as_array(v) for k, v in start.items()}
        theirs = {k: as_array(v) for k, v in start.items()}
        for X, y in batches:
            ours = sgd_step(ours, grad(ours, X, y), 0.03, 5)
            theirs = sgd_step(theirs, impl.grad(objective, theirs, X, y), 0.03, 5)
        for name in start:
            np.testing.assert_array_equal(impl.to_numpy(ours[name]), impl.to_numpy(theirs[name]), name)


def test_numpy_runs_quietly_through_overflow() -> None:
    """A diverging run overflows to inf and NaN; the NumPy backend's run context says nothing (the core
    reports the divergence)."""
    big = np.full((3, 1), 3e38, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with wdlib.get_backend("numpy").context("float32"):
            inf = big * 10
            nan = inf - inf
    assert np.isinf(inf).all() and np.isnan(nan).all()


def test_torch_small_runs_use_one_intraop_thread_and_restore_the_users() -> None:
    """The eager loop of a small model runs torch's operators on one thread (two threads' hand-offs
    cost more than they gain); the session's setting is restored after; a large step keeps it."""
    if "torch" not in wdlib.installed_backends():
        pytest.skip("torch is not installed")
    import torch

    impl = wdlib.get_backend("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        with impl.run_context(wdlib.make_config(backend="torch", model="mlp", hidden=(32,))):
            seen.append(torch.get_num_threads())
        assert seen == [1] and torch.get_num_threads() == 2
        big = wdlib.make_config(backend="torch", model="mlp", hidden=(2048,), batch_size=20, n_train=20)
        with impl.run_context(big):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
