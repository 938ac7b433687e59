"""MXNet's one-λ "scan" runs as cached graphs (wdlib_mxnet.scan_graph): the same operators as
wdlib_mxnet.fused.Scan calls one by one, on the same operands, so the same numbers bit for bit, in
every layout of the scan (blocks padded or whole, several evaluation chunks, a short last
minibatch, both dtypes, divergence); and the graph is built once per shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fused_support import set_options

import wdlib
from wdlib import vectorized

pytestmark = pytest.mark.skipif("mxnet" not in wdlib.installed_backends(), reason="mxnet is not installed")

CASES = [
    ({"lambd": 3.0}, {}),  # the chapter: 10 blocks of 10 epochs, one chunk
    ({"lambd": 3.0, "dtype": "float64", "decay_bias": True}, {}),
    ({"lambd": 0.0, "num_epochs": 7}, {}),  # blocks of 3 epochs, the last one padded
    ({"lambd": 3.0, "num_epochs": 30}, {"scan_block": 7}),
    ({"lambd": 3.0, "num_epochs": 30}, {"eval_chunk_bytes": 23 * 150 * 8 * 7}),  # chunks of 7 epochs
    ({"lambd": 3.0, "n_train": 23, "batch_size": 5, "num_epochs": 30, "dtype": "float64"}, {}),
    ({"lambd": 3.0, "num_epochs": 1}, {}),
    ({"preset": "gluonbook", "lambd": 3.0}, {}),  # 20 minibatches per epoch
]


def _graph_module() -> Any:
    from wdlib_mxnet import scan_graph

    return scan_graph


def _train(kw: dict, graphs: bool, monkeypatch: pytest.MonkeyPatch) -> wdlib.Run:
    monkeypatch.setattr(_graph_module(), "ENABLED", graphs)
    return wdlib.train("mxnet", engine="fused", seed=3, **kw)


@pytest.mark.parametrize(("kw", "options"), CASES)
def test_graph_equals_the_operators_one_by_one(kw: dict, options: dict,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    set_options(monkeypatch, **options)
    config = wdlib.make_config(**{"seed": 3, **kw})
    assert vectorized.make_plan(wdlib.make_problem(config), config).strategy == "scan"
    monkeypatch.setattr(_graph_module()._local, "graphs", {}, raising=False)
    graph, plain = _train(kw, True, monkeypatch), _train(kw, False, monkeypatch)
    assert len(_graph_module()._local.graphs) >= 1  # the graph ran
    for name in ("w", "b"):
        assert np.array_equal(graph.params[name], plain.params[name]), name
    assert np.array_equal(graph.test_loss, plain.test_loss)
    assert np.array_equal(graph.train_loss, plain.train_loss)


def test_divergence_is_recorded_in_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    kw = {"lambd": 0.0, "lr": 0.5, "num_epochs": 20, "dtype": "float32", "on_divergence": "record"}
    graph, plain = _train(kw, True, monkeypatch), _train(kw, False, monkeypatch)
    eager = wdlib.train("mxnet", engine="eager", seed=3, **kw)
    assert graph.diverged and eager.diverged
    epochs = {run.meta["diverged_at_epoch"] for run in (graph, plain, eager)}
    assert len(epochs) == 1
    np.testing.assert_array_equal(graph.test_loss, plain.test_loss)
    np.testing.assert_array_equal(graph.params["w"], plain.params["w"])


def test_one_graph_per_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second run of the same shapes reuses the graph (a λ sweep run one λ at a time builds one);
    another number of epochs builds another; past MAX_GRAPHS the oldest goes."""
    scan_graph = _graph_module()
    monkeypatch.setattr(scan_graph._local, "graphs", {}, raising=False)
    first = [wdlib.train("mxnet", engine="fused", lambd=lam) for lam in (0.0, 1.0, 3.0)]
    assert len(scan_graph._local.graphs) == 1
    assert len({float(r.test_loss[-1]) for r in first}) == 3  # three different runs
    monkeypatch.setattr(scan_graph, "MAX_GRAPHS", 1)
    wdlib.train("mxnet", engine="fused", lambd=3.0, num_epochs=9)
    assert [key[3] for key in scan_graph._local.graphs] == [9]  # (q, rows, nb, C, G, dtype)
    again = wdlib.train("mxnet", engine="fused", lambd=3.0)
    assert np.array_equal(again.params["w"], first[2].params["w"])


def test_inputs_are_not_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The packed input is handed to MXNet without a copy: the problem's arrays stay as they were
    and writable."""
    config = wdlib.make_config(backend="mxnet", lambd=3.0, engine="fused")
    problem = wdlib.make_problem(config)
    names = ("X_train", "y_train", "X_test", "y_test", "batch_order")
    before = {name: np.array(getattr(problem, name)) for name in names}
    wdlib.fit("mxnet", problem, config)
    for name, value in before.items():
        assert np.array_equal(getattr(problem, name), value), name
    assert problem.X_train.flags.writeable
