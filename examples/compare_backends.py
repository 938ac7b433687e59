"""The chapter on every installed backend: lambd = 0 and 3, the comparison table, and the book's
figure per backend (what `make demo` runs).

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

    table = wdlib.compare(lambd=args.lambd, preset=args.preset, dtype=args.dtype)
    print(table)  # final losses, ||w||, difference from the NumPy float64 run, wall time per backend
    for backend in dict.fromkeys(name for name, _, _ in table.runs):
        runs = [table.runs[(backend, lam, 0)] for lam in args.lambd]
        path = f"{args.out}/{args.preset}-{backend}.png"
        wdlib.plot(runs, path, title=f"{backend} ({args.preset})")
        print("figure:", path)


if __name__ == "__main__":
    main()
