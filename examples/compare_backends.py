"""The chapter on every installed backend: lambd = 0 and 3, a table, and one figure per backend.

    python examples/compare_backends.py [--out figures] [--preset d2l] [--dtype float32]
"""

from __future__ import annotations

import argparse

import wdlib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", default="figures", help="folder for the PNG figures")
    parser.add_argument("--preset", default="d2l", choices=sorted(wdlib.PRESETS))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--lambd", type=float, nargs="+", default=[0.0, 3.0])
    args = parser.parse_args()

    rows = []
    for backend in wdlib.installed_backends():
        runs = [wdlib.train(backend, args.preset, lambd=lam, dtype=args.dtype) for lam in args.lambd]
        path = wdlib.plot(runs, f"{args.out}/{args.preset}-{backend}.png", title=f"{backend} ({args.preset})")
        for run in runs:
            rows.append((backend, run.backend_version, f"{run.config.lambd:g}", f"{run.train_loss[-1]:.3e}",
                         f"{run.test_loss[-1]:.3e}", f"{run.w_norm:.4f}", f"{run.seconds:.3f}", str(path)))
    header = ("backend", "version", "λ", "train loss", "test loss", "||w||", "seconds", "figure")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
