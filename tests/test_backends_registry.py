"""Discovery, lazy import, and the errors for missing or broken backends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wdlib
from wdlib_numpy import NumpyBackend


def test_import_wdlib_imports_no_framework() -> None:
    code = (
        "import sys, wdlib; wdlib.backends(); wdlib.make_problem(wdlib.make_config());"
        "print(sorted({'torch', 'jax', 'jaxlib', 'mxnet'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_framework_is_imported_on_first_use(backend: str) -> None:
    code = (
        "import sys, wdlib\n"
        f"before = {backend!r} in sys.modules\n"
        f"wdlib.train({backend!r}, num_epochs=1)\n"
        f"print(before, {backend!r} in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False" if backend != "numpy" else "True", "True"]


def test_expected_backends_are_installed_and_load() -> None:
    """CI names the backends its environment must have (WDLIB_EXPECT_BACKENDS): each must run."""
    expected = [n for n in os.environ.get("WDLIB_EXPECT_BACKENDS", "numpy").split(",") if n]
    for name in expected:
        assert name in wdlib.installed_backends(), f"{name} should be installed in this environment"
        run = wdlib.train(name, num_epochs=1)
        assert np.isfinite(run.test_loss).all()


def test_backends_report() -> None:
    infos = {i.name: i for i in wdlib.backends()}
    assert {"numpy", "torch", "mxnet", "jax"} <= set(infos)
    for info in infos.values():
        assert info.install.startswith("pip install")
        assert info.installed == (info.version is not None)
        assert info.name in str(info)


def test_unknown_backend_suggests_a_name() -> None:
    with pytest.raises(wdlib.UnknownBackendError, match=r"'jaxx'.*did you mean 'jax'") as err:
        wdlib.train("jaxx")
    assert isinstance(err.value, ValueError) and "numpy" in str(err.value)


class MissingBackend(NumpyBackend):
    name = "missing"
    framework = "wdlib-no-such-framework"
    install = "pip install wdlib-no-such-framework"


class BrokenBackend(NumpyBackend):
    name = "broken"

    def load(self) -> None:
        raise ImportError("simulated import failure")


def test_uninstalled_framework_names_the_package_and_command() -> None:
    with wdlib.temporary_backend(MissingBackend):
        with pytest.raises(wdlib.BackendNotInstalledError, match="pip install wdlib-no-such-framework"):
            wdlib.train("missing")
        info = next(i for i in wdlib.backends() if i.name == "missing")
        assert not info.installed and info.version is None


def test_framework_that_fails_to_import_says_so() -> None:
    with wdlib.temporary_backend(BrokenBackend):
        with pytest.raises(wdlib.BackendLoadError, match="simulated import failure"):
            wdlib.train("broken")


def test_registered_backend_runs_without_special_casing() -> None:
    """A third-party backend (here: NumPy under another name) trains like any other."""

    class Mirror(NumpyBackend):
        name = "mirror"

    with wdlib.temporary_backend(Mirror):
        a = wdlib.train("mirror", lambd=3, num_epochs=5)
    b = wdlib.train("numpy", lambd=3, num_epochs=5)
    assert np.array_equal(a.params["w"], b.params["w"])


def test_plugins_are_found_through_entry_points() -> None:
    from importlib.metadata import entry_points

    found = {ep.name for ep in entry_points(group="wdlib.backends")}
    assert set(wdlib.installed_backends()) <= found


def test_each_first_party_backend_runs_or_says_how_to_install() -> None:
    for info in wdlib.backends():
        if info.installed:
            assert wdlib.get_backend(info.name).name == info.name
        else:
            with pytest.raises(wdlib.BackendNotInstalledError, match="pip install"):
                wdlib.train(info.name)


def test_entry_points_are_read_once_until_a_backend_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Discovery reads the installed distributions' metadata once per process (it cost more than a
    fused run of the chapter on every call); registering a backend makes the next lookup read it again."""
    from importlib import metadata

    from wdlib import registry

    reads = []
    real = metadata.entry_points

    def counted(**kw: object) -> object:
        reads.append(kw)
        return real(**kw)

    monkeypatch.setattr(metadata, "entry_points", counted)
    registry._forget_entry_points()
    for _ in range(3):
        assert wdlib.backend_class("numpy") is NumpyBackend
        wdlib.backends()
    assert len(reads) == 1

    class Mirror(NumpyBackend):
        name = "mirror"

    with wdlib.temporary_backend(Mirror):
        assert wdlib.backend_class("numpy") is NumpyBackend
        assert wdlib.backend_class("mirror") is Mirror
    assert len(reads) == 2
    wdlib.backend_class("numpy")
    assert len(reads) == 3  # leaving the block forgot them too
    with pytest.raises(wdlib.UnknownBackendError):
        wdlib.backend_class("mirror")


