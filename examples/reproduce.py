"""The chapter exactly as a book runs it (its framework, its random streams), and its figure.

    python examples/reproduce.py [d2l | gluonbook] [--num-epochs N] [--out figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import wdlib
from wdlib.io import atomic_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("book", nargs="?", default="d2l", choices=["d2l", "gluonbook"])
    parser.add_argument("--num-epochs", type=int, help="default: the book's")
    parser.add_argument("--out", default="figures", help="folder for reproduce.png (and one figure per run)")
    args = parser.parse_args()

    runs = wdlib.reproduce(args.book, out=args.out, num_epochs=args.num_epochs)
    for name, run in runs.items():
        print(f"{args.book} {name}: ||w|| = {run.w_norm:.6g}, final test loss {run.test_loss[-1]:.4g}")

    from wdlib.plot import _pyplot, draw

    plt = _pyplot()
    columns = min(len(runs), 2)
    rows = -(-len(runs) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3 * rows), layout="constrained",
                             squeeze=False)
    for ax, (name, run) in zip(axes.flat, runs.items(), strict=False):  # a last empty panel is fine
        draw([run], ax, labels=[name])
        ax.set_title(f"{args.book}: {name}", fontsize="medium")
    path = Path(args.out) / "reproduce.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    print("figure:", path)


if __name__ == "__main__":
    main()
