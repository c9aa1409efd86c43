"""A warm start (issue 15): `bangfu serve` does the first request's work at start — the pages' imports, the map
geometry, the connection pool and today's overview — before /_stcore/health answers, so that the first page
reads its data from a warm cache (serve_app.py, ui/startup.warm_up).

The real `bangfu serve` on a small demo database (SQLite, then PostgreSQL) and the session's Chromium. What the
server computed and what it served from the cache is read from Streamlit's own counters (/_stcore/metrics:
cache_lookups_total per cached function, hit or miss). With BANGFU_WARM_UP=0 (or the old `bangfu serve`, which ran
app.py without a warm-up) this test fails: nothing is cached at health time and the first page computes the
overview itself (a miss).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from data_access import db, summary
from data_access.demo import generate
from ui.data import TTL
from ui.startup import WARM_MARK

from .conftest import free_port, stop_server, wait_healthy

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def lookups(base: str, cache: str) -> dict[str, int]:
    """{'hit': n, 'miss': m} of one st.cache_data function, from the server's /_stcore/metrics."""
    with urllib.request.urlopen(f"{base}/_stcore/metrics", timeout=10) as r:
        text = r.read().decode()
    found = re.findall(rf'cache_lookups_total\{{cache="{re.escape(cache)}",cache_type="st_cache_data",'
                       rf'result="(hit|miss)"\}} (\d+)', text)
    return {"hit": 0, "miss": 0} | {kind: int(n) for kind, n in found}


def test_serve_warms_up_before_it_answers(browser, db_url, tmp_path):
    engine = db.make_engine(db_url)
    generate(engine, households=300, seed=3)
    summary.refresh_engine(engine)  # today's overview is read from the stored summaries, as in service
    engine.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in ("BANGFU_HOST", "DATABASE_URL")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "data_access.cli", "serve", "--port", str(port), "--db", db_url],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        wait_healthy(proc, base, log_path, timeout_s=120)
        healthy_at = time.monotonic()
        # the warm-up has run before the first answer: its log line, and today's overview in the shared cache
        assert WARM_MARK in log_path.read_text(errors="replace"), log_path.read_text(errors="replace")[-3000:]
        assert lookups(base, "ui.data.overview") == {"hit": 0, "miss": 1}
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(base + "/")  # the first page after the start: the overview
        page.wait_for_selector(READY)
        page.locator("h1", has_text="总览").first.wait_for()
        assert page.locator('[data-testid="stException"]').count() == 0
        # its data came from the warm cache: a hit, and no second computation
        after = lookups(base, "ui.data.overview")
        if time.monotonic() - healthy_at >= TTL:  # a machine so loaded that the warm entry expired meanwhile
            pytest.skip(f"the first page took longer than the data cache's TTL ({TTL} s): {after}")
        assert after["miss"] == 1 and after["hit"] >= 1, after
    finally:
        ctx.close()
        stop_server(proc)
    assert "Traceback" not in log_path.read_text(errors="replace"), log_path.read_text(errors="replace")[-4000:]