def test_first_party_install_hints_work_from_any_folder() -> None:
    """The hint names the checkout's plugin folder by absolute path (it used to be relative to the
    checkout's root, so it failed from anywhere else)."""
    from wdlib.registry import KNOWN_PLUGINS

    for name, hint in KNOWN_PLUGINS.items():
        target = hint.split("-e ", 1)[1].split()[0]
        assert Path(target).is_absolute() and (Path(target) / "pyproject.toml").is_file(), hint
        assert Path(target).name == name


def test_a_taken_name_is_replaced_only_when_asked() -> None:
    """compare's reference cannot be replaced by accident; replace=True does it, for the block only."""

    class Impostor(NumpyBackend):
        name = "numpy"

    with pytest.raises(wdlib.ConfigError, match="replace=True"):
        wdlib.register_backend(Impostor)
    assert wdlib.backend_class("numpy") is NumpyBackend
    with wdlib.temporary_backend(Impostor, replace=True):
        assert wdlib.backend_class("numpy") is Impostor
    assert wdlib.backend_class("numpy") is NumpyBackend


def test_a_framework_failing_with_any_error_is_a_load_error() -> None:
    class Crashing(NumpyBackend):
        name = "crashing"

        def load(self) -> None:
            raise RuntimeError("CUDA driver version is insufficient")

    with wdlib.temporary_backend(Crashing):
        with pytest.raises(wdlib.BackendLoadError, match=r"'crashing'.*RuntimeError: CUDA driver") as err:
            wdlib.train("crashing")
    assert "\n" not in str(err.value)


def test_capabilities_are_data_on_the_class_and_checked_before_any_work() -> None:
    """A backend's optional capabilities are read from its class (no framework imported); a run that
    needs one the backend lacks is refused naming the field, before data are drawn."""
    from wdlib.backend import CAPABILITIES, Backend
    from wdlib.validate import check_supported

    for name in ("numpy", "torch", "jax", "mxnet"):
        if name in wdlib.installed_backends():
            expected = set(CAPABILITIES) - ({"compiled"} if name != "jax" else set())  # JAX: lax.scan
            assert wdlib.backend.backend_class(name).capabilities == expected, name

    class Minimal(Backend):  # the abstract methods only: the linear model with SGD
        name, framework, install = "minimal", "numpy", "pip install numpy"
        asarray = NumpyBackend.asarray
        to_numpy = NumpyBackend.to_numpy
        take = NumpyBackend.take
        dot = NumpyBackend.dot
        sign = NumpyBackend.sign
        grad = NumpyBackend.grad

    class WithMLP(Minimal):
        name = "withmlp"
        relu = NumpyBackend.relu

    assert Minimal.capabilities == frozenset() and WithMLP.capabilities == {"mlp"}
    with wdlib.temporary_backend(Minimal), wdlib.temporary_backend(WithMLP):
        run = wdlib.train("minimal", lambd=3, num_epochs=3)
        reference = wdlib.train("numpy", lambd=3, num_epochs=3, engine="eager")
        np.testing.assert_allclose(run.test_loss, reference.test_loss, rtol=1e-6)
        for fields, field in [({"model": "mlp", "hidden": (4,)}, "model"),
                              ({"optimizer": "adam"}, "optimizer"), ({"optimizer": "momentum"}, "optimizer"),
                              ({"engine": "fused"}, "engine"),
                              ({"mode": "concise", "lambd": 0, "wd": 1.0}, "mode")]:
            with pytest.raises(wdlib.ConfigError, match=f"^{field}=") as err:
                wdlib.train("minimal", **{"lambd": 3, **fields})
            assert "minimal" in str(err.value)
            config = wdlib.make_config(backend="minimal", **{"lambd": 3, **fields})
            with pytest.raises(wdlib.ConfigError, match=f"^{field}="):  # from the class, before any work
                check_supported([config])
        assert wdlib.train("withmlp", model="mlp", hidden=(4,), num_epochs=2).train_loss.shape == (2,)
        with pytest.raises(wdlib.ConfigError, match=r"^optimizer=.*zeros_like"):
            wdlib.train("withmlp", optimizer="momentum")
