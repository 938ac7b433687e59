"""The Markdown report of benchmarks/run.py and its targets (the issue's bounds, checked on the
measured medians; each ratio is of two numbers from the same process and run)."""

from __future__ import annotations

import statistics
from typing import Any

BOOK = {"numpy": "straightforward NumPy loop", "torch": "d2l code (DataLoader + autograd)",
        "mxnet": "gluonbook code (DataLoader + autograd.record)", "jax": "jax.jit(jax.grad) per step"}


def paired(a: dict[str, Any], b: dict[str, Any]) -> float:
    """a / b as the median over rounds of a's time / b's in the same round (both ran within seconds of
    each other, so a slow spell of a shared machine slows both): steadier than a ratio of medians."""
    ta, tb = a.get("times"), b.get("times")
    if not ta or not tb or len(ta) != len(tb):
        return a["median"] / b["median"]
    return statistics.median(x / y for x, y in zip(ta, tb, strict=True))


def ms(x: float) -> str:
    return f"{x * 1e3:.3g}" if x < 10 else f"{x * 1e3:.0f}"


def share_text(share: dict[str, Any] | None) -> str:
    if not share:
        return ""
    return (f" With `-X importtime`: wdlib's own share {share['own_median'] * 1e3:.0f} ms beyond NumPy's "
            f"{share['numpy_median'] * 1e3:.0f} ms (medians of {share['n']}). The whole `wdlib train` CLI "
            f"process (NumPy, d2l): {share['cli_train_process'] * 1e3:.0f} ms, of which "
            f"{share['bare_interpreter'] * 1e3:.0f} ms an interpreter that starts and exits.")


def optimizer_table(by: dict[str, Any]) -> list[str]:
    """The optimizers and the MLP: wdlib's eager run, the idiomatic loop, JAX's compiled run (ms)."""
    if not any(r.get("optimizers") for r in by.values()):
        return []
    lines = ["", "The new optimizers and the MLP (benchmarks/idiomatic.py: momentum and Adam with coupled "
             "decay, AdamW, a 32-unit MLP with SGD; d2l, float32), ms: wdlib's eager run next to the same "
             "training hand-written in the framework's idiom (torch.optim; optax with a jitted step; a "
             "gluon Trainer; NumPy by hand), and JAX's compiled whole run:", "",
             "| backend | setting | wdlib eager | idiomatic loop | ratio | compiled (JAX) | "
             "max rel. diff of test losses |", "|---|---|---|---|---|---|---|"]
    for name, r in by.items():
        opt, checks = r.get("optimizers", {}), r.get("optimizer_checks", {})
        for spec in dict.fromkeys(k.split("/")[0] for k in opt):
            compiled = opt.get(f"{spec}/compiled")
            lines.append(f"| {name} | {spec} | {ms(opt[spec + '/eager']['median'])} | "
                         f"{ms(opt[spec + '/hand']['median'])} | "
                         f"{paired(opt[spec + '/eager'], opt[spec + '/hand']):.2f} | "
                         f"{ms(compiled['median']) if compiled else '-'} | "
                         f"{checks.get(spec, float('nan')):.1e} |")
    return lines


