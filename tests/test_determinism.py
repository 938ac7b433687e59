"""Same config and seed, same backend and machine: bitwise the same run, in this process and another."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import wdlib


def fingerprint(run: wdlib.Run) -> str:
    parts = [run.train_loss, run.test_loss, run.params["w"], run.params["b"]]
    return "".join(np.ascontiguousarray(p).tobytes().hex() for p in parts)


def engines(backend: str) -> list[str]:
    fused = wdlib.get_backend(backend).supports_fused(wdlib.make_config(backend=backend))
    return ["eager", "fused"] if fused else ["eager"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bitwise_across_runs_and_processes(backend: str, dtype: str) -> None:
    for engine in engines(backend):
        kw = {"lambd": 3, "seed": 11, "dtype": dtype, "engine": engine, "num_epochs": 30}
        first = wdlib.train(backend, **kw)
        assert first.engine == engine
        assert fingerprint(first) == fingerprint(wdlib.train(backend, **kw))
        code = (
            "import numpy as np, wdlib\n"
            f"run = wdlib.train({backend!r}, **{kw!r})\n"
            "print(''.join(np.ascontiguousarray(p).tobytes().hex() for p in "
            "[run.train_loss, run.test_loss, run.params['w'], run.params['b']]))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip().splitlines()[-1] == fingerprint(first), engine


def test_fused_and_eager_both_available_where_offered(backend: str) -> None:
    """engine="eager" always runs the step-by-step loop; "fused" is the fast path or a clear error."""
    eager = wdlib.train(backend, num_epochs=2, engine="eager")
    assert eager.engine == "eager"
    if "fused" in engines(backend):
        assert wdlib.train(backend, num_epochs=2, engine="fused").engine == "fused"
    else:
        with pytest.raises(wdlib.ConfigError, match="engine"):
            wdlib.train(backend, num_epochs=2, engine="fused")
