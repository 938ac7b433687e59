"""The documentation site builds with mkdocs --strict (any warning is an error, as in CI's `make
docs`), with every page of its navigation and the API reference rendered from the docstrings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    performance = (site / "performance" / "index.html").read_text(encoding="utf-8")
    assert "64-λ sweep" in performance  # benchmarks/results.md, included as it is


def test_every_docs_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert pages and all(f": {name}" in nav for name in pages)
