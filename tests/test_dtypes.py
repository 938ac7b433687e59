"""float32 and float64 on every backend, with no global side effect left behind."""

from __future__ import annotations

import numpy as np

import wdlib


def test_dtype_is_respected(backend: str) -> None:
    for dtype in ("float32", "float64"):
        run = wdlib.train(backend, dtype=dtype, num_epochs=2)
        assert run.params["w"].dtype == np.dtype(dtype)
        assert run.params["b"].dtype == np.dtype(dtype)


def test_float64_changes_the_numbers(backend: str) -> None:
    a = wdlib.train(backend, lambd=3, num_epochs=5, dtype="float32")
    b = wdlib.train(backend, lambd=3, num_epochs=5, dtype="float64")
    assert not np.array_equal(a.params["w"].astype(np.float64), b.params["w"])
    np.testing.assert_allclose(a.params["w"], b.params["w"], rtol=1e-4, atol=1e-5)


def test_jax_float64_does_not_leak() -> None:
    if "jax" not in wdlib.installed_backends():
        with __import__("pytest").raises(wdlib.BackendNotInstalledError):
            wdlib.train("jax", dtype="float64")
        return
    wdlib.train("jax", dtype="float64", num_epochs=1)
    import jax
    import jax.numpy as jnp

    assert not jax.config.jax_enable_x64
    assert jnp.zeros(1).dtype == jnp.float32
    assert wdlib.train("jax", num_epochs=1).params["w"].dtype == np.float32
