"""The regularization path: final test loss and ||w|| against λ, SGD on each backend (mean and
min-max over seeds) with the exact ridge solution drawn over it.

Results go to a SQLite store as each run finishes; rerunning skips what is stored, so the sweep can be
interrupted and resumed, or enlarged. The options are those of ``wdlib sweep``:

    python examples/sweep.py [--lambd 0:10:21] [--seeds 0-4] [--backends numpy,torch] [--out figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import wdlib
from wdlib.cli import parse_lambdas, parse_seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--lambd", nargs="+", default=["0:10:21"],
                        help="λ values: 3, 0,1,3 or start:stop:count (default 0:10:21)")
    parser.add_argument("--seeds", default="0-4", help="seeds: 3, 0,4,7 or first-last (default 0-4)")
    parser.add_argument("--backends", help="comma-separated (default: every installed backend)")
    parser.add_argument("--num-epochs", type=int, default=100)
    parser.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    parser.add_argument("--out", default="figures", help="folder for sweep.png and runs.sqlite")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = wdlib.sweep(
        parse_lambdas(args.lambd), seeds=parse_seeds(args.seeds),
        backends=args.backends.split(",") if args.backends else None,
        num_epochs=args.num_epochs, store=out / "runs.sqlite", workers=args.workers,
    )
    print(repr(table))
    exact = wdlib.ridge(wdlib.make_config(seed=0), 3.0)
    print(f"exact ridge at λ=3, seed 0: {exact}")
    table.plot(out / "sweep.png")
    print("figure:", out / "sweep.png")


if __name__ == "__main__":
    main()
