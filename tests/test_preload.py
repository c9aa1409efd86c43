"""The chart and table chunks loaded while the server runs the page (ui/preload.py, issue 14).

- Streamlit ships exactly the chunks the preload names, and its entry script imports them lazily by those names
  (so a Streamlit upgrade that renames or drops them fails here, not silently in the browser);
- NO_CHART_PAGES is true: those pages draw no plotly chart on their first view, every other page does (AppTest);
- the real `bangfu serve` (serve_app.py) adds the script to the HTML document of every page — only the table's
  chunk on pages without a chart — with a right content length, also when the browser accepts gzip, and leaves
  other responses alone; BANGFU_CHART_PRELOAD=0 turns it off;
- in Chromium the chart chunk is fetched before the document's DOMContentLoaded on a chart page (without the
  preload it is fetched only once the script run has sent its first chart, long after), the page draws its charts
  without an error, and the units page loads no chart chunk at all.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
import streamlit

from ui import preload

from .conftest import streamlit_server
from .pages_ledger import ADMIN, ADMIN_PASSWORD
from .test_pages import app_db, page_db, run  # noqa: F401  (fixtures)

STATIC = Path(streamlit.__file__).parent / "static"
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def test_streamlit_ships_the_chunks_the_preload_names():
    names = preload.chunk_names()
    assert set(names) == {"plotly", "table"}, names
    assert names["plotly"].startswith("PlotlyChart.") and names["table"].startswith("DataFrame.")
    index = (STATIC / "index.html").read_text()
    entry = re.search(r'<script type="module" crossorigin src="\./static/js/(index\.[\w-]+\.js)"', index)
    assert entry, "Streamlit's entry script moved: the preload resolves the chunks next to it"
    code = (STATIC / "static" / "js" / entry.group(1)).read_text()
    for name in names.values():  # the entry's lazy import of the same file, so the module is reused
        assert f"import(`./{name}`)" in code, name


def test_the_chunk_names_are_found_by_pattern_or_not_at_all(tmp_path):
    for f in ("PlotlyChart.Ab_1.js", "DataFrame.-x9.js", "index.Q.js", "PlotlyChartX.js"):
        (tmp_path / f).write_text("")
    assert preload.chunk_names(tmp_path) == {"plotly": "PlotlyChart.Ab_1.js", "table": "DataFrame.-x9.js"}
    (tmp_path / "PlotlyChart.Cd_2.js").write_text("")  # two candidates: none chosen
    assert preload.chunk_names(tmp_path) == {"table": "DataFrame.-x9.js"}
    assert preload.chunk_names(tmp_path / "missing") == {}


def test_the_tag_per_page():
    chunks = {"plotly": "PlotlyChart.A.js", "table": "DataFrame.B.js"}
    for path in ("/", "/cadence", "/map", "/meeting", "/base/coverage"):
        tag = preload.tag_for(path, chunks).decode()
        assert '["PlotlyChart.A.js", "DataFrame.B.js"]' in tag, path
        assert tag.count('rel="modulepreload"') == 2
    for path in ("/units", "/supervision/", "/base/audit"):
        tag = preload.tag_for(path, chunks).decode()
        assert '["DataFrame.B.js"]' in tag and "PlotlyChart" not in tag, path
    assert preload.tag_for("/cadence", {}) == b""
    assert preload.page_of("/") == "" and preload.page_of("/a/units/") == "units"
    # which responses are looked at: page documents, not the API, scripts or media
    assert all(preload._document(p) for p in ("/", "/cadence", "/base/units"))
    assert not any(preload._document(p) for p in ("/_stcore/health", "/static/js/a.js", "/media/x.png",
                                                  "/favicon.png", "/component/c/index.html"))


PAGE_FILES = {"": "overview", "coverage": "coverage", "cadence": "cadence", "cap": "cap", "ratings": "ratings",
              "units": "units", "map": "map", "meeting": "meeting", "supervision": "supervision", "audit": "audit"}


@pytest.mark.parametrize("url_path", sorted(PAGE_FILES))
def test_no_chart_pages_are_those_without_a_chart(app_db, url_path):  # noqa: F811
    at = run(PAGE_FILES[url_path])
    charts = at.get("plotly_chart")
    if url_path in preload.NO_CHART_PAGES:
        assert not charts, f"/{url_path} draws a plotly chart on its first view: drop it from NO_CHART_PAGES"
    else:
        assert charts, f"/{url_path} draws no plotly chart on its first view: add it to NO_CHART_PAGES"


def _get(url: str, gzip: bool = False):
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzip else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers, r.read()


@pytest.fixture(scope="module")
def served(page_db, tmp_path_factory):  # noqa: F811
    """The real `bangfu serve` (serve_app.py) on the pages' database, without the warm-up."""
    url, _ = page_db
    log = tmp_path_factory.mktemp("preload") / "serve.log"
    with streamlit_server(url, log, env={"BANGFU_WARM_UP": "0"}, script="serve_app.py", timeout_s=90) as base:
        yield base
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-4000:]


