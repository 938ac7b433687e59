"""``import wdlib`` and the ``wdlib train`` process, timed in fresh interpreters (benchmarks/run.py)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any


def import_time(repeats: int) -> dict[str, Any]:
    """``import wdlib`` in fresh interpreters (interpreter start-up excluded), with bytecode caches
    as an installed package has them (written once to a temporary PYTHONPYCACHEPREFIX first), and
    without (PYTHONDONTWRITEBYTECODE, as in some CI and sandbox environments: every module compiled)."""
    code = ("import time, sys; t = time.perf_counter(); import wdlib; t = time.perf_counter() - t; "
            "print(t, sorted({'torch', 'jax', 'jaxlib', 'mxnet'} & set(sys.modules)))")
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="wdlib-pycache-")
    uncached = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    uncached.pop("PYTHONPYCACHEPREFIX", None)
    subprocess.run([sys.executable, "-c", "import wdlib"], env=cached, check=True)  # write the caches
    ts: dict[str, list[float]] = {"cached": [], "uncached": []}
    frameworks: set[str] = set()
    for _ in range(repeats):
        for name, env in (("cached", cached), ("uncached", uncached)):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 env=env)
            t, mods = out.stdout.split(maxsplit=1)
            ts[name].append(float(t))
            frameworks |= set(eval(mods))
    return {"median": statistics.median(ts["cached"]), "min": min(ts["cached"]),
            "median_without_bytecode_cache": statistics.median(ts["uncached"]), "n": repeats,
            "frameworks_imported": sorted(frameworks)}


def import_share(repeats: int) -> dict[str, Any]:
    """wdlib's own share of ``import wdlib`` as ``python -X importtime`` reports it: the cumulative
    time of ``wdlib`` minus that of ``numpy`` (imported by it), in fresh interpreters with bytecode
    caches; and the whole ``wdlib train`` CLI process (NumPy backend, the chapter's d2l run) against
    an interpreter that only starts and exits."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="wdlib-pycache-")
    cli = [sys.executable, "-m", "wdlib", "train", "--backend", "numpy", "--lambd", "3"]
    subprocess.run(cli, env=env, check=True, capture_output=True)  # write the caches
    own, numpy, process, bare = [], [], [], []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import wdlib"], env=env,
                             capture_output=True, text=True, check=True).stderr
        cumulative = {}
        for line in out.splitlines()[1:]:
            _, cum, name = line.split("|")
            cumulative.setdefault(name.strip(), int(cum) / 1e6)  # the first (outermost) import
        own.append(cumulative["wdlib"] - cumulative["numpy"])
        numpy.append(cumulative["numpy"])
        for argv, ts in ((cli, process), ([sys.executable, "-c", "pass"], bare)):
            start = time.perf_counter()
            subprocess.run(argv, env=env, check=True, capture_output=True)
            ts.append(time.perf_counter() - start)
    return {"own_median": statistics.median(own), "numpy_median": statistics.median(numpy),
            "cli_train_process": statistics.median(process), "bare_interpreter": statistics.median(bare),
            "n": repeats}
