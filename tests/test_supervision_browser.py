"""督办 end to end in a real browser: a county leader picks two overdue pairings of a unit and issues an order,
sees it on the 督办整改 page; the next ledger import records an in-home visit to one of the households, and the
page shows that item 已整改 and the other still 整改中 — judged from the ledger, on the served app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from data_access import db, settings, users
from data_access.ledger import import_ledger

from .conftest import CHROMIUM_ARGS, streamlit_server, write_ledger  # noqa: F401
from .pages_ledger import build

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parent.parent / "screenshots"
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
PW = "correct-horse-1"


def wait(page) -> None:
    page.wait_for_selector(READY)
    page.wait_for_timeout(400)
    page.wait_for_selector(READY)


def test_issue_then_ledger_rectifies(browser, tmp_path):
    url = build(tmp_path)
    engine = db.make_engine(url)
    users.add_user(engine, "changan", PW, "county", region="130102")
    SHOTS.mkdir(exist_ok=True)
    with streamlit_server(url, tmp_path / "server.log") as base:
        ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai")
        ctx.set_default_timeout(60_000)
        page = ctx.new_page()
        try:
            page.goto(f"{base}/cadence")
            wait(page)
            page.get_by_label("用户名").fill("changan")
            page.get_by_label("密码").fill(PW)
            page.get_by_role("button", name="登录").click()
            wait(page)
            page.get_by_role("heading", name="走访频次").wait_for()
            page.get_by_text("下发督办单（走访逾期）").click()
            wait(page)
            page.get_by_text("选择部分记录").click()
            wait(page)
            picker = page.get_by_test_id("stMultiSelect").filter(has_text="选择结对")
            shown = picker.inner_text() + (picker.locator("input").get_attribute("placeholder") or "")
            assert "点击选择" in shown and "Choose" not in shown, shown
            for subject in ("PG1", "PG2"):
                option = page.get_by_role("option", name=subject, exact=True)
                # Streamlit 1.67's multiselect sometimes ignores the first click after the radio above reran
                # the page (the field takes the focus, its menu stays shut); a second click opens it
                for _ in range(3):
                    picker.locator("input").click()
                    try:
                        option.wait_for(timeout=5_000)
                        break
                    except Exception:  # noqa: BLE001 - the menu did not open: click again
                        continue
                menu = page.get_by_role("listbox").first.inner_text()  # Streamlit's own words stay out of it
                assert "Select all" not in menu and "options" not in menu, menu
                option.click()
                wait(page)
            page.keyboard.press("Escape")
            page.get_by_role("button", name=re.compile(r"下发督办单（2 条）")).click()
            wait(page)
            page.get_by_text(re.compile("已下发督办单 DB")).wait_for()
            page.screenshot(path=str(SHOTS / "supervision_issue.png"), full_page=True)

            page.goto(f"{base}/supervision")
            wait(page)
            page.get_by_role("heading", name="督办整改").wait_for()
            page.get_by_test_id("stSelectbox").filter(has_text="查看督办单").locator("input").click()
            page.get_by_role("option", name=re.compile(r"^DB\d{8}-001")).click()
            wait(page)
            grid = page.get_by_test_id("stDataFrame").last
            assert grid.is_visible()
            body = page.locator("body").inner_text()
            assert "逾期未整改" in body

            # the next ledger import: G visits household H1 at home today
            visits = [{"visit_id": "VNEW1", "helper_id": "G", "household_id": "H1",
                       "visit_date": settings.today().isoformat(), "mode": "in_home", "photo_uploaded": "1"}]
            import_ledger(engine, write_ledger(tmp_path / "next", {"visits": visits}))

            page.reload()
            wait(page)
            page.get_by_test_id("stSelectbox").filter(has_text="查看督办单").locator("input").click()
            page.get_by_role("option", name=re.compile(r"^DB\d{8}-001")).click()
            wait(page)
            page.wait_for_timeout(1500)  # the items grid is drawn on a canvas: read its cells through the DOM
            page.screenshot(path=str(SHOTS / "supervision_rectified.png"), full_page=True)
            metrics = page.get_by_test_id("stMetric").all_inner_texts()
            text = " ".join(metrics)
            assert re.search(r"已整改\s*1", text) and re.search(r"整改中\s*1", text), text
        finally:
            ctx.close()
    engine.dispose()
