"""The regularization path: final test loss and ||w|| against λ, SGD on each backend (mean and
min-max over seeds) with the exact ridge solution drawn over it.

Results go to a SQLite store as each run finishes; rerunning skips what is stored, so the sweep can be
interrupted and resumed, or enlarged.

    python examples/sweep.py [--lambdas 21] [--seeds 5] [--backends numpy,torch] [--out figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import wdlib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--lambdas", type=int, default=21, help="number of λ from 0 to 10")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds")
    parser.add_argument("--backends", help="comma-separated (default: every installed backend)")
    parser.add_argument("--num-epochs", type=int, default=100)
    parser.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    parser.add_argument("--out", default="figures", help="folder for sweep.png and runs.sqlite")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = wdlib.sweep(
        np.linspace(0, 10, args.lambdas), seeds=range(args.seeds),
        backends=args.backends.split(",") if args.backends else None,
        num_epochs=args.num_epochs, store=out / "runs.sqlite", workers=args.workers,
    )
    print(f"{len(table)} runs ({table.computed} computed, {table.skipped} already stored)")
    exact = wdlib.ridge(wdlib.make_config(seed=0), 3.0)
    print(f"exact ridge at λ=3, seed 0: test loss {exact.test_loss:.4g}, ||w|| {exact.w_norm:.4g}")
    print("figure:", table.plot(out / "sweep.png"))


if __name__ == "__main__":
    main()