def test_the_served_documents_carry_the_preload(served):
    names = preload.chunk_names()
    original = (STATIC / "index.html").read_bytes()
    for path, want in (("/", set(names.values())), ("/cadence", set(names.values())), ("/units", {names["table"]})):
        for gzip in (False, True):
            headers, body = _get(served + path, gzip)
            assert headers.get("Content-Encoding") is None, (path, headers)
            assert int(headers["Content-Length"]) == len(body)
            assert headers.get("ETag") is None and headers["Cache-Control"] == "no-cache"
            text = body.decode()
            found = set(re.findall(r'modulepreload" crossorigin href="\./static/js/([^"]+)"', text)) & {
                *names.values()}
            assert found == want, (path, found)
            assert text.index("const names") < text.index("</head>")
            # the rest of the document is Streamlit's own
            assert body.replace(preload.tag_for(path, names), b"") == original
    # other responses are untouched: a hashed script byte for byte, the health check
    _, js = _get(f"{served}/static/js/{names['table']}")
    assert js == (STATIC / "static" / "js" / names["table"]).read_bytes()
    assert _get(served + "/_stcore/health")[1] == b"ok"


def test_the_preload_can_be_turned_off(page_db, tmp_path):  # noqa: F811
    url, _ = page_db
    with streamlit_server(url, tmp_path / "serve.log", env={"BANGFU_WARM_UP": "0", "BANGFU_CHART_PRELOAD": "0"},
                          script="serve_app.py", timeout_s=90) as base:
        assert _get(base + "/cadence")[1] == (STATIC / "index.html").read_bytes()


@pytest.mark.browser
def test_in_the_browser_the_chart_chunk_comes_before_the_page_asks(browser, served):
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        first = ctx.new_page()  # sign in once; the cookie serves the tabs below
        first.set_default_timeout(90_000)
        first.goto(served + "/")
        first.locator('input[aria-label="用户名"]').wait_for()  # the pages' database has users
        first.get_by_label("用户名", exact=True).fill(ADMIN)
        first.get_by_label("密码", exact=True).fill(ADMIN_PASSWORD)
        first.get_by_role("button", name="登录").click()
        first.locator(".js-plotly-plot").first.wait_for()
        timings = {}
        for path in ("cadence", "units"):
            pg = ctx.new_page()
            pg.set_default_timeout(90_000)
            pg.goto(f"{served}/{path}")
            # the page's last element drawn: a chart on the cadence page, the data table on the units page
            pg.locator(".js-plotly-plot" if path == "cadence" else '[data-testid="stDataFrame"]').first.wait_for()
            pg.wait_for_selector(READY)
            pg.wait_for_timeout(1000)
            timings[path] = pg.evaluate("""() => ({
              dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventStart,
              plotly: performance.getEntriesByType('resource').filter((e) => /PlotlyChart\\./.test(e.name))
                        .map((e) => e.startTime),
              charts: document.querySelectorAll('.js-plotly-plot').length,
              errors: document.querySelectorAll('[data-testid="stException"]').length})""")
            pg.close()
        cad, units = timings["cadence"], timings["units"]
        assert cad["errors"] == 0 and cad["charts"] >= 2, cad
        assert cad["plotly"] and min(cad["plotly"]) < cad["dcl"], cad
        assert units["errors"] == 0 and units["plotly"] == [], units
    finally:
        ctx.close()
