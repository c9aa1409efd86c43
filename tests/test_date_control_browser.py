"""Issue 14, the as-of date control, in headless Chromium on the demo database of tests/test_browser.py.

"Typing a date and pressing Enter does not apply it; it applies on leaving the field, and then the old figures stay
on screen under the new date while it computes; a CSV downloaded right after carries the old date." Measured here:

* a date typed into the filter bar's field and Enter: the URL, the caption and the figures change (the engine's
  figures of that date); the calendar picker still works; a date out of range says so in Chinese, is not applied
  and leaves the page as it was;
* while the new date computes, the old figures are faded out (the tiles blurred too) and take no clicks: from the
  Enter on, frame by frame, no tile is drawn above 20 % opacity, also in the frames that already show the new
  date's caption; the server's messages after the new caption are held back (a run that computes for as long as
  the test needs), the page is measured and photographed in that state (screenshots/date_control_computing.png),
  and a click on the old 下载 CSV button downloads nothing;
* a download right after the change carries the new date: the CSV and Excel files of the list (file name, the
  Excel title rows, the rows) and 下载通报; typing a date and clicking 下载 CSV directly (the click takes the focus
  out of the field, which applies the date) downloads no file of the old date.

Screenshots go to screenshots/date_control_*.png.
Run: ``.venv/bin/pytest -m browser -s tests/test_date_control_browser.py``.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from data_access import metrics as m
from ui import format as fmt

from .test_browser import (  # noqa: F401 - fixtures
    QUIET_JS, TIMEOUT, VIEWPORT, assert_clean, assert_metrics, demo_db, expected_cap, metrics_shown,
    query, server, settle, shots, today, wait_ready,
)

pytestmark = pytest.mark.browser

FIELD = '[data-testid="stSidebar"] [data-testid="stDateInputField"]'

# every figure tile of the page: its value, whether Streamlit marks it stale, and how it is drawn
TILES_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stMetric"]')].map(m => {
  const c = m.closest('[data-testid="stElementContainer"]'), s = getComputedStyle(c);
  return {label: m.querySelector('[data-testid="stMetricLabel"]').innerText.trim(),
          value: m.querySelector('[data-testid="stMetricValue"]').innerText.trim(),
          stale: c.getAttribute('data-stale'), opacity: parseFloat(s.opacity), events: s.pointerEvents};
})"""
STATE_JS = "() => document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state')"

# Frame by frame from an Enter on (window.__bfRec): the figure tiles' values and opacities and the scope caption,
# as each frame is about to be painted.
FRAMES_JS = """
window.__bfFrames = [];
window.__bfRec = false;
window.addEventListener('keydown', e => { if (e.key === 'Enter') window.__bfEnterAt = performance.now(); }, true);
(function frame() {
  if (window.__bfRec && window.__bfEnterAt !== undefined) {
    const cap = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stCaptionContainer"]')]
      .map(e => e.innerText).find(t => t.includes('数据截至')) || '';
    const tiles = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stMetric"]')].map(m =>
      [m.querySelector('[data-testid="stMetricValue"]').innerText.trim(),
       parseFloat(getComputedStyle(m.closest('[data-testid="stElementContainer"]')).opacity)]);
    window.__bfFrames.push({t: performance.now() - window.__bfEnterAt, caption: cap, tiles: tiles});
  }
  requestAnimationFrame(frame);
})();
"""


class Gate:
    """Passes the server's messages to the page until one holds ``marker``, then holds back the rest until
    ``release()``: the page stays as it is in the middle of a run (new caption drawn, figures still computing)."""

    def __init__(self):
        self.marker: bytes | None = None
        self.holding = False
        self.held: list = []
        self.ws = None

    def route(self, ws):
        server = ws.connect_to_server()
        self.ws = ws

        def from_server(msg):
            if self.holding:
                self.held.append(msg)
                return
            ws.send(msg)
            if self.marker is not None and isinstance(msg, (bytes, bytearray)) and self.marker in msg:
                self.marker, self.holding = None, True

        server.on_message(from_server)
        ws.on_message(server.send)

    def hold_after(self, text: str) -> None:
        self.marker = text.encode()

    def wait_holding(self, page) -> None:
        for _ in range(TIMEOUT // 100):
            if self.holding:
                return
            page.wait_for_timeout(100)
        raise AssertionError(f"the server never sent {self.marker!r}")

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for msg in held:
            self.ws.send(msg)


@pytest.fixture
def gated(browser, server):
    ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True)
    ctx.set_default_timeout(TIMEOUT)
    ctx.add_init_script(QUIET_JS)
    ctx.add_init_script(FRAMES_JS)
    gate = Gate()
    ctx.route_web_socket("**/_stcore/stream", gate.route)
    pg = ctx.new_page()
    pg.base = server  # type: ignore[attr-defined]
    yield pg, gate
    gate.release()
    ctx.close()


