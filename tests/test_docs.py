"""The documentation site builds with mkdocs --strict (any warning is an error, as in CI's `make
docs`), with every page of its navigation and the API reference rendered from the docstrings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        capture_output=True, text=True, cwd=ROOT, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr
    for page in ("books", "numerics", "performance", "sweeps", "extending", "cli", "api"):
        assert (site / page / "index.html").is_file(), page
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "Run the chapter&#39;s experiment on one backend" in api or "Run the chapter's experiment" in api
    for name in ("make_problem", "MLP", "ElasticNet", "scale_by_adam", "decoupled_decay", "decay_semantics"):
        assert name in api, name  # the data, model, penalty, optimizer and weight-decay interfaces
    performance = (site / "performance" / "index.html").read_text(encoding="utf-8")
    assert "64-λ sweep" in performance  # benchmarks/results.md, included as it is


def test_every_docs_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert pages and all(f": {name}" in nav for name in pages)


def _python_blocks(page: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


@pytest.mark.parametrize("index", range(len(_python_blocks("extending.md"))))
def test_extending_snippets_run_as_scripts(index: int, tmp_path: Path) -> None:
    code = _python_blocks("extending.md")[index]
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=600, env=os.environ)
    assert done.returncode == 0, f"{code}\n{done.stderr[-3000:]}"


def test_no_placeholder_is_left_in_the_docs() -> None:
    for page in (ROOT / "docs").glob("*.md"):
        assert "PLACEHOLDER" not in page.read_text(encoding="utf-8"), page.name
