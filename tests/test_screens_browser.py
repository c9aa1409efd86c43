"""Issue 14 in headless Chromium at the three screens of the issue: a 1920×1080 meeting room, a 1366×768
projector and a 390×844 phone, on the demo database of tests/test_browser.py.

* no page is wider than the screen (document and main block), at every viewport;
* the meeting screen does not scroll at 1366×768 and 1920×1080, at province, city and county scope,
  and its way back (返回看板) is on screen;
* on a phone the page opens on its content (the sidebar closed);
* no tile's label, figure or change is cut ("超上限责…") at 1366 px and on a phone;
* on a phone the map page's metric selector is on screen whole and the map shows all of Hebei;
* no English word of Streamlit's own on a user's screen (visible text and the placeholders of empty fields; the
  file formats CSV, Excel, PDF and Word are the buttons' names).

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
# a phone's browser says so (the map page fits its map to a phone's screen by it)
PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.0 Mobile/15E148 Safari/604.1")
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
                              is_mobile=w < 500, has_touch=w < 500, **({"user_agent": PHONE_UA} if w < 500 else {}))
    ctx.set_default_timeout(TIMEOUT)
    ctx.add_init_script(QUIET_JS)
    pg = ctx.new_page()
    pg.base = server  # type: ignore[attr-defined]
    yield pg, w, h
    ctx.close()


# the tiles' texts that do not fit their box: wider than it (Streamlit cuts them with an ellipsis)
CUT_TILES_JS = """() => {
  const cut = [];
  for (const t of document.querySelectorAll('[data-testid="stMetric"]')) {
    for (const part of ['stMetricLabel', 'stMetricValue', 'stMetricDelta']) {
      const box = t.querySelector(`[data-testid="${part}"]`);
      if (!box) continue;
      for (const e of [box, ...box.querySelectorAll('*')]) {
        if (e.closest('[data-testid="stTooltipIcon"]') || !e.clientWidth) continue;
        if (e.scrollWidth > e.clientWidth) { cut.push(`${part} ${box.innerText} (${e.scrollWidth} > ${e.clientWidth})`); break; }
      }
    }
  }
  return cut;
}"""

# the map page on a phone: where its metric selector's buttons end, and what the map shows (maplibre's bounds)
MAP_JS = """() => {
  const group = document.querySelector('[data-testid="stButtonGroup"] [role="radiogroup"]');
  const buttons = Array.from(group.querySelectorAll('button')).map(b => b.getBoundingClientRect().right);
  const gd = Array.from(document.querySelectorAll('.js-plotly-plot')).find(g => g._fullLayout && g._fullLayout.map);
  const b = gd._fullLayout.map._subplot.map.getBounds();
  const r = gd.getBoundingClientRect();
  return {groupW: group.scrollWidth, groupCW: group.clientWidth, buttons, left: r.left, right: r.right,
          west: b.getWest(), east: b.getEast(), south: b.getSouth(), north: b.getNorth()};
}"""


# visible English words: text on screen (not the visually hidden skip link or screen-reader labels) and the
# placeholders of visible empty fields
ENGLISH_JS = """() => {
  const ok = new Set(['CSV', 'Excel', 'PDF', 'Word']);
  const seen = (e) => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return r.width > 2 && r.height > 2 && r.right > 0 && r.bottom > 0 && s.visibility !== 'hidden' && s.opacity !== '0'
      && !e.closest('[aria-hidden="true"],noscript,script,style'); };
  const words = (t) => (t.match(/[A-Za-z]{3,}/g) || []).filter(w => !ok.has(w));
  const out = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walk.nextNode())) {
    const e = n.parentElement;
    if (!e || /Material/.test(getComputedStyle(e).fontFamily)) continue;  // an icon's ligature name, drawn as the icon
    if (words(n.textContent).length && seen(e)) out.push(n.textContent.trim().slice(0, 60));
  }
  for (const e of document.querySelectorAll('input[placeholder], textarea[placeholder]')) {
    if (!e.value && words(e.placeholder).length && seen(e)) out.push('placeholder: ' + e.placeholder);
  }
  return out;
}"""


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
    english = pg.evaluate(ENGLISH_JS)
    assert not english, f"/{path} at {w}×{h}: English on screen: {english}"
    if w < 500:  # a phone opens on the content: nothing of the sidebar over the middle of the screen
        covered = pg.evaluate("""() => { const e = document.elementFromPoint(innerWidth / 2, innerHeight / 2);
                                         return !!(e && e.closest('[data-testid="stSidebar"]')); }""")
        assert not covered, f"/{path}: the sidebar covers the page on a phone"
    if w < 1900 and path != "meeting":  # the meeting screen draws its own tiles
        cut = pg.evaluate(CUT_TILES_JS)
        assert not cut, f"/{path} at {w}×{h}: tile texts cut: {cut}"
    if path == "map" and w < 500:
        _map_fits_a_phone(pg, w)


def _map_fits_a_phone(pg, w: int) -> None:
    """Every button of the metric selector on screen (not scrolled out of it); the map inside the screen and
    showing every county of Hebei (the box of all county polygons within the map's view)."""
    from ui import maps

    pg.wait_for_function("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                         ".some(g => g._fullLayout && g._fullLayout.map && g._fullLayout.map._subplot)", timeout=TIMEOUT)
    settle(pg)
    m = pg.evaluate(MAP_JS)
    assert m["groupW"] <= m["groupCW"] + 1 and max(m["buttons"]) <= w, f"the metric selector is cut: {m}"
    assert m["left"] >= 0 and m["right"] <= w, f"the map is wider than the screen: {m}"
    boxes = maps.bounds("county").values()
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    assert m["west"] <= west and m["east"] >= east and m["south"] <= south and m["north"] >= north, (
        f"the map shows lon {m['west']:.2f}–{m['east']:.2f}, lat {m['south']:.2f}–{m['north']:.2f}; "
        f"Hebei is lon {west:.2f}–{east:.2f}, lat {south:.2f}–{north:.2f}")


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
    if scope != "county":  # a county scope draws a ranking, no map
        _nothing_over_the_map(pg, scope, w, h)


# the points of the county outlines drawn (lon, lat) that lie under the colour bar or under the boundary note,
# or outside the map's canvas (cut off)
OVER_MAP_JS = """(outlines) => {
  const gd = Array.from(document.querySelectorAll('.js-plotly-plot')).find(g => g._fullLayout && g._fullLayout.map);
  const map = gd._fullLayout.map._subplot.map;
  const drawn = new Set(gd.data.flatMap(t => t.locations || []));
  const points = Object.entries(outlines).filter(([code]) => drawn.has(code)).flatMap(([, pts]) => pts);
  const c = map.getCanvas().getBoundingClientRect();
  const boxes = {bar: gd.querySelector('.colorbar').getBoundingClientRect()};
  const note = Array.from(gd.querySelectorAll('.annotation')).find(a => a.textContent.includes('仅作示意'));
  if (note) boxes.note = note.getBoundingClientRect();
  const under = {bar: [], note: [], cut: []};
  for (const [lon, lat] of points) {
    const p = map.project([lon, lat]);
    const x = c.left + p.x, y = c.top + p.y;
    if (x < c.left || x > c.right || y < c.top || y > c.bottom) under.cut.push([lon, lat]);
    for (const [k, b] of Object.entries(boxes))
      if (x >= b.left && x <= b.right && y >= b.top && y <= b.bottom) under[k].push([lon, lat]);
  }
  const r = (b) => b && [Math.round(b.left), Math.round(b.top), Math.round(b.right), Math.round(b.bottom)];
  return {bar: under.bar.length, note: under.note.length, cut: under.cut.length, drawn: drawn.size,
          first: [...under.bar, ...under.note, ...under.cut].slice(0, 3),
          barBox: r(boxes.bar), noteBox: r(boxes.note), canvas: r(c)};
}"""


def _outlines() -> dict[str, list[list[float]]]:
    """Every third vertex of each county polygon, by county code: enough to find an overlap, light to project."""
    from ui import maps

    out = {}
    for feature in maps.geojson("county")["features"]:
        points = []

        def walk(coords):
            if coords and isinstance(coords[0], (int, float)):
                points.append([coords[0], coords[1]])
            else:
                for c in coords:
                    walk(c)

        walk(feature["geometry"]["coordinates"])
        out[str(feature["id"])] = points[::3]
    return out


def _nothing_over_the_map(pg, scope: str, w: int, h: int) -> None:
    """The meeting map shows every county it draws whole, and its colour bar and boundary note lie beside them,
    over none (the map's zoom was fitted on the server for a box of a guessed size: at 1366×768 the bar hid
    the east of Hebei, the note its southern tip, and a city's map was cut at both sides)."""
    pg.wait_for_function("() => Array.from(document.querySelectorAll('.js-plotly-plot')).some(g => g._fullLayout"
                         " && g._fullLayout.map && g._fullLayout.map._subplot && g.querySelector('.colorbar'))",
                         timeout=TIMEOUT)
    settle(pg)
    m = pg.evaluate(OVER_MAP_JS, _outlines())
    assert m["drawn"] > 1 and m["bar"] == m["note"] == m["cut"] == 0, f"meeting map ({scope}) at {w}×{h}: {m}"


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
