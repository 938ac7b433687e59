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
    assert {"d2l/fused", "d2l/eager", "d2l/book", "gluonbook/fused"} <= set(numpy_result["runs"])
    assert all(r["median"] > 0 for r in numpy_result["runs"].values())
    assert {"d2l/book", "gluonbook/book"} <= set(numpy_result["checks"])
    assert max(numpy_result["checks"].values()) < 1e-4  # float32 runs: rounding apart
    assert results["import"]["frameworks_imported"] == []
    targets = {t["target"]: t for t in results["targets"]}
    assert "NumPy straightforward loop / fused, d2l" in targets
    assert all(isinstance(t["met"], bool) for t in targets.values())
    report = out.with_suffix(".md").read_text()
    assert "| target | measured | bound | met |" in report
