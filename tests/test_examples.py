"""Every script in examples/ runs to the end and writes its figure (with small settings where the
point is that it runs, not the book's numbers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: Extra arguments that keep each script quick; a script not listed runs with ``--out`` only.
QUICK = {
    "train.py": ["--num-epochs", "5"],
    "compare.py": ["--num-epochs", "5"],
    "sweep.py": ["--lambd", "0:10:3", "--seeds", "0-1", "--backends", "numpy", "--num-epochs", "5",
                 "--workers", "1"],
    "reproduce.py": ["d2l", "--num-epochs", "5"],
    "decay_grid.py": ["--size", "2", "--num-epochs", "5", "--workers", "1"],
}
#: The figure each script must write into ``--out``.
FIGURES = {"train.py": "train.png", "compare.py": "compare.png", "sweep.py": "sweep.png",
           "reproduce.py": "reproduce.png", "decay_grid.py": "decay_grid-synthetic.png"}

SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_every_quick_start_use_has_an_example() -> None:
    assert set(FIGURES) <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script: str, tmp_path: Path) -> None:
    argv = [sys.executable, str(EXAMPLES / script), *QUICK.get(script, []), "--out", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "an example says what it did"
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    if script in FIGURES:
        assert (tmp_path / FIGURES[script]).is_file()