def open_at(page, path: str, title: str) -> None:
    page.goto(page.base + path)
    wait_ready(page, title)
    assert_clean(page)


def type_date(page, d: dt.date) -> None:
    """Click the field's year and type the date's digits (the field moves on to month and day by itself)."""
    year = page.locator(FIELD).locator('[role="spinbutton"]').first
    box = year.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.keyboard.type(d.strftime("%Y%m%d"))
    segments = page.locator(FIELD).locator('[role="spinbutton"]').all_inner_texts()
    assert "-".join(s.strip() for s in segments) == d.isoformat(), segments


def caption(page) -> str:
    return page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]', has_text="数据截至").first.inner_text()


def other_date(engine, day: dt.date) -> dt.date:
    """A date some months back whose 帮扶上限 figures differ from ``day``'s (so that a change shows)."""
    for back in (150, 230, 320, 410, 500):
        d = day - dt.timedelta(days=back)
        if expected_cap(engine, d) != expected_cap(engine, day):
            return d
    raise AssertionError("the demo data has the same figures on every date tried")


def download(page, button) -> tuple[str, bytes]:
    """Click a download button and return the file. The click reruns nothing (its audit row is written while the
    file is built): Streamlit 1.67's "Failed to generate file for download" — a click's rerun dropping the file id
    the click asked for — must not come back, so there is no second try."""
    with page.expect_download(timeout=TIMEOUT // 2) as info:
        button.click()
    d = info.value
    assert not page.locator('[data-testid="stDownloadButtonError"]').count()
    return d.suggested_filename, open(d.path(), "rb").read()


def list_buttons(page, kind: str):
    return page.get_by_role("button", name=f"下载 {kind}").first


def test_enter_applies_the_date_and_the_old_figures_are_hidden_until_the_new_ones_come(gated, demo_db, shots, today):
    page, gate = gated
    _, engine = demo_db
    open_at(page, "/cap", "帮扶上限")
    before = metrics_shown(page)
    assert before == expected_cap(engine, today)
    new = other_date(engine, today)

    gate.hold_after(f"数据截至 {fmt.date_zh(new)}")  # the scope caption of the new date's run
    type_date(page, new)
    page.evaluate("window.__bfRec = true")
    page.keyboard.press("Enter")
    gate.wait_holding(page)
    page.wait_for_timeout(500)
    page.evaluate("window.__bfRec = false")

    # every frame from the Enter on: the old figures greyed out at once — also in the frames that already show
    # the new date's caption above them
    frames = page.evaluate("window.__bfFrames")
    assert frames, "no frame recorded after the Enter"
    under_new = [f for f in frames if fmt.date_zh(new) in f["caption"]]
    assert under_new, "no frame showed the new date's caption"
    legible = [f for f in frames if any(opacity > 0.2 for _, opacity in f["tiles"])]
    assert not legible, f"old figures drawn legibly after the Enter: {legible[:3]}"

    # mid-run: the new date in the URL and the caption; the old figures greyed, blurred, taking no clicks
    assert query(page).get("as_of") == new.isoformat()
    assert f"数据截至 {fmt.date_zh(new)}" in caption(page)
    assert page.evaluate(STATE_JS) == "running"
    tiles = page.evaluate(TILES_JS)
    assert {t["label"]: t["value"] for t in tiles} == before  # the old figures, still in the page...
    for t in tiles:  # ...but not to be read or clicked
        assert t["stale"] == "true" and t["opacity"] <= 0.2 and t["events"] == "none", t
    page.screenshot(path=str(shots / "date_control_computing.png"))
    # the old list's download button takes no click: nothing is downloaded
    files: list[str] = []
    page.on("download", lambda d: files.append(d.suggested_filename))
    old_csv = list_buttons(page, "CSV")
    old_csv.scroll_into_view_if_needed()
    box = old_csv.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(1500)
    assert files == [], f"a click on the previous screen downloaded {files}"

    gate.release()
    wait_ready(page, "帮扶上限")
    assert_clean(page)
    assert_metrics(page, expected_cap(engine, new))
    tiles = page.evaluate(TILES_JS)
    assert all(t["stale"] == "false" and t["opacity"] == 1 and t["events"] == "auto" for t in tiles), tiles
    assert files == []
    page.screenshot(path=str(shots / "date_control_applied.png"))

    # the downloads now: the new date's list
    name, data = download(page, list_buttons(page, "CSV"))
    assert name == f"cap_{new.isoformat()}.csv"
    rows = data.decode("utf-8-sig").splitlines()[1:]
    assert len(rows) == m.total_row(m.cap(engine, new, "province"), "cap")["violators"]
    name, data = download(page, list_buttons(page, "Excel"))
    assert name == f"cap_{new.isoformat()}.xlsx"
    ws = load_workbook(io.BytesIO(data)).active
    assert ws["A1"].value == "超上限责任人清单"
    assert ws["A2"].value.endswith(f"数据截至：{fmt.date_zh(new)}"), ws["A2"].value


def test_a_download_clicked_right_after_typing_a_date_is_never_the_old_dates(gated, demo_db, shots, today):
    """Type a date and click 下载 CSV at once, as the issue's user did: the click takes the focus out of the field,
    which applies the date; that click downloads nothing (before, it downloaded the old date's file), and the
    next one downloads the new date's file. 下载通报 follows the new date too."""
    page, _ = gated
    _, engine = demo_db
    open_at(page, "/cap", "帮扶上限")
    new = other_date(engine, today)
    files: list[str] = []
    page.on("download", lambda d: files.append(d.suggested_filename))
    csv = list_buttons(page, "CSV")
    csv.scroll_into_view_if_needed()
    settle(page)
    box = csv.bounding_box()
    type_date(page, new)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()  # a quick click: the new run has not even started when the button is released
    page.mouse.up()
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('as_of') === '{new.isoformat()}'",
                           timeout=TIMEOUT)
    wait_ready(page, "帮扶上限")
    assert files == [], f"the click that applied the date downloaded {files}"
    assert f"数据截至 {fmt.date_zh(new)}" in caption(page)
    assert_metrics(page, expected_cap(engine, new))
    name, _ = download(page, list_buttons(page, "CSV"))
    assert name == f"cap_{new.isoformat()}.csv"

    # 下载通报 of the new date (the Excel briefing: its summary sheet names the date)
    page.get_by_role("button", name="下载通报").first.click()
    page.get_by_text(f"数据截至{fmt.date_zh(new)}").first.wait_for()
    name, data = download(page, page.get_by_role("button", name="下载通报（Excel）"))
    assert new.isoformat() in name and today.isoformat() not in name, name
    summary = load_workbook(io.BytesIO(data))["概况"]
    assert summary["A2"].value.endswith(f"数据截至：{fmt.date_zh(new)}"), summary["A2"].value


