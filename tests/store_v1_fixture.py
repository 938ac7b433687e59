"""How tests/data/store_v1.sqlite was made: a schema-1 store written by wdlib's own v1 code.

The file was made once, by running this script with the wdlib of commit 29912ce (the last commit whose
wdlib/store.py wrote schema 1) on NumPy 1.26; it is kept in the repository so the migration tests
read a real v1 file, bytes as v1 wrote them. Rerunning it with a later wdlib writes a later schema,
so it refuses to run then. ``GRIDS`` are the sweeps it ran; the tests rerun them on a migrated copy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).parent / "data" / "store_v1.sqlite"

#: The sweeps stored in the fixture (keyword arguments of wdlib.sweep, store and executor aside).
GRIDS: list[dict[str, Any]] = [
    {"lambdas": [0, 3], "seeds": [0, 1], "backends": ["numpy"], "num_epochs": 5,
     "dtype": ["float32", "float64"]},  # batched: engine_used "vectorized"
    {"lambdas": [1], "seeds": [2], "backends": ["numpy"], "num_epochs": 4, "engine": "eager",
     "preset": "gluonbook"},
    {"lambdas": [0], "seeds": [0], "backends": ["numpy"], "num_epochs": 20, "lr": 5.0},  # diverges
]
#: One more row: the lambd=0 float32 seed-0 run stored again under lambd=-0.0, a different v1 key
#: (v1 hashed the JSON text, "-0.0"), which schema 2 makes the same key as lambd=0.0.
NEGATIVE_ZERO = {"lambd": -0.0, "seed": 0, "num_epochs": 5, "on_divergence": "record"}


def main() -> None:
    import concurrent.futures as cf

    import wdlib
    from wdlib import store

    if store.SCHEMA_VERSION != 1 or FIXTURE.exists():
        sys.exit(f"run with the wdlib of commit 29912ce (schema 1), and remove {FIXTURE} first")
    for grid in GRIDS:
        wdlib.sweep(**grid, store=FIXTURE, executor=cf.ThreadPoolExecutor(1), progress=False)
    with wdlib.Store(FIXTURE) as db:
        row = next(r for r in db.records() if r["lambd"] == 0 and r["seed"] == 0
                   and r["dtype"] == "float32" and r["num_epochs"] == 5)
        db.put(wdlib.make_config(**NEGATIVE_ZERO), row)


if __name__ == "__main__":
    main()
