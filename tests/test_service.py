"""The running service keeps "today" current by itself (issue 11, item 3): a real `streamlit run app.py`
whose Beijing date has moved past the stored summaries stores the new day without anyone running
`bangfu refresh`, and its pages say when their figures were computed."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from benchmarks.sessions import start_server, stop_server, wait_healthy
from data_access import db, settings, summary
from data_access.demo import generate

from .conftest import CHROMIUM_ARGS, free_port  # noqa: F401

pytestmark = pytest.mark.browser
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def test_running_service_stores_the_new_day_by_itself(browser, tmp_path):
    url = f"sqlite:///{tmp_path / 'svc.sqlite'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    yesterday = settings.today()
    generate(engine, households=400, seed=4, as_of=yesterday)
    summary.refresh_engine(engine, today=yesterday)
    today = yesterday + dt.timedelta(days=1)  # the server's clock has passed midnight in Beijing
    with engine.connect() as conn:
        assert summary.freshness(conn, today) is None
    port = free_port()
    log = tmp_path / "server.log"
    proc = start_server(url, port, log, env={"BANGFU_TODAY": today.isoformat(), "BANGFU_SELF_REFRESH": "1",
                                             "BANGFU_SELF_REFRESH_INTERVAL_S": "5"})
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(proc, base, log, timeout_s=60)
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{base}/coverage")  # the first session starts the server's maintenance thread
        page.wait_for_selector(READY)
        deadline = time.monotonic() + 90
        stored = None
        while time.monotonic() < deadline and stored is None:
            with engine.connect() as conn:
                stored = summary.freshness(conn, today)
            time.sleep(1)
        assert stored, "the service did not store the new day by itself:\n" + log.read_text(errors="replace")[-3000:]
        # the page, opened again, reads the stored figures and says when they were computed
        found = False
        for _ in range(10):
            page.goto(f"{base}/coverage")
            page.wait_for_selector(READY)
            page.locator("text=数据计算于").first.wait_for(timeout=20_000)
            found = page.locator("text=实时计算").count() == 0
            if found:
                break
            time.sleep(2)
        assert found
        page.screenshot(path=str(tmp_path / "fresh.png"))
        with engine.connect() as conn:
            assert summary.needs_refresh(conn, today) is None
    finally:
        ctx.close()
        stop_server(proc)
        engine.dispose()
