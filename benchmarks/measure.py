"""Timing with interleaved repeats, and the C reference loop (benchmarks/ref.c through ctypes): the
instruments of benchmarks/run.py."""

from __future__ import annotations

import ctypes
import functools
import gc
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


#: A sample is at least this long: a faster case is timed over that many calls in a row (as timeit's
#: autorange), so its time is not that of one call run right after another case, caches cold.
SAMPLE_SECONDS = 0.02


def measure(cases: dict[str, Callable[[], Any]], repeats: int) -> dict[str, dict[str, float]]:
    """Median, quartiles and min of each case's wall time per call in seconds, rounds interleaved."""
    calls = {}
    for name, f in cases.items():  # warm-up: imports, compilation, caches; then the calls per sample
        f()
        start = time.perf_counter()
        f()
        calls[name] = int(min(100, max(1, SAMPLE_SECONDS // max(time.perf_counter() - start, 1e-6))))
    names = list(cases)
    times: dict[str, list[float]] = {n: [] for n in names}
    gc.disable()  # as timeit does: no collection inside a timed call (one after each round instead;
    try:  # a collection before every call left JAX's next call ~0.5 ms slower, its caches cold)
        for r in range(repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                f, n = cases[name], calls[name]
                start = time.perf_counter()
                for _ in range(n):
                    f()
                times[name].append((time.perf_counter() - start) / n)
            gc.collect()
    finally:
        gc.enable()
    out = {}
    for name, ts in times.items():
        q = np.quantile(ts, [0.25, 0.5, 0.75])
        out[name] = {"median": float(q[1]), "q1": float(q[0]), "q3": float(q[2]), "min": min(ts),
                     "n": len(ts), "calls_per_sample": calls[name], "times": ts}
    return out


#: -ffast-math's vectorizing parts without -ffast-math itself: with it, GCC links crtfastmath.o into the
#: library, whose loading switches the whole process to flush-to-zero and so changes what the other
#: cases in the process compute (NumPy then warns that float32's smallest subnormal is zero).
C_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math",
           "-fno-signed-zeros", "-freciprocal-math"]


@functools.cache
def ref_library() -> Any:
    """benchmarks/ref.c compiled and loaded through ctypes (None without a C compiler)."""
    lib_path = Path(tempfile.mkdtemp()) / "wdlib_ref.so"
    try:
        subprocess.run(["cc", *C_FLAGS, "-fopenmp", "-shared", "-fPIC",
                        str(HERE / "ref.c"), "-o", str(lib_path)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    lib = ctypes.CDLL(str(lib_path))
    f32p = np.ctypeslib.ndpointer(np.float32, flags="C")
    f64p = np.ctypeslib.ndpointer(np.float64, flags="C")
    i64p = np.ctypeslib.ndpointer(np.int64, flags="C")
    lib.run_f32.argtypes = [ctypes.c_int] * 5 + [ctypes.c_float] * 2 + [f32p] * 4 + [
        i64p, f32p, f32p, f32p, f32p, f64p, f64p]
    lib.epochs_f32.argtypes = [ctypes.c_int] * 4 + [ctypes.c_float] * 2 + [f32p, f32p, i64p, f32p, f32p, f32p]
    lib.epochs2_f32.argtypes = lib.epochs_f32.argtypes
    lib.sum_f32.argtypes = [ctypes.c_longlong, f32p]
    lib.sum_f32.restype = ctypes.c_double
    return lib


def c_reference() -> Callable[[Any, Any], Callable[[], Any]] | None:
    """``make(problem, config)``: a zero-argument call of the C loop on those inputs (None if no cc)."""
    lib = ref_library()
    if lib is None:
        return None

    def make(problem: Any, config: Any) -> Callable[[], Any]:
        X, y = (np.ascontiguousarray(a, np.float32) for a in (problem.X_train, problem.y_train))
        Xt, yt = (np.ascontiguousarray(a, np.float32) for a in (problem.X_test, problem.y_test))
        order = np.ascontiguousarray(problem.batch_order, np.int64)
        n, p = X.shape
        E = config.num_epochs

        def run() -> tuple:
            w = problem.w0.astype(np.float32).ravel()
            b = np.zeros(1, np.float32)
            g, r = np.empty(p, np.float32), np.empty(config.batch_size, np.float32)
            train, test = np.empty(E), np.empty(E)
            lib.run_f32(n, p, len(Xt), E, config.batch_size, config.lr, config.lambd, X, y.ravel(), Xt,
                        yt.ravel(), order, w, b, g, r, train, test)
            return train, test, w

        return run

    return make
