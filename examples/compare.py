"""Every installed backend on identical inputs, checked against the NumPy float64 reference.

    python examples/compare.py [--lambd 0 3] [--num-epochs 100] [--out figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import wdlib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--lambd", type=float, nargs="+", default=[0.0, 3.0])
    parser.add_argument("--num-epochs", type=int, default=100)
    parser.add_argument("--out", default="figures", help="folder for compare.png and compare.csv")
    args = parser.parse_args()

    table = wdlib.compare(lambd=args.lambd, num_epochs=args.num_epochs)
    print(table)  # DIFFERS in the status column marks a backend beyond the tolerance
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "compare.csv")
    table.plot(out / "compare.png")
    print("figure:", out / "compare.png")


if __name__ == "__main__":
    main()
