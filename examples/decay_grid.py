"""Why the meaning of ``weight_decay`` matters: Adam + L2 (coupled) against AdamW (decoupled), and SGD
with momentum coupled against decoupled, over a grid of learning rate x λ on the chapter's data and on
the diabetes data, as in Loshchilov & Hutter (2019), Fig. 2: with coupled decay the best λ moves
with the learning rate.

The runs are a sweep stored like any other (rerunning skips stored runs) and use the core chains of
wdlib.optim, which equal each framework's native spelling step for step (wdlib.decay_semantics()).

    python examples/decay_grid.py [--size 7] [--num-epochs 100] [--datasets synthetic,diabetes]
                                  [--out figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import wdlib
from wdlib.heatmap import decay_heatmaps, grid

GRIDS = {  # optimizer: (learning rates, λ) as log10 ranges
    "adam": ((-3.5, -1.0), (-2.0, 2.5)),
    "momentum": ((-4.0, -2.5), (-1.0, 3.0)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--size", type=int, default=7, help="grid points per axis")
    parser.add_argument("--num-epochs", type=int, default=100)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--datasets", default="synthetic,diabetes", help="comma-separated")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    parser.add_argument("--out", default="figures", help="folder for decay_grid.png and runs.sqlite")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets.split(","):
        rows = []
        for optimizer, (lr_range, wd_range) in GRIDS.items():
            table = wdlib.sweep(
                [0.0], backends=args.backend, store=out / "runs.sqlite", workers=args.workers,
                optimizer=optimizer, decay=["coupled", "decoupled"], num_epochs=args.num_epochs,
                dataset=dataset, lr=[float(v) for v in np.logspace(*lr_range, args.size)],
                wd=[float(v) for v in np.logspace(*wd_range, args.size)],
            )
            rows += table.rows
        for (optimizer, decay), (lrs, lams, m) in sorted(grid(rows).items()):
            best = [lams[int(j)] if np.isfinite(m[i]).any() else np.nan
                    for i, j in enumerate(np.nanargmin(np.where(np.isfinite(m), m, np.inf), axis=1))]
            print(f"{dataset:9s} {optimizer:8s} {decay:9s} best λ per lr: " + ", ".join(
                f"lr={lr:.2g}: λ={lam:.2g}" for lr, lam in zip(lrs, best, strict=True)))
        path = out / f"decay_grid-{dataset}.png"
        decay_heatmaps(rows, path, title=f"Final test loss, {dataset} data")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
