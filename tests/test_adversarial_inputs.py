"""Bad input through the API, table-driven: each case is one call that must raise exactly one error
class, before any work; cases that name a store also check that nothing stored changed. The CLI's
table is tests/test_adversarial_cli.py."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from adversarial_helpers import (
    LIMIT,
    FailingExecutor,
    FakeEntryPoint,
    NoFastPathUnloadable,
    contents,
    loads_with,
    make_store,
    named,
    plans_with,
    poisoned,
    problem_with,
    shut_down,
)

import wdlib
from wdlib import registry
from wdlib.errors import BackendResultError, ExecutorFailedError, ResourceError
from wdlib.sweep import ExecutorError, RunFailedError

C, R, L, E = wdlib.ConfigError, ResourceError, wdlib.BackendLoadError, BackendResultError
X, Y = np.ones((6, 3)), np.arange(6.0)
NAN_X = np.where(np.eye(6, 3) > 0, np.nan, 1.0)


def _sweep(t: Any, lambdas: Any = (0.0, 1.0), **kw: Any) -> Any:
    return wdlib.sweep(lambdas, **{"backends": ["numpy"], "num_epochs": 3, "store": t.store, **kw})


def _with(cls: type, call: Any) -> Any:
    with wdlib.temporary_backend(cls):
        return call()


def _plugin(t: Any, value: Any) -> Any:
    t.mp.setattr(registry, "_entry_points", lambda: {"fake-plugin": FakeEntryPoint(value)})
    registry._plugin_classes.clear()
    return wdlib.backend_class("fake-plugin")


def _wrong(change: Any, call: str = "train") -> Any:
    run = {"train": lambda: wdlib.train("wrong-plan", num_epochs=3, engine="fused"),
           "lambdas": lambda: wdlib.train_lambdas("wrong-plan", [0.0, 1.0], num_epochs=3)}[call]
    return _with(plans_with(change), run)


def _fit(**changes: Any) -> Any:
    return wdlib.fit("numpy", problem_with(**changes))


def _load(error: Exception) -> Any:
    return _with(loads_with(error), lambda: wdlib.train(f"load-{type(error).__name__.lower()}"))


def _w(result: Any, w: Any) -> Any:
    return result[0], result[1], {**result[2], "w": w}


CASES: list[tuple[str, Any, type[BaseException]]] = [
    # --- Config objects built directly, or copied with dataclasses.replace --------------------
    ("cfg-lr-negative", lambda t: wdlib.Config(lr=-1.0), C),
    ("cfg-lr-zero", lambda t: wdlib.Config(lr=0), C),
    ("cfg-lr-nan", lambda t: wdlib.Config(lr=float("nan")), C),
    ("cfg-lr-str", lambda t: wdlib.Config(lr="0.1"), C),
    ("cfg-dtype-float16", lambda t: wdlib.Config(dtype="float16"), C),
    ("cfg-n-train-zero", lambda t: wdlib.Config(n_train=0), C),
    ("cfg-n-test-float", lambda t: wdlib.Config(n_test=10.0), C),
    ("cfg-batch-above-n", lambda t: wdlib.Config(batch_size=50), C),
    ("cfg-seed-negative", lambda t: wdlib.Config(seed=-1), C),
    ("cfg-seed-2**31", lambda t: wdlib.Config(seed=2**31), C),
    ("cfg-epochs-bool", lambda t: wdlib.Config(num_epochs=True), C),
    ("cfg-lambd-inf", lambda t: wdlib.Config(lambd=float("inf")), C),
    ("cfg-lambd-negative", lambda t: wdlib.Config(lambd=-3.0), C),
    ("cfg-penalty-l3", lambda t: wdlib.Config(penalty="l3"), C),
    ("cfg-model-cnn", lambda t: wdlib.Config(model="cnn"), C),
    ("cfg-hidden-zero", lambda t: wdlib.Config(model="mlp", hidden=(0,)), C),
    ("cfg-hidden-linear", lambda t: wdlib.Config(hidden=(8,)), C),
    ("cfg-noise-1e308", lambda t: wdlib.Config(noise=1e308), C),
    ("cfg-noise-1e20-f32", lambda t: wdlib.Config(noise=1e20), C),
    ("cfg-true-b-1e200-f64", lambda t: wdlib.Config(true_b=1e200, dtype="float64"), C),
    ("cfg-true-w-nan", lambda t: wdlib.Config(true_w=float("nan")), C),
    ("cfg-fused-l1", lambda t: wdlib.Config(engine="fused", penalty="l1"), C),
    ("cfg-fused-mlp", lambda t: wdlib.Config(engine="fused", model="mlp"), C),
    ("cfg-fused-adam", lambda t: wdlib.Config(engine="fused", optimizer="adam"), C),
    ("cfg-concise-lambd", lambda t: wdlib.Config(mode="concise", lambd=1.0), C),
    ("cfg-native-f64", lambda t: wdlib.Config(rng="native", dtype="float64"), C),
    ("cfg-l1-ratio-l2", lambda t: wdlib.Config(l1_ratio=0.3), C),
    ("cfg-decay-unknown", lambda t: wdlib.Config(decay="sideways", wd=1.0), C),
    ("cfg-opt-args", lambda t: wdlib.Config(optimizer="momentum", optimizer_args=(("beta", 2.0),)), C),
    ("cfg-arrays-no-data", lambda t: wdlib.Config(dataset="arrays"), C),
    ("cfg-fingerprint-synth", lambda t: wdlib.Config(data_fingerprint="abc"), C),
    ("cfg-test-fraction-1", lambda t: wdlib.Config(test_fraction=1.0), C),
    ("cfg-backend-empty", lambda t: wdlib.Config(backend=""), C),
    ("cfg-preset-typo", lambda t: wdlib.Config(preset="d2l2"), C),
    ("cfg-on-divergence", lambda t: wdlib.Config(on_divergence="ignore"), C),
    ("cfg-penalize-unknown", lambda t: wdlib.Config(penalize=("W9",)), C),
    ("cfg-dc-replace-lr", lambda t: dataclasses.replace(wdlib.make_config(), lr=-1.0), C),
    ("cfg-replace-dtype", lambda t: wdlib.make_config().replace(dtype="float16"), C),
    # --- train and its keywords ----------------------------------------------------------------
    ("train-lambds", lambda t: wdlib.train(lambds=[1.0]), C),
    ("train-num-inputs-1e9", lambda t: wdlib.train(num_inputs=10**9), R),
    ("train-num-epochs-1e9", lambda t: wdlib.train(num_epochs=10**9), R),
    ("train-n-train-1e9", lambda t: wdlib.train(n_train=10**9), R),
    ("train-n-test-1e9", lambda t: wdlib.train(n_test=10**9), R),
    ("train-hidden-huge", lambda t: wdlib.train(model="mlp", hidden=(10**6, 10**6)), R),
    ("train-noise-1e308", lambda t: wdlib.train(noise=1e308, dtype="float64"), C),
    ("train-fused-l1-torch", lambda t: wdlib.train("torch", engine="fused", penalty="l1"), C),
    ("train-lambdas-wide", lambda t: wdlib.train_lambdas(lambdas=np.linspace(0, 1, 1000), num_inputs=10**5),
     R),
    ("compare-kept-runs", lambda t: wdlib.compare(["numpy"], [0, 1], seeds=range(3), num_inputs=10**6), R),
    ("train-lambd-1e308", lambda t: wdlib.train(lambd=1e308), wdlib.DivergenceError),
    ("train-lr-1e308", lambda t: wdlib.train(lr=1e308), wdlib.DivergenceError),
    ("lambdas-str", lambda t: wdlib.train_lambdas(lambdas="abc"), C),
    ("lambdas-none", lambda t: wdlib.train_lambdas(lambdas=None), C),
    ("sequence-dicts", lambda t: wdlib.train_sequence([{"lr": 1.0}]), C),
    ("sequence-str", lambda t: wdlib.train_sequence("numpy"), C),
    ("get-backend-int", lambda t: wdlib.get_backend(3), C),
    ("get-backend-list", lambda t: wdlib.get_backend(["numpy"]), C),
    ("backend-class-none", lambda t: wdlib.backend_class(None), C),
    ("fused-before-load", lambda t: _with(NoFastPathUnloadable,
                                          lambda: wdlib.train("no-fast-path", engine="fused")), C),
    # --- user data -----------------------------------------------------------------------------
    ("data-nan-x", lambda t: wdlib.train(data=(NAN_X, Y)), C),
    ("data-inf-y", lambda t: wdlib.train(data=(X, np.r_[Y[:-1], np.inf])), C),
    ("data-huge-y", lambda t: wdlib.train(data=(X, Y * 1e200)), C),
    ("data-1d-x", lambda t: wdlib.train(data=(Y, Y)), C),
    ("data-str", lambda t: wdlib.train(data="file.csv"), C),
    ("data-n-train", lambda t: wdlib.train(data=(X, Y), n_train=5), C),
    ("data-ragged", lambda t: wdlib.train(data=([[1, 2], [3]], [1, 2])), C),
    # --- fit with objects built by hand ---------------------------------------------------------
    ("fit-nan-x", lambda t: _fit(X_train=poisoned("X_train", np.nan)), C),
    ("fit-inf-y-test", lambda t: _fit(y_test=poisoned("y_test", np.inf)), C),
    ("fit-y-shape", lambda t: _fit(y_train=lambda p: p.y_train.ravel()), C),
    ("fit-x-test-cols", lambda t: _fit(X_test=lambda p: p.X_test[:, :5]), C),
    ("fit-int-x", lambda t: _fit(X_train=lambda p: p.X_train.astype(int)), C),
    ("fit-order-range", lambda t: _fit(batch_order=lambda p: p.batch_order + 1), C),
    ("fit-order-float", lambda t: _fit(batch_order=lambda p: p.batch_order * 1.0), C),
    ("fit-init-inf", lambda t: _fit(init=lambda p: {**p.init, "b": np.full(1, np.inf)}), C),
    ("fit-not-problem", lambda t: wdlib.fit("numpy", "problem"), C),
    ("fit-not-backend", lambda t: wdlib.fit(object(), problem_with()), C),
    ("fit-config-disagrees", lambda t: wdlib.fit("numpy", problem_with(), wdlib.make_config(num_epochs=4)),
     C),
    ("fit-config-bad-lr", lambda t: wdlib.fit("numpy", problem_with(), lr=-1.0), C),
    # --- the registry ------------------------------------------------------------------------------
    ("register-numpy", lambda t: wdlib.register_backend(named("numpy")), C),
    ("register-torch", lambda t: wdlib.register_backend(named("torch")), C),
    ("register-jax", lambda t: wdlib.register_backend(named("jax")), C),
    ("register-temporary-numpy", lambda t: _with(named("numpy"), lambda: None), C),
    ("register-not-class", lambda t: wdlib.register_backend("numpy"), C),
    ("register-not-backend", lambda t: wdlib.register_backend(dict), C),
    ("register-empty-name", lambda t: wdlib.register_backend(named("")), C),
    ("register-replace-str", lambda t: wdlib.register_backend(named("x-new"), replace="yes"), C),
    ("load-runtime", lambda t: _load(RuntimeError("CUDA init")), L),
    ("load-oserror", lambda t: _load(OSError("libfoo.so")), L),
    ("load-attribute", lambda t: _load(AttributeError("np.int")), L),
    ("load-import", lambda t: _load(ImportError("no _C")), L),
    ("plugin-raises", lambda t: _plugin(t, RuntimeError("plugin module broken")), L),
    ("plugin-syntax", lambda t: _plugin(t, SyntaxError("bad plugin")), L),
    ("plugin-not-backend", lambda t: _plugin(t, object), L),
    # --- fast-path results of a third-party backend ------------------------------------------------
    ("plan-w-shape", lambda t: _wrong(lambda r: _w(r, r[2]["w"][:, :5])), E),
    ("plan-w-list", lambda t: _wrong(lambda r: _w(r, r[2]["w"].tolist())), E),
    ("plan-int-loss", lambda t: _wrong(lambda r: (r[0].astype(int), r[1], r[2])), E),
    ("plan-two-items", lambda t: _wrong(lambda r: r[:2]), E),
    ("plan-params-names", lambda t: _wrong(lambda r: (r[0], r[1], {"w": r[2]["w"]})), E),
    ("plan-k-lambdas", lambda t: _wrong(lambda r: (r[0][:1], r[1][:1], r[2]), "lambdas"), E),
]

STORE_CASES: list[tuple[str, Any, type[BaseException]]] = [
    ("sweep-lambd", lambda t: _sweep(t, lambd=1.0), C),
    ("sweep-seed", lambda t: _sweep(t, seed=1), C),
    ("sweep-native-numpy", lambda t: _sweep(t, [5.0], rng="native"), C),
    ("sweep-fused-l1", lambda t: _sweep(t, [5.0], engine="fused", penalty="l1"), C),
    ("sweep-grid-huge", lambda t: _sweep(t, np.linspace(0, 1, 1000), seeds=range(100_000)), R),
    ("sweep-run-huge", lambda t: _sweep(t, [5.0], num_inputs=10**9), R),
    ("sweep-shut-down", lambda t: _sweep(t, [5.0], executor=shut_down()), ExecutorFailedError),
    ("sweep-broken-pool", lambda t: _sweep(t, [5.0], executor=FailingExecutor(BrokenProcessPool("gone"))),
     ExecutorFailedError),
    ("sweep-worker-oom", lambda t: _sweep(t, [5.0], executor=FailingExecutor(MemoryError())), R),
    ("sweep-no-vectorize", lambda t: _sweep(t, vectorize=False), C),
    ("sweep-workers-0", lambda t: _sweep(t, workers=0), C),
    ("sweep-vectorize-str", lambda t: _sweep(t, vectorize="no"), C),
    ("sweep-executor-str", lambda t: _sweep(t, executor="pool"), ExecutorError),
    ("sweep-on-divergence", lambda t: _sweep(t, on_divergence="raise"), C),
    ("sweep-no-lambdas", lambda t: _sweep(t, []), C),
    ("sweep-negative-lambd", lambda t: _sweep(t, [-1.0]), C),
    ("sweep-seed-too-big", lambda t: _sweep(t, seeds=[2**31]), C),
    ("sweep-lr-nan", lambda t: _sweep(t, lr=float("nan")), C),
    ("sweep-store-int", lambda t: wdlib.sweep([1.0], backends=["numpy"], store=3), C),
    ("sweep-fused-before-load", lambda t: _with(NoFastPathUnloadable, lambda: _sweep(
        t, [5.0], backends=["no-fast-path"], engine="fused")), C),
    ("sweep-wrong-plan", lambda t: _with(plans_with(lambda r: r[:2]), lambda: _sweep(
        t, [5.0, 6.0], backends=["wrong-plan"], executor=cf.ThreadPoolExecutor(1))), RunFailedError),
    ("compare-backend", lambda t: wdlib.compare(backend="numpy"), C),
    ("compare-negative", lambda t: wdlib.compare(["numpy"], lambd=-1), C),
    ("compare-native", lambda t: wdlib.compare(["numpy"], rng="native"), C),
    ("compare-no-seeds", lambda t: wdlib.compare(["numpy"], seeds=[]), C),
]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("adversarial") / "runs.sqlite")


@pytest.fixture
def t(stored: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("WDLIB_MEMORY_LIMIT", LIMIT)
    return type("Context", (), {"store": stored, "mp": monkeypatch})()


def test_the_tables_are_large_and_named_once() -> None:
    names = [name for name, _, _ in CASES + STORE_CASES]
    assert len(names) >= 90 and len(set(names)) == len(names)


@pytest.mark.parametrize(("name", "call", "error"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_exactly_its_error(name: str, call: Any, error: type, t: Any) -> None:
    with pytest.raises(error) as caught:
        call(t)
    assert isinstance(caught.value, wdlib.WdlibError), name
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("name", "call", "error"), STORE_CASES, ids=[c[0] for c in STORE_CASES])
def test_bad_input_changes_nothing_stored(name: str, call: Any, error: type, t: Any) -> None:
    before = contents(t.store)
    with pytest.raises(error) as caught:
        call(t)
    assert isinstance(caught.value, wdlib.WdlibError), name
    assert contents(t.store) == before
