"""The benchmark script runs and measures what it says (no timings asserted: speed targets live in
benchmarks/results.md, never in unit tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.mark.skipif(not SCRIPT.exists(), reason="benchmarks/ is not part of this checkout")
def test_quick_benchmark_writes_its_report(tmp_path: Path) -> None:
    """``--quick`` on NumPy writes the JSON and Markdown report; the hand-written and C baselines it
    times compute the same run as wdlib (else their times would compare different work)."""
    out = tmp_path / "results"
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--repeats", "1", "--backends", "numpy",
                    "--out", str(out)], check=True, capture_output=True, text=True)
    results = json.loads(out.with_suffix(".json").read_text())
    (numpy_result,) = results["backends"]
    assert numpy_result["backend"] == "numpy"
    assert {"d2l/fused", "d2l/train", "d2l/eager", "d2l/book", "gluonbook/fused", "gluonbook/train"} <= set(
        numpy_result["runs"])
    assert all(r["median"] > 0 for r in numpy_result["runs"].values())
    # the public calls next to the fast path's: train_lambdas and 64 train calls
    assert set(numpy_result["sweep64"]) == {"vectorized", "one-at-a-time", "train_lambdas", "64 train calls"}
    share = results["import_share"]
    assert 0 < share["own_median"] < share["own_median"] + share["numpy_median"]
    assert share["cli_train_process"] > share["bare_interpreter"] > 0
    assert {"d2l/book", "gluonbook/book"} <= set(numpy_result["checks"])
    assert max(numpy_result["checks"].values()) < 1e-4  # float32 runs: rounding apart
    assert results["import"]["frameworks_imported"] == []
    targets = {t["target"]: t for t in results["targets"]}
    assert "NumPy straightforward loop / fused, d2l" in targets
    assert "numpy: whole wdlib.train / fused loop, d2l" in targets
    assert targets["numpy: 64-λ sweep, one-at-a-time / vectorized"]["bound"] == 20
    assert all(isinstance(t["met"], bool) for t in targets.values())
    report = out.with_suffix(".md").read_text()
    assert "| target | measured | bound | met |" in report


def test_report_keeps_its_hand_written_section(tmp_path: Path) -> None:
    """A run rewrites the measured part of results.md and keeps the notes below the marker."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import run
    finally:
        sys.path.remove(str(SCRIPT.parent))
    path = tmp_path / "results.md"
    assert run.kept_section(path) == ""  # no report yet
    path.write_text("old table\n" + run.KEEP_MARKER + "\n## Tuning measurements\nnotes\n")
    kept = run.kept_section(path)
    assert kept.startswith("\n" + run.KEEP_MARKER) and kept.endswith("notes\n") and "old table" not in kept
    repo_report = (SCRIPT.parent / "results.md").read_text()
    assert run.KEEP_MARKER in repo_report and "## Tuning measurements" in repo_report



def test_reused_large_rows_keep_the_date_they_were_measured(tmp_path: Path) -> None:
    """``--reuse-large`` carries an earlier file's large rows, each marked with that file's date."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import run
    finally:
        sys.path.remove(str(SCRIPT.parent))
    path = tmp_path / "results.json"
    with pytest.raises(SystemExit, match="--large"):
        run.previous_large(path)
    row = {"backend": "torch", "gb_per_s": 8.9}
    path.write_text(json.dumps({"machine": {"date": "2026-12-02 18:49 UTC"}, "large": [row]}))
    assert run.previous_large(path) == [{"measured": "2026-12-02 18:49 UTC", **row}]
    path.write_text(json.dumps({"machine": {"date": "later"}, "large": run.previous_large(path)}))
    assert run.previous_large(path)[0]["measured"] == "2026-12-02 18:49 UTC"  # the first date stays
