"""The large problem of benchmarks/run.py (``--large``): GB/s of X per epoch through the public API,
against C loops on the same data in the same process, and peak RSS."""

from __future__ import annotations

import resource
import time
from typing import Any

import numpy as np
from measure import ref_library


def large(backend: str, n: int, p: int, repeats: int = 3) -> dict[str, Any]:
    """The large problem through the public API (make_problem, fit with the fast path), float32,
    batch 256: seconds per epoch and GB/s of X, against a C loop on the same data in the same process
    (benchmarks/ref.c: the SGD epoch reading X once, and a sequential read of X), and peak RSS / X.

    Per epoch: the difference of a 3-epoch and a 1-epoch run, halved (every run ends with one
    evaluation pass of the final weights; the other epochs' training losses come with the next
    epoch's pass). The whole run's time per epoch is reported too."""
    import dataclasses

    import wdlib
    from wdlib import fastpath, vectorized

    # numpy-blas, torch-ops: the backend as if numba were not installed
    name, backend = backend, backend.split("-")[0]
    impl = wdlib.get_backend(backend)
    config = wdlib.make_config(backend=backend, n_train=n, num_inputs=p, batch_size=256, lambd=1.0,
                               num_epochs=3, lr=1e-5, dtype="float32", engine="fused")
    start = time.perf_counter()
    problem = wdlib.make_problem(config)
    X = problem.X_train
    seconds_make_problem = time.perf_counter() - start
    # numpy, torch: their default for long runs, the compiled kernel where numba is installed, for the
    # 1-epoch run too (whatever --large-n)
    fastpath.OPTIONS = fastpath.OPTIONS.replace(kernel_min_bytes=float("inf") if "-" in name else 0)
    plan = vectorized.make_plan(problem, config)
    path = "torch ops" if backend == "torch" else "BLAS blocks"
    if backend == "numpy":
        from wdlib_numpy import fused

        if fused.large_ops(plan) is not None:
            path = "compiled kernel (numba)"
    elif backend == "torch":
        import torch

        from wdlib_torch import large as torch_large

        if not isinstance(torch_large.large_ops(torch, plan), torch_large.TorchOps):
            path = "compiled kernel (numba): NumPy's kernel path on the same memory"
    out: dict[str, Any] = {"backend": name, "path": path, "n": n, "p": p, "X_bytes": X.nbytes,
                           "seconds_make_problem": seconds_make_problem}
    one = dataclasses.replace(problem, batch_order=problem.batch_order[:1])
    runs = {"1": lambda: wdlib.fit(impl, one, config.replace(num_epochs=1)),
            "3": lambda: wdlib.fit(impl, problem, config)}
    lib = ref_library()
    if lib is not None:
        y = problem.y_train.ravel()

        def c_epoch(threads: int) -> None:
            w, b, g = problem.w0.ravel().copy(), np.zeros(1, np.float32), np.empty(2 * p, np.float32)
            epochs = lib.epochs_f32 if threads == 1 else lib.epochs2_f32
            epochs(n, p, 1, 256, config.lr, config.lambd, X, y, problem.batch_order, w, b, g)

        runs["C epoch"] = lambda: c_epoch(1)
        runs["C epoch, 2 threads"] = lambda: c_epoch(2)
        runs["C sequential read"] = lambda: lib.sum_f32(X.size, X.reshape(-1))
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for case, f in runs.items():
            start = time.perf_counter()
            result = f()
            times[case].append(time.perf_counter() - start)
            if case == "3":
                assert result.engine == "fused" and np.all(np.isfinite(result.train_loss))
    best = {k: min(ts) for k, ts in times.items()}  # the least disturbed of the repeats
    per_epoch = (best["3"] - best["1"]) / 2
    gb = X.nbytes / 1e9
    out.update(seconds_per_epoch=per_epoch, gb_per_s=gb / per_epoch, seconds_3_epoch_run=best["3"],
               run_gb_per_s=3 * gb / best["3"], repeats=repeats)
    if lib is not None:
        out.update(c_epoch_gb_per_s=gb / best["C epoch"],
                   c_epoch_2_threads_gb_per_s=gb / best["C epoch, 2 threads"],
                   sequential_read_gb_per_s=gb / best["C sequential read"])
        out["fraction_of_c"] = out["gb_per_s"] / out["c_epoch_2_threads_gb_per_s"]
        out["fraction_of_sequential_read"] = out["gb_per_s"] / out["sequential_read_gb_per_s"]
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["peak_rss_over_X"] = out["peak_rss_bytes"] / X.nbytes
    return out
