"""The README's Python snippets run as pasted: each one alone, as a script in an empty folder (so a
sweep snippet is exactly the plain script without a ``__main__`` guard that a user would write)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"^```python\n(.*?)^```$", README, flags=re.S | re.M)


def test_the_readme_has_its_snippets_and_is_short() -> None:
    assert len(SNIPPETS) >= 4  # train, compare, sweep, and the data/model/optimizer placeholder
    assert len(README.encode()) < 10_000  # pitch, install, commands, snippets, matrix, links


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_snippet_runs_as_a_script(index: int, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(SNIPPETS[index], encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=600, env=os.environ)
    assert done.returncode == 0, f"snippet {index}:\n{SNIPPETS[index]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    for name in re.findall(r'"([\w.]+\.(?:png|csv|sqlite))"', SNIPPETS[index]):
        assert (tmp_path / name).stat().st_size > 0, name  # every file a snippet names is written


def test_local_links_exist() -> None:
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (ROOT / target).exists(), target
