"""The chapter exactly as a book runs it (its framework, its random streams), and its figure.

    python examples/reproduce.py [d2l | gluonbook] [--edition en|zh] [--num-epochs N] [--out figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import wdlib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("book", nargs="?", default="d2l", choices=sorted(wdlib.BOOKS))
    parser.add_argument("--edition", choices=["en", "zh"], help="the printed lines' (default: your locale's)")
    parser.add_argument("--num-epochs", type=int, help="default: the book's")
    parser.add_argument("--out", default="figures", help="folder for reproduce.png (and one figure per run)")
    args = parser.parse_args()

    runs = wdlib.reproduce(args.book, out=args.out, edition=args.edition, num_epochs=args.num_epochs)
    for name, run in runs.items():
        print(f"{args.book} {name}: {run.printed}  (final test loss {run.test_loss[-1]:.4g})")
    path = Path(args.out) / "reproduce.png"
    wdlib.plot(runs, path)  # one panel per run
    print("figure:", path)


if __name__ == "__main__":
    main()