def summarize(results: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The Markdown report and the list of targets (met or not)."""
    lines: list[str] = []
    m = results["machine"]
    lines += [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
              f"NumPy {m['numpy']}; {m['date']}; load average at start {m['load_average_at_start']:.2f}. "
              f"Medians of {results['repeats']} interleaved repeats (q1-q3 in brackets), ms; the targets' "
              "ratios are medians of the per-round ratios (both cases timed in the same round).", ""]
    lines += ["| backend | run | fused | whole `wdlib.train` | eager | book-style by hand | "
              "hand autograd, no loader | C loop |", "|---|---|---|---|---|---|---|---|"]
    targets: list[dict[str, Any]] = []

    def cell(runs: dict, key: str) -> str:
        if key not in runs:
            return "-"
        r = runs[key]
        return f"{ms(r['median'])} ({ms(r['q1'])}-{ms(r['q3'])})"

    by = {r["backend"]: r for r in results["backends"]}
    for name, r in by.items():
        runs = r["runs"]
        for preset in ("d2l", "gluonbook"):
            lines.append(f"| {name} {r['version']} | {preset} | {cell(runs, preset + '/fused')} | "
                         f"{cell(runs, preset + '/train')} | "
                         f"{cell(runs, preset + '/eager')} | {cell(runs, preset + '/book')} | "
                         f"{cell(runs, preset + '/hand-autograd')} | {cell(runs, preset + '/C')} |")
    lines += ["", "Book-style baselines: " + "; ".join(f"{k}: {v}" for k, v in BOOK.items() if k in by)
              + ". JAX's 'hand' column: the same loop with an unjitted `jax.grad` (gluonbook only). "
              "fused: `wdlib.fit` on the fast path (plan, loop, record); whole `wdlib.train`: the public "
              "call with its config and data (repeated calls find the data in make_problem's cache of small "
              "synthetic problems, as a loop over λ does).", ""]

    def med(name: str, key: str) -> float:
        return by[name]["runs"][key]["median"]

    def ratio(name: str, a: str, b: str) -> float:
        return paired(by[name]["runs"][a], by[name]["runs"][b])

    def target(what: str, value: float, bound: float, better: str) -> None:
        ok = value <= bound if better == "<=" else value >= bound
        targets.append({"target": what, "value": value, "bound": bound, "met": ok})

    for name in by:
        if "d2l/train" in by[name]["runs"]:
            target(f"{name}: whole wdlib.train / fused loop, d2l", ratio(name, "d2l/train", "d2l/fused"), 1.5,
                   "<=")
    for name in by:
        if "d2l/C" in by[name]["runs"]:
            target(f"{name}: fused d2l / C loop (same process)", ratio(name, "d2l/fused", "d2l/C"), 2, "<=")
    if "torch" in by:
        target("PyTorch fused d2l, ms", med("torch", "d2l/fused") * 1e3, 5, "<=")
        target("PyTorch eager / fused, d2l", ratio("torch", "d2l/eager", "d2l/fused"), 15, ">=")
    if "numpy" in by:
        target("NumPy straightforward loop / fused, d2l",
               ratio("numpy", "d2l/book", "d2l/fused"), 2.5, ">=")
    if "mxnet" in by:
        target("MXNet autograd.record (gluonbook code) / fused, d2l",
               ratio("mxnet", "d2l/book", "d2l/fused"), 5, ">=")
        target("MXNet wdlib eager / fused, d2l",
               ratio("mxnet", "d2l/eager", "d2l/fused"), 5, ">=")
    for name, r in by.items():
        s = r["sweep64"]
        target(f"{name}: 64-λ sweep, one-at-a-time / vectorized",
               paired(s["one-at-a-time"], s["vectorized"]), 20, ">=")
    for name in by:
        for preset in ("d2l", "gluonbook"):
            target(f"{name} {preset}: wdlib eager / book-style loop",
                   ratio(name, f"{preset}/eager", f"{preset}/book"), 1.10, "<=")
            if f"{preset}/hand-autograd" in by[name]["runs"]:
                target(f"{name} {preset}: wdlib eager / hand autograd loop without DataLoader",
                       ratio(name, f"{preset}/eager", f"{preset}/hand-autograd"), 1.10, "<=")
    for name, r in by.items():
        opt = r.get("optimizers", {})
        for spec in dict.fromkeys(k.split("/")[0] for k in opt):
            target(f"{name} {spec}: wdlib eager / the framework's idiomatic loop",
                   paired(opt[f"{spec}/eager"], opt[f"{spec}/hand"]), 1.15, "<=")
            if f"{spec}/compiled" in opt:
                target(f"{name} {spec}: eager / compiled whole run (lax.scan)",
                       paired(opt[f"{spec}/eager"], opt[f"{spec}/compiled"]), 10, ">=")
    for g in results.get("large", []):
        large = f"{g['backend']} ({g.get('path', '-')}) large problem"
        if "fraction_of_c" in g:
            target(f"{large}: GB/s per epoch / the C epoch's on two threads", g["fraction_of_c"], 0.8, ">=")
            target(f"{large}: GB/s per epoch / a sequential read of X", g["fraction_of_sequential_read"],
                   0.5 if g["backend"].startswith("torch") else 0.4, ">=")
        if "peak_rss_over_X" in g:
            target(f"{large}: peak RSS / X", g["peak_rss_over_X"], 1.5, "<=")
    imp = results["import"]
    target("import wdlib, ms (frameworks imported: " + (", ".join(imp["frameworks_imported"]) or "none")
           + ")", imp["median"] * 1e3, 150, "<=")
    share = results.get("import_share")
    if share:
        target("import wdlib: wdlib's own share beyond NumPy's (-X importtime), ms",
               share["own_median"] * 1e3, 40, "<=")

    lines += ["64-λ sweep (d2l, float32), ms: the fast path's calls (`fused_fit_lambdas` vs 64 `fused_fit`) "
              "and the public ones (`wdlib.train_lambdas` vs 64 `wdlib.train`):", "",
              "| backend | vectorized | 64 one-at-a-time (fast path) | ratio | `train_lambdas` | "
              "64 `train` calls | ratio |", "|---|---|---|---|---|---|---|"]
    for name, r in by.items():
        s = r["sweep64"]
        public = (f"{ms(s['train_lambdas']['median'])} | {ms(s['64 train calls']['median'])} | "
                  f"{paired(s['64 train calls'], s['train_lambdas']):.1f}x" if "train_lambdas" in s
                  else "- | - | -")
        lines.append(f"| {name} | {ms(s['vectorized']['median'])} | {ms(s['one-at-a-time']['median'])} | "
                     f"{paired(s['one-at-a-time'], s['vectorized']):.1f}x | {public} |")
    lines += optimizer_table(by)
    keys = list(next(iter(by.values()))["scaling"])
    lines += ["", "Fast path scaling (batch 5, 5 epochs, whole fused_fit incl. setup), ms:", "",
              "| backend | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, r in by.items():
        lines.append(f"| {name} | " + " | ".join(ms(r["scaling"][k]["median"]) for k in keys) + " |")
    if results.get("large"):
        dates = sorted({g["measured"] for g in results["large"] if "measured" in g})
        when = f" Measured {', '.join(dates)} (an earlier run, kept with --reuse-large)." if dates else ""
        lines += ["", "Large problem through `wdlib.make_problem` and `wdlib.fit` (fast path), float32, "
                  "batch 256; GB/s = bytes of X / seconds per epoch; C: benchmarks/ref.c on the same data in "
                  "the same process (the SGD epoch reading X once, on one thread and on two as wdlib runs "
                  "it; a sequential read of X on one thread)." + when, "",
                  "| backend | path | n x p | X | make_problem s | s/epoch | GB/s | / C, 2 threads | "
                  "/ sequential read | whole 3-epoch run, GB/s per epoch | C epoch GB/s, 1 thread | "
                  "2 threads | C sequential read GB/s | peak RSS / X |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        nan = float("nan")
        for g in results["large"]:
            if "error" in g:
                lines.append(f"| {g['backend']} | - | - | - | - | - | {g['error']} |" + " - |" * 7)
                continue
            lines.append(
                f"| {g['backend']} | {g.get('path', '-')} | {g['n']} x {g['p']} | "
                f"{g['X_bytes'] / 1e9:.1f} GB | "
                f"{g['seconds_make_problem']:.0f} | {g['seconds_per_epoch']:.2f} | {g['gb_per_s']:.1f} | "
                f"{g.get('fraction_of_c', nan):.2f} | {g.get('fraction_of_sequential_read', nan):.2f} | "
                f"{g['run_gb_per_s']:.1f} | {g.get('c_epoch_gb_per_s', nan):.1f} | "
                f"{g.get('c_epoch_2_threads_gb_per_s', nan):.1f} | "
                f"{g.get('sequential_read_gb_per_s', nan):.1f} | {g['peak_rss_over_X']:.2f} |")
    lines += ["", f"`import wdlib`: {imp['median'] * 1e3:.0f} ms median of {imp['n']} fresh interpreters "
              f"with bytecode caches ({imp['median_without_bytecode_cache'] * 1e3:.0f} ms without: "
              "PYTHONDONTWRITEBYTECODE); frameworks imported: "
              f"{', '.join(imp['frameworks_imported']) or 'none'}." + share_text(results.get("import_share")),
              "",
              "| target | measured | bound | met |", "|---|---|---|---|"]
    for t in targets:
        met = "yes" if t["met"] else "**no**"
        lines.append(f"| {t['target']} | {t['value']:.3g} | {t['bound']:g} | {met} |")
    return "\n".join(lines) + "\n", targets