def test_a_date_out_of_range_is_refused_in_chinese_and_changes_nothing(gated, shots, today):
    page, _ = gated
    open_at(page, "/cap", "帮扶上限")
    shown = metrics_shown(page)
    runs = page.evaluate("window.__bfRuns")
    type_date(page, dt.date(2013, 5, 5))
    page.keyboard.press("Enter")
    page.wait_for_timeout(1500)
    message = page.evaluate("e => getComputedStyle(e, '::after').content",
                            page.locator('[data-testid="stSidebar"] [data-testid="stDateInput"]').element_handle())
    assert message == f'"日期超出范围：请输入 2014-01-01 至 {today.isoformat()}（今天）之间的日期。"'
    assert page.locator('[data-testid="stDateInputCalendar"]').count() == 0  # the calendar does not hide it
    assert "as_of" not in query(page) and page.evaluate("window.__bfRuns") == runs  # nothing applied, no rerun
    assert not page.evaluate("document.documentElement.classList.contains('bf-pending')")
    tiles = page.evaluate(TILES_JS)
    assert all(t["opacity"] == 1 and t["events"] == "auto" for t in tiles), tiles  # the page is not greyed
    assert metrics_shown(page) == shown
    page.screenshot(path=str(shots / "date_control_out_of_range.png"))

    # a good date then applies as usual
    good = today - dt.timedelta(days=31)
    type_date(page, good)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('as_of') === '{good.isoformat()}'",
                           timeout=TIMEOUT)
    wait_ready(page, "帮扶上限")
    assert f"数据截至 {fmt.date_zh(good)}" in caption(page)


def test_the_calendar_still_picks_a_date(gated, today):
    page, _ = gated
    open_at(page, "/cap", "帮扶上限")
    page.locator('[data-testid="stSidebar"] [data-testid="stDateInputCalendarButton"]').click()
    calendar = page.locator('[data-testid="stDateInputCalendar"]')
    calendar.get_by_role("button", name="Previous month").click()
    first = today.replace(day=1) - dt.timedelta(days=1)
    day = first.replace(day=15)
    calendar.locator(f'[role="gridcell"] [role="button"][aria-label^="{fmt.date_zh(day)}"]').click()
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('as_of') === '{day.isoformat()}'",
                           timeout=TIMEOUT)
    wait_ready(page, "帮扶上限")
    assert f"数据截至 {fmt.date_zh(day)}" in caption(page)
