"""Issue 14 in headless Chromium at the three screens of the issue: a 1920×1080 meeting room, a 1366×768
projector and a 390×844 phone, on the demo database of tests/test_browser.py.

* no page is wider than the screen (document and main block), at every viewport;
* the meeting screen does not scroll at 1366×768 and 1920×1080, at province, city and county scope,
  and its way back (返回看板) is on screen;
* on a phone the page opens on its content (the sidebar closed).

Screenshots go to screenshots/screen_<page>_<width>x<height>.png for a person to look at.
Run: ``.venv/bin/pytest -m browser -s tests/test_screens_browser.py``.
"""

from __future__ import annotations

import pytest

from .test_browser import (  # noqa: F401 - fixtures
    QUIET_JS, TIMEOUT, assert_clean, demo_db, server, settle, shots, wait_ready,
)

pytestmark = pytest.mark.browser

VIEWPORTS = [(1920, 1080), (1366, 768), (390, 844)]
PAGES = ["", "map", "coverage", "cap", "cadence", "ratings", "units", "supervision", "meeting"]
MEETING_SCOPES = {"province": "", "city": "?region=130100", "county": "?region=130102"}

# the widths and heights that overflow: the document's and the main block's (Streamlit scrolls stMain)
SIZES_JS = """() => {
  const m = document.querySelector('[data-testid="stMain"]');
  const d = document.documentElement;
  return {docW: d.scrollWidth, winW: window.innerWidth, mainW: m.scrollWidth, mainCW: m.clientWidth,
          mainH: m.scrollHeight, mainCH: m.clientHeight, docH: d.scrollHeight, winH: window.innerHeight};
}"""


@pytest.fixture(params=VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def screen(request, browser, server):
    w, h = request.param
    ctx = browser.new_context(viewport={"width": w, "height": h}, locale="zh-CN", timezone_id="Asia/Shanghai",
                              is_mobile=w < 500, has_touch=w < 500)
    ctx.set_default_timeout(TIMEOUT)
    ctx.add_init_script(QUIET_JS)
    pg = ctx.new_page()
    pg.base = server  # type: ignore[attr-defined]
    yield pg, w, h
    ctx.close()


def _open(pg, path: str) -> dict:
    pg.goto(pg.base + "/" + path)
    wait_ready(pg)
    # charts and maps are drawn a moment after the run; wait for them before measuring
    if pg.locator('[data-testid="stPlotlyChart"]').count():
        pg.wait_for_function("() => document.querySelectorAll('.main-svg, canvas').length > 0", timeout=TIMEOUT)
    settle(pg, quiet_ms=1000)
    return pg.evaluate(SIZES_JS)


def _no_sideways(sizes: dict, what: str) -> None:
    assert sizes["docW"] <= sizes["winW"], f"{what}: page {sizes['docW']} px wide in a {sizes['winW']} px screen"
    assert sizes["mainW"] <= sizes["mainCW"], f"{what}: main block {sizes['mainW']} px in {sizes['mainCW']} px"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p or "overview")
def test_no_page_overflows_sideways(screen, shots, path):
    pg, w, h = screen
    sizes = _open(pg, path)
    assert_clean(pg)
    pg.screenshot(path=str(shots / f"screen_{path or 'overview'}_{w}x{h}.png"))
    _no_sideways(sizes, f"/{path} at {w}×{h}")
    if w < 500:  # a phone opens on the content: nothing of the sidebar over the middle of the screen
        covered = pg.evaluate("""() => { const e = document.elementFromPoint(innerWidth / 2, innerHeight / 2);
                                         return !!(e && e.closest('[data-testid="stSidebar"]')); }""")
        assert not covered, f"/{path}: the sidebar covers the page on a phone"


@pytest.mark.parametrize("scope", list(MEETING_SCOPES))
def test_meeting_screen_fits_without_scrolling(screen, shots, scope):
    pg, w, h = screen
    sizes = _open(pg, "meeting" + MEETING_SCOPES[scope])
    assert_clean(pg)
    pg.screenshot(path=str(shots / f"screen_meeting_{scope}_{w}x{h}.png"))
    _no_sideways(sizes, f"meeting ({scope}) at {w}×{h}")
    exit_link = pg.get_by_text("返回看板")
    assert exit_link.is_visible()
    box = exit_link.bounding_box()
    assert box and box["y"] + box["height"] <= h and box["x"] + box["width"] <= w  # on screen, not below it
    if w >= 1000:  # a projector: everything on one screen
        assert sizes["mainH"] <= sizes["mainCH"] + 1, f"meeting ({scope}) scrolls at {w}×{h}: {sizes}"
        assert sizes["docH"] <= sizes["winH"] + 1


def test_long_tables_are_shown_whole_not_in_a_ten_row_box(browser, server, shots):
    """The units list of the demo (hundreds of units) is not a ten-row scroll box: the table is as tall as
    many more rows (Streamlit's "content" height, up to its 10,000 px cap)."""
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    ctx.set_default_timeout(TIMEOUT)
    ctx.add_init_script(QUIET_JS)
    pg = ctx.new_page()
    try:
        pg.goto(server + "/units")
        wait_ready(pg)
        grid = pg.locator('[data-testid="stDataFrame"]').first
        grid.wait_for()
        settle(pg)
        height = grid.bounding_box()["height"]
        assert height > 40 * 35, f"the units table is {height:.0f} px tall: a scroll box, not the whole list"
    finally:
        ctx.close()
