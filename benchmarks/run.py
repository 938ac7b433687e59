"""wdlib's benchmark suite: ``python benchmarks/run.py`` (or ``make bench``).

One fresh process per backend measures, with interleaved repeats (every case once per round, the order
rotating from round to round, so a busy machine slows all cases alike) and reports medians and
quartiles of:

- the d2l and gluonbook runs (float32, λ = 3, whole run incl. per-epoch evaluation) through
  ``wdlib.fit`` with ``engine="fused"`` and ``engine="eager"``;
- the same run written by hand the book's way in that framework (benchmarks/book.py), and, in every
  process, a tight C loop (benchmarks/ref.c, via ctypes) as the speed-of-light reference;
- a 64-λ sweep: ``fused_fit_lambdas`` (one batched run) vs 64 one-at-a-time fast-path runs;
- scaling of the fast path in n_train and num_inputs;
- (``--large``) the issue's large problem, n_train = 200,000, p = 20,000 (16 GB), batch 256, float32
  (NumPy on its compiled kernel, NumPy as without numba, PyTorch): GB/s of X streamed per epoch
  against C epochs on one and two threads and a sequential read of X, and peak RSS against the data
  size;
- the whole public calls next to those loops: ``wdlib.train`` of each run, ``wdlib.train_lambdas``
  of the 64 λ and 64 ``wdlib.train`` calls;
- ``import wdlib`` time, in fresh interpreters, and wdlib's own share of it (``-X importtime``), and
  the whole ``wdlib train`` CLI process.

Ratios are computed from medians of the same process and run. Writes ``benchmarks/results.json``
and ``benchmarks/results.md`` (the table the README shows; written by benchmarks/report.py).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wdlib.io import write_text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from report import summarize  # noqa: E402  (benchmarks/report.py, beside this file)

BACKENDS = ("numpy", "torch", "jax", "mxnet")


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


def book_loop(backend: str, problem: Any, config: Any, variant: str = "book") -> Callable[[], Any]:
    import book

    args = (problem, config.lr, config.lambd, config.num_epochs, config.dtype)
    if backend == "numpy":
        return lambda: book.numpy_loop(*args)
    if backend == "torch":
        return lambda: book.torch_d2l(*args, loader=variant == "book")
    if backend == "mxnet":
        return lambda: book.mxnet_gluonbook(*args, loader=variant == "book")
    return lambda: book.jax_grad_loop(*args, jit=variant == "book")


def worker(backend: str, repeats: int, quick: bool) -> dict[str, Any]:
    import wdlib

    impl = wdlib.get_backend(backend)
    make_c = c_reference()
    res: dict[str, Any] = {"backend": backend, "version": impl.version()}
    cases: dict[str, Callable[[], Any]] = {}
    checks = {}
    for preset in ("d2l", "gluonbook"):
        config = wdlib.make_config(preset, backend=backend, lambd=3.0)
        problem = wdlib.make_problem(config)
        for engine in ("fused", "eager"):
            c = config.replace(engine=engine)
            cases[f"{preset}/{engine}"] = lambda c=c, p=problem: wdlib.fit(impl, p, c)
        # the whole public call a user times: config, data, fused run, record
        cases[f"{preset}/train"] = lambda preset=preset: wdlib.train(backend, preset, lambd=3.0)
        cases[f"{preset}/book"] = book_loop(backend, problem, config)
        if backend in ("torch", "mxnet"):
            cases[f"{preset}/hand-autograd"] = book_loop(backend, problem, config, "hand")
        if make_c is not None:
            cases[f"{preset}/C"] = make_c(problem, config)
        # sanity: every implementation computes the same run
        ref = wdlib.fit(impl, problem, config.replace(engine="eager")).test_loss
        for name in [n for n in cases if n.startswith(preset) and n.split("/")[1] in ("book", "C")]:
            got = cases[name]()[1]
            checks[name] = float(np.max(np.abs(got - ref) / np.abs(ref)))
    if backend == "jax" and not quick:
        config = wdlib.make_config("gluonbook", backend=backend, lambd=3.0)
        cases["gluonbook/jax.grad-unjitted"] = book_loop(backend, wdlib.make_problem(config), config, "hand")
    res["runs"] = measure(cases, repeats)
    res["checks"] = checks

    # 64-λ sweep: one batched run vs 64 one-at-a-time fast-path runs
    config = wdlib.make_config("d2l", backend=backend)
    problem = wdlib.make_problem(config)
    lambdas = list(np.linspace(0.0, 10.0, 64))
    configs = [config.replace(lambd=float(lam)) for lam in lambdas]
    sweep = {
        "vectorized": lambda: impl.fused_fit_lambdas(problem, config, lambdas),
        "one-at-a-time": lambda: [impl.fused_fit(problem, c) for c in configs],
        # the public calls: one train_lambdas, and 64 train calls
        "train_lambdas": lambda: wdlib.train_lambdas(backend, lambdas),
        "64 train calls": lambda: [wdlib.train(backend, lambd=float(lam)) for lam in lambdas],
    }
    res["sweep64"] = measure(sweep, max(3, repeats // 2))

    # scaling of the fast path in n and p (batch 5, 5 epochs)
    grid = [(20, 200), (200, 200), (2000, 200), (20, 2000), (20, 20000)]
    if quick:
        grid = grid[:2]
    scaling = {}
    for n, p in grid:
        c = wdlib.make_config(backend=backend, lambd=3.0, n_train=n, num_inputs=p, num_epochs=5)
        pr = wdlib.make_problem(c)
        scaling[f"n={n},p={p}"] = lambda c=c, pr=pr: impl.fused_fit(pr, c)
    res["scaling"] = measure(scaling, max(3, repeats // 2))
    return res


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

    name, backend = backend, backend.removesuffix("-blas")  # numpy-blas: NumPy as if without numba
    impl = wdlib.get_backend(backend)
    config = wdlib.make_config(backend=backend, n_train=n, num_inputs=p, batch_size=256, lambd=1.0,
                               num_epochs=3, lr=1e-5, dtype="float32", engine="fused")
    start = time.perf_counter()
    problem = wdlib.make_problem(config)
    X = problem.X_train
    seconds_make_problem = time.perf_counter() - start
    path = "torch ops" if backend == "torch" else "BLAS blocks"
    if backend == "numpy":
        from wdlib_numpy import fused

        # numpy: its default for long runs, the kernel where numba is installed, for the 1-epoch run
        # too (whatever --large-n); numpy-blas: as without numba
        fastpath.OPTIONS = fastpath.OPTIONS.replace(
            kernel_min_bytes=float("inf") if name.endswith("-blas") else 0)
        if fused.large_ops(vectorized.make_plan(problem, config)) is not None:
            path = "compiled kernel (numba)"
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


def available_memory() -> float | None:
    """Bytes of memory available to a new process (MemAvailable), None where /proc is missing."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1),
            "python": platform.python_version(), "numpy": np.__version__,
            "load_average_at_start": os.getloadavg()[0],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


