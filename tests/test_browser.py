"""End to end in headless Chromium: the real `streamlit run app.py` server on a demo SQLite database.

Every page opens without an exception or error message, shows the demo banner and its charts, and
its key figures equal what the metric engine computes for the same database and date. A full-page
screenshot of each view goes to ``screenshots/`` under the repository root.

Run: ``.venv/bin/pytest -m browser -s tests/test_browser.py`` (needs /usr/bin/chromium).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from data_access import settings
from data_access import metrics as m
from data_access.dates import months_before
from data_access.scope import ALL, Scope
from data_access import supervision
from ui import format as fmt

from .conftest import require_browser, streamlit_server

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
VIEWPORT = {"width": 1920, "height": 1080}
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
TIMEOUT = 60_000  # ms, for a page's script run (the first run of a fresh server included)
DEMO = "演示数据"

playwright_api = require_browser(module=True)  # skipped without a browser; in CI (CI=true) a failure


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    """A SQLite database with demo data (3,000 households, seed 1, as of today); marked as demo."""
    from data_access.db import is_demo, make_engine, upgrade
    from data_access.demo import generate

    path = tmp_path_factory.mktemp("browser") / "demo.sqlite"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    generate(engine, households=3000, seed=1)
    assert is_demo(engine)
    yield url, engine
    engine.dispose()


@pytest.fixture(scope="session")
def server(demo_db, tmp_path_factory):
    """`streamlit run app.py` on a free port with DATABASE_URL set to the demo database."""
    url, _ = demo_db
    with streamlit_server(url, tmp_path_factory.mktemp("server") / "streamlit.log") as base:
        yield base


@pytest.fixture(scope="session")
def shots():
    SHOTS.mkdir(exist_ok=True)  # files are overwritten by name, not cleared: runs may overlap
    yield SHOTS
    print(f"\nBrowser test screenshots: {SHOTS.resolve()}")


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    ctx.set_default_timeout(TIMEOUT)
    ctx.add_init_script(QUIET_JS)
    pg = ctx.new_page()
    pg.base = server  # type: ignore[attr-defined]
    yield pg
    ctx.close()


@pytest.fixture(scope="session")
def today():
    return settings.today()


# ------------------------------------------------------------------------------------------- helpers


# Every document records the time of its last DOM change: Streamlit loads element components lazily,
# so a tile or chart can appear a moment after the script run has finished.
# It also counts script runs (fragment reruns included): window.__bfRuns.
QUIET_JS = """
window.__bfLast = performance.now();
window.__bfRuns = 0;
let bfState = null;
new MutationObserver(() => {
  window.__bfLast = performance.now();
  const app = document.querySelector('[data-testid="stApp"]');
  const state = app && app.getAttribute('data-test-script-state');
  if (state !== bfState) { bfState = state; if (state === 'running') window.__bfRuns += 1; }
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""


def settle(page, quiet_ms: int = 600, timeout_ms: int = 15_000) -> None:
    """Wait until the DOM has not changed for quiet_ms (give up quietly after timeout_ms)."""
    with contextlib.suppress(playwright_api.TimeoutError):
        page.wait_for_function(f"() => performance.now() - (window.__bfLast || 0) > {quiet_ms}",
                               timeout=timeout_ms, polling=100)


def wait_ready(page, title: str | None = None) -> None:
    """Wait until the script run has finished (and, given a title, that page's h1 is shown) and the
    page has stopped changing."""
    page.wait_for_selector(READY, timeout=TIMEOUT)
    if title:
        page.locator("h1", has_text=title).first.wait_for(timeout=TIMEOUT)
    page.wait_for_selector(READY, timeout=TIMEOUT)
    settle(page)  # a rerun requested at the end of a run (switch_page, st.rerun) starts within this
    page.wait_for_selector(READY, timeout=TIMEOUT)
    settle(page)


def open_page(page, path: str, title: str | None = None) -> None:
    page.goto(page.base + path)
    wait_ready(page, title)


def assert_clean(page) -> None:
    """No exception box and no st.error on the page."""
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, f"exception shown: {exc.first.inner_text()}"
    err = page.locator('[data-testid="stAlertContentError"]')
    assert err.count() == 0, f"error shown: {err.first.inner_text()}"


def metrics_shown(page) -> dict[str, str]:
    """st.metric tiles: label -> value."""
    out = {}
    for tile in page.locator('[data-testid="stMetric"]').all():
        label = tile.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        out[label] = tile.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return out


def assert_metrics(page, expected: dict[str, str], timeout_s: float = 15) -> None:
    """The st.metric tiles show the expected values (polled: tiles render a moment after the run)."""
    deadline = time.monotonic() + timeout_s
    while True:
        shown = metrics_shown(page)
        wrong = {k: (shown.get(k), v) for k, v in expected.items() if shown.get(k) != v}
        if not wrong or time.monotonic() > deadline:
            break
        page.wait_for_timeout(300)
    assert not wrong, f"label: (shown, engine) {wrong}; all shown: {shown}"


def assert_demo_banner(page) -> None:
    banner = page.locator('[data-testid="stAlertContentWarning"]', has_text=DEMO)
    playwright_api.expect(banner).to_have_count(1, timeout=15_000)


def plotly_count(page, timeout_ms: int = 15_000) -> int:
    """The number of rendered plotly charts (waiting a while for the first one)."""
    with contextlib.suppress(playwright_api.TimeoutError):
        page.locator(".js-plotly-plot .main-svg").first.wait_for(state="attached", timeout=timeout_ms)
    return page.locator(".js-plotly-plot").count()


def screenshot(page, shots: Path, name: str) -> None:
    """A full-page screenshot. Streamlit scrolls inside its main container, not the document, so the
    viewport is stretched to the content's height for the shot."""
    height = page.evaluate(
        "() => Math.max(...['[data-testid=\"stMain\"]', '[data-testid=\"stAppViewContainer\"]', 'section.main']"
        ".map(s => document.querySelector(s)).filter(Boolean).map(e => e.scrollHeight), document.body.scrollHeight)")
    height = max(VIEWPORT["height"], min(int(height), 12000))
    if height > VIEWPORT["height"]:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        settle(page)
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    if height > VIEWPORT["height"]:
        page.set_viewport_size(VIEWPORT)


def query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


# ------------------------------------------------------------------------------------------- expected figures


def tot(engine, metric: str, d: dt.date, scope: Scope = ALL, year: int | None = None) -> dict:
    fn = getattr(m, metric)
    df = fn(engine, year, "province", scope) if metric == "ratings" else fn(engine, d, "province", scope)
    return m.total_row(df, metric)


def compliance(cad: dict) -> str:
    return fmt.pct(1 - cad["overdue"] / cad["active_pairings"]) if cad["active_pairings"] else fmt.DASH


def expected_overview(engine, d, scope=ALL) -> dict[str, str]:
    cov, cap, cad = tot(engine, "coverage", d, scope), tot(engine, "cap", d, scope), tot(engine, "cadence", d, scope)
    rep = tot(engine, "replacements", d, scope)
    rt = tot(engine, "ratings", d, scope, year=d.year - 1)
    rated = rt["excellent"] + rt["qualified"] + rt["unqualified"]
    return {
        "结对覆盖率": fmt.pct(fmt.rate(cov["covered"], cov["households"])),
        "超上限责任人": fmt.num(cap["violators"]),
        "走访逾期结对": fmt.num(cad["overdue"]),
        "走访合规率": compliance(cad),
        "未批准调换": fmt.num(rep["unapproved"]),
        f"{d.year - 1}年度优秀占比": fmt.pct(fmt.rate(rt["excellent"], rated)),
    }


def expected_coverage(engine, d, scope=ALL) -> dict[str, str]:
    cov = tot(engine, "coverage", d, scope)
    return {
        "结对覆盖率": fmt.pct(fmt.rate(cov["covered"], cov["households"])),
        "在帮贫困户": fmt.num(cov["households"]),
        "未覆盖户": fmt.num(cov["households"] - cov["covered"]),
        "弱结对户": fmt.num(cov["weak"]),
    }


def expected_cap(engine, d, scope=ALL) -> dict[str, str]:
    cap = tot(engine, "cap", d, scope)
    return {
        "在帮责任人": fmt.num(cap["helpers"]),
        "超上限责任人": fmt.num(cap["violators"]),
        "超上限占比": fmt.pct(fmt.rate(cap["violators"], cap["helpers"])),
        "超出户数合计": fmt.num(cap["excess"]),
    }


def expected_cadence(engine, d, scope=ALL) -> dict[str, str]:
    cad = tot(engine, "cadence", d, scope)
    start = months_before(d.replace(day=1), 11)  # the 12 calendar months up to d's (pages/cadence.py)
    ph = m.total_row(m.photos(engine, start, d, "province", scope), "photos")
    return {
        "在帮结对": fmt.num(cad["active_pairings"]),
        "走访逾期结对": fmt.num(cad["overdue"]),
        "走访合规率": compliance(cad),
        "近12个月照片上传率": fmt.pct(fmt.rate(ph["with_photo"], ph["in_home_visits"])),
    }


def expected_ratings(engine, d, scope=ALL) -> dict[str, str]:
    rt = tot(engine, "ratings", d, scope, year=d.year - 1)
    rated = rt["excellent"] + rt["qualified"] + rt["unqualified"]
    return {"已考核责任人": fmt.num(rated), "优秀": fmt.num(rt["excellent"]), "合格": fmt.num(rt["qualified"]),
            "不合格": fmt.num(rt["unqualified"]), "未考核": fmt.num(rt["missing"])}


def expected_meeting(engine, d, scope=ALL) -> dict[str, str]:
    cov, cap, cad = tot(engine, "coverage", d, scope), tot(engine, "cap", d, scope), tot(engine, "cadence", d, scope)
    rep = tot(engine, "replacements", d, scope)
    return {
        "结对覆盖率": fmt.pct(fmt.rate(cov["covered"], cov["households"])),
        "走访逾期结对": fmt.num(cad["overdue"]),
        "超上限责任人": fmt.num(cap["violators"]),
        "未批准调换": fmt.num(rep["unapproved"]),
        "逾期未整改": fmt.num(supervision.totals(engine, d, scope)["overdue"]),  # the screen's 督办 figure
    }


def meeting_tiles(page) -> dict[str, str]:
    out = {}
    for tile in page.locator(".bf-tile").all():
        out[tile.locator(".bf-label").inner_text().strip()] = tile.locator(".bf-value").inner_text().strip()
    return out


# ------------------------------------------------------------------------------------------- tests
# The deep-link test comes first on purpose: it is then the very first request the fresh server gets,
# the case ui/boot.py handles (a page run before app.py's st.navigation has ever run).


def test_first_request_is_a_deep_link(page, demo_db, shots, today):
    """/cadence?region=<county> as the first request: the page runs inside app.py and shows the county."""
    _, engine = demo_db
    counties = m.cadence(engine, today, "county")
    county = counties[counties["active_pairings"] > 0].sort_values("active_pairings", ascending=False).iloc[0]
    open_page(page, f"/cadence?region={county['code']}", "走访频次")
    assert_clean(page)
    assert_demo_banner(page)  # app.py ran: its banner is there
    assert page.locator('[data-testid="stSidebarNav"]').count() == 1
    assert query(page).get("region") == county["code"]
    assert county["name"] in page.locator('[data-testid="stCaptionContainer"]').first.inner_text()
    assert_metrics(page, expected_cadence(engine, today, Scope(region=county["code"])))
    assert plotly_count(page) > 0
    screenshot(page, shots, "deep_link_cadence_county")


PAGES = [
    # path, title, expected figures, has charts
    ("/", "总览", expected_overview, True),
    ("/coverage", "结对覆盖", expected_coverage, True),
    ("/cap", "帮扶上限", expected_cap, True),
    ("/cadence", "走访频次", expected_cadence, True),
    ("/ratings", "年度考核", expected_ratings, True),
    ("/units", "派出单位", None, False),
]


@pytest.mark.parametrize(("path", "title", "expected", "charts"), PAGES, ids=[p[0] for p in PAGES])
def test_page(page, demo_db, shots, today, path, title, expected, charts):
    _, engine = demo_db
    open_page(page, path, title)
    assert_clean(page)
    assert_demo_banner(page)
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert f"数据截至 {fmt.date_zh(today)}" in body
    if expected:
        assert_metrics(page, expected(engine, today))
    if charts:
        assert plotly_count(page) > 0, "no plotly chart rendered"
        page.locator(".js-plotly-plot g.point").first.wait_for(state="attached")  # the charts have data
    else:
        page.locator('[data-testid="stDataFrame"]').first.wait_for()
    screenshot(page, shots, "overview" if path == "/" else path.strip("/"))


def _url_paths() -> list[str]:
    """The url_path of every page app.py lists (hidden aliases included)."""
    return re.findall(r'url_path="([^"]+)"', (ROOT / "app.py").read_text(encoding="utf-8"))


COVERED = {"home", "overview", "coverage", "cap", "cadence", "ratings", "units", "meeting"}


@pytest.mark.parametrize("url_path", [p for p in _url_paths() if p not in COVERED] or [None])
def test_other_pages(page, shots, url_path):
    """Pages added to app.py after this file was written: at least they open cleanly with the banner."""
    if url_path is None:
        pytest.skip("every page of app.py has its own test above")
    open_page(page, f"/{url_path}")
    page.locator("h1").first.wait_for()
    wait_ready(page)
    assert_clean(page)
    assert_demo_banner(page)
    screenshot(page, shots, url_path)


def test_unit_page(page, demo_db, shots, today):
    """/units?unit=<id>: the unit's own page with its figures."""
    _, engine = demo_db
    units = m.cap(engine, today, "unit").sort_values(["violators", "helpers", "code"], ascending=[False, False, True])
    unit = units.iloc[0]
    open_page(page, f"/units?unit={unit['code']}", "派出单位")
    assert_clean(page)
    assert_demo_banner(page)
    scope = Scope(unit=unit["code"])
    cap, cad = tot(engine, "cap", today, scope), tot(engine, "cadence", today, scope)
    assert_metrics(page, {"在帮责任人": fmt.num(cap["helpers"]), "超上限责任人": fmt.num(cap["violators"]),
                          "走访合规率": compliance(cad)})
    screenshot(page, shots, "unit")


def _click_bar(page, chart, name: str) -> None:
    """A real click on the bar of the row labelled `name`: the row scrolled into view first (a ranking is
    taller than the screen and worst first, so a big city's bar may sit below the fold, where a click hits
    nothing), then a click in the middle of the bar's visible part. A rate axis starts near the lowest
    figure, so the bar's path begins far left of the plot area: its bounding box is not where it is drawn."""
    tick = chart.locator("g.ytick text", has_text=name)
    tick.scroll_into_view_if_needed()
    settle(page)
    t = tick.bounding_box()
    assert t, f"{name} is not on the chart"
    row_y = t["y"] + t["height"] / 2
    boxes = [b for b in (p.bounding_box() for p in chart.locator("g.trace.bars g.point path").all()) if b]
    box = min(boxes, key=lambda b: abs(b["y"] + b["height"] / 2 - row_y))
    plot = chart.locator("rect.nsewdrag").first.bounding_box()
    left, right = max(box["x"], plot["x"]), min(box["x"] + box["width"], plot["x"] + plot["width"])
    assert right - left > 4, (box, plot)
    x, y = (left + right) / 2, box["y"] + box["height"] / 2
    assert 0 <= x < VIEWPORT["width"] and 0 <= y < VIEWPORT["height"], (x, y)
    page.mouse.click(x, y)


def _click_row(page, grid, name: str) -> None:
    """A click on the row-selection box of the table row whose first cell is `name` (the grid is drawn on a
    canvas; its rows are mirrored in an accessible table, the header first)."""
    grid.scroll_into_view_if_needed()
    settle(page)
    rows = grid.locator("table tr").evaluate_all("rs => rs.map(r => Array.from(r.cells).map(c => c.innerText.trim()))")
    i = next(i for i, cells in enumerate(rows) if name in cells)
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 15, box["y"] + 35 * i + 17)


def _select_box(page, label: str):
    """The filter bar's select box labelled exactly `label`."""
    return page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(
        has=page.locator("label", has_text=re.compile(f"^{re.escape(label)}$")))


def _wait_region(page, code: str, title: str) -> None:
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('region') === '{code}'", timeout=TIMEOUT)
    wait_ready(page, title)


def test_drill_down_by_clicking_a_bar(page, demo_db, shots, today):
    """On /coverage a click on a city's bar sets region= and shows that city's counties; a click on a county's
    table row drills on, a township's row further, and the filter bar shows the path and goes back up."""
    _, engine = demo_db
    cities = m.coverage(engine, today, "city")
    city = cities.sort_values(["households", "code"], ascending=[False, True]).iloc[0]  # a city with counties
    open_page(page, "/coverage", "结对覆盖")
    chart = page.locator(".js-plotly-plot").first
    chart.locator("g.trace.bars g.point path").first.wait_for()
    settle(page)
    _click_bar(page, chart, city["name"])
    _wait_region(page, city["code"], "结对覆盖")
    assert_clean(page)
    assert page.get_by_text("各县（市、区）覆盖情况").count() == 1
    assert city["name"] in page.locator('[data-testid="stCaptionContainer"]').first.inner_text()
    assert_metrics(page, expected_coverage(engine, today, Scope(region=city["code"])))
    counties = m.coverage(engine, today, "county", Scope(region=city["code"]))
    assert len(counties) > 1
    labels = page.locator(".js-plotly-plot").first.locator("g.ytick text").evaluate_all("els => els.map(e => e.textContent)")
    assert set(labels) == set(counties["name"]), "the chart does not show the city's counties"
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert _select_box(page, "市").locator("input").input_value() == city["name"]
    page.mouse.move(0, 0)  # no hover toolbar in the screenshot
    screenshot(page, shots, "coverage_city_drilled")

    # a county's table row: the county's townships, the county in the filter bar
    county = counties.sort_values(["households", "code"], ascending=[False, True]).iloc[0]
    _click_row(page, page.locator('[data-testid="stDataFrame"]').first, county["name"])
    _wait_region(page, county["code"], "结对覆盖")
    assert_clean(page)
    assert _select_box(page, "县（市、区）").locator("input").input_value() == county["name"]
    towns = m.coverage(engine, today, "township", Scope(region=county["code"]))
    town = towns.sort_values(["households", "code"], ascending=[False, True]).iloc[0]
    # a township: below the two select boxes, the filter bar shows the drill path and a way up
    _click_row(page, page.locator('[data-testid="stDataFrame"]').first, town["name"])
    _wait_region(page, town["code"], "结对覆盖")
    assert_clean(page)
    path = sidebar.get_by_text("已下钻到：")
    path.wait_for()
    assert town["name"] in path.inner_text()
    sidebar.get_by_role("button", name="返回上一级").click()
    _wait_region(page, county["code"], "结对覆盖")
    assert_clean(page)


def test_meeting_mode(page, demo_db, shots, today):
    """/meeting?refresh=5: huge figures, no sidebar, still right after two refreshes."""
    _, engine = demo_db
    expected = expected_meeting(engine, today)
    open_page(page, "/meeting?refresh=5")
    page.locator(".bf-tile").first.wait_for()
    assert_clean(page)
    assert meeting_tiles(page) == expected
    assert page.get_by_text(DEMO, exact=True).count() >= 1
    assert "每5秒刷新" in page.locator(".bf-head").inner_text()
    assert not page.locator('[data-testid="stSidebar"]').is_visible()
    assert plotly_count(page) > 0
    screenshot(page, shots, "meeting")
    runs = page.evaluate("window.__bfRuns")
    page.wait_for_timeout(12_000)
    page.wait_for_selector(READY, timeout=TIMEOUT)
    assert page.evaluate("window.__bfRuns") > runs, "the screen did not refresh itself within 12 s"
    assert_clean(page)
    assert meeting_tiles(page) == expected
    assert not page.locator('[data-testid="stSidebar"]').is_visible()
    assert plotly_count(page) > 0


# ------------------------------------------------------------------------------------------- hostile ledger text
# Names that are Markdown links and images, HTML tags, :directives:, autolinks (tests/hostile_ledger.py):
# every page shows them as the text they are; no <a>/<img> of theirs in the DOM, no request to their host.

HOSTILE_DATE = "2026-06-30"  # tests/pages_ledger.py's AS_OF
# any element pointing at the hostile host: links (HTML and SVG), images, frames, styles
EVIL_ELEMENTS_JS = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of ['href', 'xlink:href', 'src', 'srcset', 'style', 'data', 'action']) {
      const v = el.getAttribute(attr);
      if (v && v.includes('evil.example')) bad.push(el.tagName + ' ' + attr + '=' + v.slice(0, 120));
    }
  }
  return bad;
}"""


def _text(s: str) -> str:
    """Text as a reader sees it: the invisible word joiners of ui.format.md_text dropped, blanks collapsed."""
    return re.sub(r"\s+", " ", s.replace("\u2060", "")).strip()


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """`streamlit run app.py` on the hostile ledger (marked as demo data: it opens without a login)."""
    from .hostile_ledger import build_demo

    folder = tmp_path_factory.mktemp("hostile")
    with streamlit_server(build_demo(folder), folder / "streamlit.log") as base:
        yield base


def test_hostile_names_render_as_text(browser, hostile_server, shots):
    from data_access.privacy import mask_name

    from .hostile_ledger import (CITY, CITY_NAME, COUNTY_NAME, DEPARTMENT, HELPER_NAME, POSITION, TOWNSHIP,
                                 TOWNSHIP_NAME, UNIT_LINK, UNIT_TAGS)

    ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    ctx.set_default_timeout(TIMEOUT)
    ctx.add_init_script(QUIET_JS)
    evil: list[str] = []

    def block(route):
        evil.append(route.request.url)
        route.abort()

    ctx.route(re.compile(r"^[a-z]+://([^/]*\.)?evil\.example\b"), block)
    page = ctx.new_page()
    page.on("request", lambda r: evil.append(r.url) if "evil.example" in (urlparse(r.url).hostname or "") else None)
    page.base = hostile_server  # type: ignore[attr-defined]

    def view(path: str, title: str | None, shot: str | None = None) -> str:
        open_page(page, f"{path}{'&' if '?' in path else '?'}as_of={HOSTILE_DATE}", title)
        assert_clean(page)
        if plotly_count(page, timeout_ms=3000):
            page.locator(".js-plotly-plot .main-svg").first.wait_for(state="attached")
            settle(page)
        assert page.evaluate(EVIL_ELEMENTS_JS) == [], path
        if shot:
            page.mouse.move(0, 0)
            screenshot(page, shots, shot)
        return _text(page.locator('[data-testid="stApp"]').inner_text())

    def ticks() -> list[str]:
        return [_text(t) for t in page.locator(".js-plotly-plot g.ytick text").evaluate_all(
            "els => els.map(e => e.textContent)")]

    def h1() -> str:
        return _text(page.locator("h1").first.inner_text())

    try:
        # a unit's page: its name as the title, word for word; its helpers' page: unit, department, position
        body = view("/units?unit=U3", "派出单位", "hostile_unit")
        assert h1() == _text(f"派出单位：{UNIT_LINK}")
        assert _text(f"所属区划：{COUNTY_NAME}") in body
        view("/units?unit=U4", "派出单位")
        assert h1() == _text(f"派出单位：{UNIT_TAGS}")
        body = view("/units?helper=G", "帮扶责任人", "hostile_helper")
        assert h1() == _text(f"帮扶责任人：{mask_name(HELPER_NAME)}（G）")  # masked in the demo mode
        for part in (f"派出单位：{UNIT_LINK}", f"处室：{DEPARTMENT}", f"职务：{POSITION}"):
            assert _text(part) in body, part
        # charts: the units' names as tick labels (plotly would read <a>, <img> in them)
        view("/cap", "帮扶上限", "hostile_cap")
        assert {_text(UNIT_LINK), _text(UNIT_TAGS)} <= set(ticks())
        # the region's names in the scope caption and the sidebar, down to the township
        body = view(f"/coverage?region={CITY}", "结对覆盖")
        assert _text(f"范围：河北省 › {CITY_NAME}") in body and _text(COUNTY_NAME) in ticks()
        body = view(f"/cadence?region={TOWNSHIP}", "走访频次", "hostile_township")
        assert _text(f"已下钻到：{CITY_NAME} › {COUNTY_NAME} › {TOWNSHIP_NAME}") in body
        view(f"/map?region={CITY}", "地图")
        assert _text(CITY_NAME) in _text(page.locator(".js-plotly-plot .g-gtitle").first.text_content())
        # the meeting screen's hand-written HTML
        open_page(page, f"/meeting?region={CITY}&unit=U3&as_of={HOSTILE_DATE}")
        page.locator(".bf-tile").first.wait_for()
        plotly_count(page)
        settle(page)
        assert_clean(page)
        assert page.evaluate(EVIL_ELEMENTS_JS) == []
        assert _text(f"{CITY_NAME} · {UNIT_LINK}") in _text(page.locator(".bf-sub").inner_text())
        screenshot(page, shots, "hostile_meeting")
        open_page(page, f"/meeting?region={TOWNSHIP}&as_of={HOSTILE_DATE}")
        page.locator(".bf-tile").first.wait_for()
        assert page.evaluate(EVIL_ELEMENTS_JS) == []
        assert _text(TOWNSHIP_NAME) in _text(page.locator(".bf-sub").inner_text())
        assert page.locator(".bf-tiles").count() == 1  # the HTML block was not cut by the name's blank line
    finally:
        ctx.close()
    assert evil == [], f"the browser asked the hostile host for {evil}"
