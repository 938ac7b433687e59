"""What keeps whole public calls cheap changes no result: the public names loaded on first access
(PEP 562), make_problem's one-call batch order and its cache of small synthetic problems, and the
CLI's check of only the requested backend."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import wdlib
from wdlib import data
from wdlib.errors import BackendNotInstalledError, UnknownBackendError
from wdlib.validate import check_backends


def test_import_wdlib_loads_no_submodule_until_a_name_is_used() -> None:
    code = ("import sys, wdlib; before = sorted(m for m in sys.modules if m.startswith('wdlib.'));"
            "wdlib.train; print(before, 'wdlib.training' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"]


def test_every_public_name_is_listed_and_resolves() -> None:
    assert set(wdlib.__all__) <= set(dir(wdlib))
    for name in wdlib.__all__:
        assert getattr(wdlib, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        wdlib.no_such_name  # noqa: B018


def test_names_shared_with_their_submodule_stay_the_functions() -> None:
    """wdlib.plot, compare, sweep and ridge are functions even when their module was imported first
    (the import system binds a submodule on its package)."""
    code = ("import wdlib.plot, wdlib.sweep, wdlib.compare, wdlib.ridge, wdlib, types;"
            "print([isinstance(getattr(wdlib, n), types.FunctionType) for n in "
            "('plot', 'sweep', 'compare', 'ridge')], isinstance(wdlib.optim, types.ModuleType))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[True,", "True,", "True,", "True]", "True"]


@pytest.mark.parametrize(("n", "epochs"), [(20, 100), (7, 3), (1, 4), (33, 1)])
def test_batch_order_is_one_permutation_per_epoch_as_drawn_one_by_one(n: int, epochs: int) -> None:
    config = wdlib.make_config(n_train=n, num_epochs=epochs, batch_size=1, seed=3)
    order_rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(5)[3])
    expected = np.stack([order_rng.permutation(n) for _ in range(epochs)])
    got = wdlib.make_problem(config).batch_order
    assert got.dtype == np.int64 and np.array_equal(got, expected)


def test_remembered_problems_are_copies_with_the_bits_of_a_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    config = wdlib.make_config(seed=11, model="mlp", hidden=(4,))
    first = wdlib.make_problem(config)
    drawn = data._draw_problem(config, None)
    first.X_train[:] = 0  # a caller changing its arrays changes no other call's
    first.init["W1"][:] = 0
    again = wdlib.make_problem(config.replace(lambd=5.0))  # λ is not part of the data
    for name in ("X_train", "y_train", "X_test", "y_test", "batch_order"):
        assert np.array_equal(getattr(again, name), getattr(drawn, name)), name
    assert all(np.array_equal(again.init[k], v) for k, v in drawn.init.items())
    assert again.X_train is not first.X_train
    other = wdlib.make_problem(config.replace(seed=12))
    assert not np.array_equal(other.X_train, again.X_train)
    monkeypatch.setattr(data, "CACHE_MAX_BYTES", 0)  # too large to remember: drawn every time
    a, b = wdlib.make_problem(config.replace(seed=13)), wdlib.make_problem(config.replace(seed=13))
    assert np.array_equal(a.X_train, b.X_train)
    assert not any(k[0] == 13 for k in data._cache)


def test_check_backends_names_installed_ones_and_refuses_others() -> None:
    assert check_backends(["numpy", "numpy"], "--backend") == ["numpy"]
    with pytest.raises(UnknownBackendError, match=r"numpyy.*did you mean 'numpy'"):
        check_backends(["numpy", "numpyy"], "--backend")
    if "mxnet" not in wdlib.installed_backends():
        with pytest.raises(BackendNotInstalledError):
            check_backends(["mxnet"], "--backend")