#: The line of results.md after which the hand-written notes (the tuning measurements) begin; a run
#: rewrites the table above it and keeps the notes.
KEEP_MARKER = "<!-- Everything below this line is kept by benchmarks/run.py when it rewrites this file. -->"


def kept_section(path: Path) -> str:
    """The part of an existing report from :data:`KEEP_MARKER` on ("" if none)."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    start = text.find(KEEP_MARKER)
    return "" if start < 0 else "\n" + text[start:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=None, help="default: every installed one")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer cases, for a smoke test")
    parser.add_argument("--large", action="store_true",
                        help="also the large problem (the issue's 200,000 x 20,000 float32: 16 GB of RAM)")
    parser.add_argument("--large-n", type=int, default=200_000)
    parser.add_argument("--large-p", type=int, default=20_000)
    parser.add_argument("--out", default=str(HERE / "results"), help="writes OUT.json and OUT.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--large-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeats, args.quick)))
        return
    if args.large_worker:
        print(json.dumps(large(args.large_worker, args.large_n, args.large_p)))
        return

    import wdlib

    names = args.backends or [b for b in BACKENDS if b in wdlib.installed_backends()]
    if args.large:  # checked before anything runs: the data alone takes n * p * 4 bytes
        need, free = args.large_n * args.large_p * 4 * 1.1, available_memory()
        if free is not None and need > free:
            raise SystemExit(f"--large-n {args.large_n} --large-p {args.large_p} needs about "
                             f"{need / 1e9:.1f} GB of memory and {free / 1e9:.1f} GB are available: "
                             "pass a smaller --large-n")
    results: dict[str, Any] = {"machine": machine(), "repeats": args.repeats, "backends": [], "large": []}
    for name in names:
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--worker", name, "--repeats", str(args.repeats)]
        out = subprocess.run(cmd + (["--quick"] if args.quick else []), capture_output=True, text=True)
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"the {name} worker failed")
        results["backends"].append(json.loads(out.stdout.strip().splitlines()[-1]))
    if args.large:
        for name in [n for n in ("numpy", "numpy-blas", "torch") if n.removesuffix("-blas") in names]:
            print(f"large problem on {name} ...", file=sys.stderr, flush=True)
            cmd = [sys.executable, __file__, "--large-worker", name, "--large-n", str(args.large_n),
                   "--large-p", str(args.large_p)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            error = (out.stderr.strip().splitlines() or ["failed"])[-1][:200]
            results["large"].append(json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0
                                    else {"backend": name, "error": error})
    results["import"] = import_time(max(5, args.repeats))
    results["import_share"] = import_share(max(5, args.repeats))
    report, results["targets"] = summarize(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out + ".json", json.dumps(results, indent=1) + "\n")
    write_text(args.out + ".md", report + kept_section(Path(args.out + ".md")))
    print(report)


if __name__ == "__main__":
    main()
