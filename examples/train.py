"""Train the chapter's model once and draw the book's figure (train solid, test dotted).

    python examples/train.py [--backend numpy] [--lambd 3] [--num-epochs 100] [--out figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import wdlib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--lambd", type=float, nargs="+", default=[0.0, 3.0])
    parser.add_argument("--num-epochs", type=int, default=100)
    parser.add_argument("--out", default="figures", help="folder for train.png")
    args = parser.parse_args()

    runs = [wdlib.train(args.backend, lambd=lam, num_epochs=args.num_epochs) for lam in args.lambd]
    for run in runs:
        print(run)
    path = Path(args.out) / "train.png"
    wdlib.plot(runs, path)  # the folder is created; the title names the backend and the preset
    print("figure:", path)


if __name__ == "__main__":
    main()
