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
  (NumPy and PyTorch on the compiled kernel, and each as without numba): GB/s of X streamed per epoch
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
import functools
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wdlib.io import write_text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from large_run import large  # noqa: E402  (benchmarks/*.py, beside this file)
from measure import c_reference, measure  # noqa: E402
from report import summarize  # noqa: E402
from startup import import_share, import_time  # noqa: E402

BACKENDS = ("numpy", "torch", "jax", "mxnet")
#: The large problem's paths: each backend's default (NumPy's and PyTorch's compiled kernel where numba is
#: installed) and, with the suffix, the same backend as if numba were not (BLAS blocks, torch ops).
LARGE_PATHS = ("numpy", "numpy-blas", "torch", "torch-ops")


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


def optimizer_cases(backend: str, impl: Any, repeats: int) -> tuple[dict[str, Any], dict[str, float]]:
    """The new optimizers and the MLP (benchmarks/idiomatic.py's settings, d2l, float32): wdlib's
    eager run next to the same training hand-written in the framework's idiom, and (JAX) the
    compiled whole run (``engine="auto"``); with the largest relative difference of their test losses."""
    import idiomatic

    import wdlib

    cases: dict[str, Callable[[], Any]] = {}
    checks = {}
    for name, (fields, spec) in idiomatic.SPECS.items():
        config = wdlib.make_config("d2l", backend=backend, engine="eager", **fields)
        problem = wdlib.make_problem(config)
        hand = functools.partial(idiomatic.LOOPS[backend], problem, spec, config.num_epochs, config.dtype)
        got = hand()
        if got is None:  # no such optimizer in the framework
            continue
        ref = wdlib.fit(impl, problem, config).test_loss
        checks[name] = float(np.max(np.abs(got[1] - ref) / np.abs(ref)))
        cases[f"{name}/eager"] = functools.partial(wdlib.fit, impl, problem, config)
        cases[f"{name}/hand"] = hand
        if backend == "jax":
            auto = config.replace(engine="auto")
            cases[f"{name}/compiled"] = functools.partial(wdlib.fit, impl, problem, auto)
    return measure(cases, repeats), checks


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
    res["sweep64"] = measure(sweep, repeats)

    res["optimizers"], res["optimizer_checks"] = optimizer_cases(backend, impl, repeats)

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


def previous_large(path: Path) -> list[dict[str, Any]]:
    """The large rows of an earlier results file, each marked with the date it was measured."""
    if not path.is_file():
        raise SystemExit(f"--reuse-large: {path} does not exist; run with --large")
    old = json.loads(path.read_text(encoding="utf-8"))
    date = old["machine"]["date"]
    return [{"measured": date, **g} if "measured" not in g else g for g in old.get("large", [])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=None, help="default: every installed one")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="fewer cases, for a smoke test")
    parser.add_argument("--large", action="store_true",
                        help="also the large problem (the issue's 200,000 x 20,000 float32: 16 GB of RAM)")
    parser.add_argument("--large-n", type=int, default=200_000)
    parser.add_argument("--large-p", type=int, default=20_000)
    parser.add_argument("--reuse-large", action="store_true",
                        help="keep the large rows of OUT.json (measured earlier, their date shown) "
                             "instead of running them again")
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
        for name in [n for n in LARGE_PATHS if n.split("-")[0] in names]:
            print(f"large problem on {name} ...", file=sys.stderr, flush=True)
            cmd = [sys.executable, __file__, "--large-worker", name, "--large-n", str(args.large_n),
                   "--large-p", str(args.large_p)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            error = (out.stderr.strip().splitlines() or ["failed"])[-1][:200]
            results["large"].append(json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0
                                    else {"backend": name, "error": error})
    if args.reuse_large and not args.large:
        results["large"] = previous_large(Path(args.out + ".json"))
    results["import"] = import_time(max(5, args.repeats))
    results["import_share"] = import_share(max(5, args.repeats))
    report, results["targets"] = summarize(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out + ".json", json.dumps(results, indent=1) + "\n")
    write_text(args.out + ".md", report + kept_section(Path(args.out + ".md")))
    print(report)


if __name__ == "__main__":
    main()
