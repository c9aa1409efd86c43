"""地图 (一张图): the province's counties — or its 14 city-level areas — coloured by one figure for the
as-of date, offline. A click on a county opens that figure's page for the county; a click on a city
(city view) scopes the map to that city's counties. The choice of figure and view lives in the URL
(``metric``, ``view``) next to the filter bar's parameters."""

from __future__ import annotations

import streamlit as st

from ui import filters, maps
from ui.boot import require_app
from ui.format import html_text, md_text
from ui.widgets import PLOTLY_CONFIG, click_table, pct_column

require_app()  # inside app.py's navigation (see ui/boot.py)

PAGE = "pages/map.py"
MAP_PARAMS = ("metric", "view")
VIEWS = {"county": "按县（市、区）", "city": "按市"}
DEFAULTS = {"metric": "coverage", "view": "county"}
OPTIONS = {"metric": list(maps.METRICS), "view": list(VIEWS)}
HEIGHT = 620
PHONE_WIDTH, PHONE_HEIGHT = 330, 520  # the map's fit on a phone (390 px screen; 70 px of it the colour bar)
PAGE_TITLES = {"coverage": "结对覆盖", "cadence": "走访频次", "cap": "帮扶上限", "ratings": "年度考核"}
SAVED = "_bf_map"  # the map's own choices, restored when the user comes back to the page

f = filters.filter_bar(PAGE)
st.title("地图")
filters.scope_caption(f)


def choice(name: str) -> str:
    """The URL's value of `name` if valid (a bad one is named in a warning), else the last choice."""
    saved = st.session_state.setdefault(SAVED, dict(DEFAULTS))
    raw = st.query_params.get(name)
    if raw is not None:
        raw = str(raw).strip()
        if raw in OPTIONS[name]:
            saved[name] = raw
            return raw
        st.warning(f"链接中的 {name}={md_text(raw)} 无效，已改为默认值。", icon=":material/warning:")
        del st.query_params[name]
        saved[name] = DEFAULTS[name]
    return saved[name]


def set_choice(name: str, value: str | None = None) -> None:
    value = value or st.session_state.get(f"map_{name}")
    if value in OPTIONS[name]:
        st.query_params[name] = value
        st.session_state.setdefault(SAVED, dict(DEFAULTS))[name] = value


def open_county(code: str) -> None:
    """A county was clicked: the chosen figure's page, scoped to that county."""
    maps.open_page(code, maps.METRICS[metric].page, drop=MAP_PARAMS)


def open_city(code: str) -> None:
    """A city was clicked (city view): this map, scoped to that city's counties."""
    filters.set_region(code)
    set_choice("view", "county")


metric = choice("metric")
level = choice("view") if f.level == "province" else "county"
M = maps.METRICS[metric]

c1, c2 = st.columns([3, 1])
with c1:
    st.session_state["map_metric"] = metric
    st.segmented_control("指标", OPTIONS["metric"], format_func=lambda k: maps.METRICS[k].label, key="map_metric",
                         on_change=set_choice, args=("metric",), required=True)
with c2:
    if f.level == "province":
        st.session_state["map_view"] = level
        st.segmented_control("地图层级", OPTIONS["view"], format_func=VIEWS.get, key="map_view",
                             on_change=set_choice, args=("view",), required=True)

v = maps.view(f, level)
if v is None:
    st.info("地图最细到县（市、区）。当前范围是乡镇或村：可回到所在县查看地图，或到各专题页查看明细。",
            icon=":material/info:")
    st.button("回到所在县的地图", on_click=filters.set_region, args=(f.region_info["county_code"],), key="map-up")
    st.stop()

on, off = maps.frame(v, maps.figures(f, metric, level))
label = "市" if level == "city" else "县（市、区）"
where = html_text(f.region_name)  # in the map's (plotly) title: a ledger name, shown as text

left, right = st.columns([3, 2])
with left:
    # a phone: the map fitted to its narrow screen (the colour bar under it), else to the wide column
    phone = maps.is_phone()
    fig = maps.choropleth(on, level, M, height=PHONE_HEIGHT if phone else HEIGHT, width=PHONE_WIDTH if phone else 900,
                          title=f"{where}各{label}{M.label}", compact=phone)
    action = open_city if level == "city" else open_county
    maps.map_chart(fig, maps.chart_key("map", f, metric, level), action, PLOTLY_CONFIG)
    hint = "点击一个市，地图缩放到该市的各县。" if level == "city" else f"点击一个县，打开该县的“{PAGE_TITLES[metric]}”页。"
    st.caption(f"{M.note.format(year=f.year)}{hint}灰色：没有数据。{maps.SOURCE}")

with right:
    ranked = on[on["value"].notna()].sort_values(["value", "code"], ascending=[M.higher_better, True], kind="stable")
    st.markdown(f"**各{label}{M.label}**（由差到好，{len(ranked)} 个）")
    scale = 100 if M.percent else 1
    cols = {"name": label, **({"city": "所属市"} if level == "county" else {}), "value": M.label,
            "short": M.counts_title}
    shown = ranked.assign(value=ranked["value"] * scale)[list(cols)].rename(columns=cols)
    fmt_col = pct_column() if M.percent else st.column_config.NumberColumn(format="%.1f")
    click_table(shown, f"map-table-{metric}-{level}", f, list(ranked["code"]), action,
                column_config={M.label: fmt_col}, height=380)
    st.caption("选中一行与点击地图相同。")

    st.markdown(f"**未在地图上显示**（{len(off)} 项）")
    if off.empty:
        st.caption("所有行都在地图上。")
    else:
        st.caption("地图上没有对应区域的行：省直、市直派出单位的汇总（不属于任何县），以及边界数据中没有的区划（如开发区）。")
        rest = off.assign(value=off["value"] * scale)[["name", "value", "note", "short"]].rename(
            columns={"name": "名称", "value": M.label, "note": "原因", "short": M.counts_title})
        st.dataframe(rest, hide_index=True, key=maps.chart_key("map-off", f, metric, level),
                     column_config={M.label: fmt_col})
