"""benchmarks/sessions.py runs end to end on a tiny demo SQLite database with 3 sessions and prints its
one table (RSS after start, after the batch, the peak, render times, target and verdict), exits 0 and
leaves no server behind.

Run: ``.venv/bin/pytest -m browser tests/test_sessions_bench.py`` (needs /usr/bin/chromium).
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .conftest import free_port, require_browser

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent

require_browser(module=True)  # skipped without a browser; in CI (CI=true) a failure


def test_sessions_bench_prints_the_table(tmp_path):
    from data_access.db import make_engine, upgrade
    from data_access.demo import generate

    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    generate(engine, households=1000, seed=1)
    engine.dispose()

    port = free_port()
    cmd = [sys.executable, str(ROOT / "benchmarks" / "sessions.py"), "--db", url, "--sessions", "3", "--wait", "1",
           "--port", str(port)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    for key in ("sessions", "RSS after start", "RSS after each batch", "peak RSS, 3 sessions open",
                "render time, median per page", "pages with errors", "target", "met?"):
        assert any(k.startswith(key) for k in rows), f"no row {key!r} in:\n{proc.stdout}"
    assert "3: " in rows["RSS after each batch"]
    assert "overview" in rows["render time, median per page"] and "map" in rows["render time, median per page"]
    assert "| met? | yes |" in proc.stdout
    with pytest.raises(OSError):  # the server was stopped
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
