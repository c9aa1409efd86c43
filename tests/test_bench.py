"""benchmarks/bench.py runs end to end on a tiny SQLite database and prints its one table with a row
for every page (today and the past date), the refresh, generation, import, baseline and memory rows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["overview", "coverage", "cap", "cadence", "ratings", "units, unit", "meeting"]


def test_bench_quick_run_prints_the_table(tmp_path):
    db = tmp_path / "bench.sqlite"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--db", f"sqlite:///{db}",
           "--households", "2000", "--baseline-households", "2000", "--import-visits", "20000", "--runs", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "| page | date | cold median | warm median | target | met? |" in out
    assert "nproc" in out and "2,000 households" in out and "SQLite" in out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    pages = PAGES + (["map"] if (ROOT / "pages" / "map.py").exists() else [])
    for page in pages:
        for date in ("today", "today−200d"):
            hits = [r for r in rows if r.startswith(f"| {page}") and f"| {date} |" in r]
            assert hits, f"no row for {page} / {date}"
            assert "error" not in hits[0], hits[0]
            assert re.search(r"\| [\d,.]+ (ms|s) \| [\d,.]+ (ms|s) \|", hits[0]), hits[0]
    assert any(r.startswith("| coverage, county ") for r in rows)  # the drill-down
    for item in ("summary refresh", "demo generation", "`bangfu demo`", "import 20,000-visit ledger",
                 "naive baseline", "peak RSS (bench process)"):
        assert any(r.startswith(f"| {item}") for r in rows), item
    assert "DIFFERENT" not in out  # the naive pandas baseline agrees with the metric engine
    assert "Slowest calls per page" in out
    # a second run reuses the database instead of generating it again
    proc = subprocess.run(cmd + ["--skip-import", "--skip-baseline"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reused database" in proc.stdout
