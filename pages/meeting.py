"""会议大屏: a few huge, high-contrast figures and one ranking for projection at 1920×1080,
refreshing itself every N seconds (query parameter ``refresh``, default 30) inside a fragment."""

from __future__ import annotations

import html

import streamlit as st

from data_access.dates import previous_month_end
from ui import auth, charts, data, filters, maps, theme
from ui import supervision as ui_sv
from ui import format as fmt
from ui.boot import require_app
from ui.widgets import PLOTLY_CONFIG

require_app()  # inside app.py's navigation (see ui/boot.py)

DEFAULT_REFRESH = 30
RANK_ROWS = 14  # ranking rows that fit beside the map at 1920×1080 (and, scaled, at 1366×768)
CHART_HEIGHT = 440
f = filters.read_state(data.db_url(), show_warnings=False)
if not f.allowed:
    st.warning(auth.DENIED, icon=":material/block:")
    st.stop()
auth.record_page_view("pages/meeting.py", f.scope)

refresh, refresh_warning = DEFAULT_REFRESH, None
raw = st.query_params.get("refresh")
if raw is not None:
    try:
        refresh = int(str(raw).strip())
        if not 5 <= refresh <= 3600:
            raise ValueError
    except ValueError:
        refresh = DEFAULT_REFRESH
        refresh_warning = f"刷新间隔 refresh={raw} 无效（应为5到3600之间的秒数），已改为{DEFAULT_REFRESH}秒。"

st.html(f"""
<style>
  [data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stSidebarNav"],
  [data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"] {{ display: none !important; }}
  .stApp, [data-testid="stAppViewContainer"], [data-testid="stMain"] {{ background: {theme.DARK_BG} !important; }}
  [data-testid="stMainBlockContainer"], .block-container {{ padding: .8rem 2rem .4rem 2rem !important;
    max-width: 100% !important; }}
  [data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] {{ gap: .4rem; }}
  .bf-head {{ display: flex; flex-wrap: wrap; justify-content: space-between; align-items: baseline;
    color: {theme.DARK_FG}; font-family: {theme.FONT_FAMILY}; gap: 0 1.5rem; }}
  .bf-title {{ font-size: 2.8rem; font-weight: 800; letter-spacing: .08em; }}
  .bf-sub {{ font-size: 1.5rem; color: {theme.DARK_MUTED}; }}
  .bf-demo {{ display: inline-block; background: {theme.DARK_WARN}; color: #000; font-weight: 800;
    font-size: 1.4rem; padding: .1rem .8rem; border-radius: .4rem; margin-left: 1rem; vertical-align: middle; }}
  .bf-warn {{ color: {theme.DARK_WARN}; font-size: 1.2rem; font-family: {theme.FONT_FAMILY}; }}
  .bf-tiles {{ display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 1rem; margin: .6rem 0 .4rem 0; }}
  .bf-tile {{ background: {theme.DARK_PANEL}; border-radius: 1rem; padding: .8rem 1.2rem;
    font-family: {theme.FONT_FAMILY}; border: 2px solid #24324a; min-width: 0; }}
  .bf-label {{ color: {theme.DARK_MUTED}; font-size: 1.7rem; font-weight: 600; white-space: nowrap; }}
  .bf-value {{ font-size: 4.6rem; font-weight: 800; line-height: 1.1; font-variant-numeric: tabular-nums; }}
  .bf-note {{ color: {theme.DARK_MUTED}; font-size: 1.3rem; font-family: {theme.FONT_FAMILY}; }}
  .bf-mom {{ font-size: 1.3rem; font-weight: 700; font-family: {theme.FONT_FAMILY}; }}
  .bf-legend {{ color: {theme.DARK_MUTED}; font-size: 1.2rem; font-family: {theme.FONT_FAMILY};
    display: flex; flex-wrap: wrap; gap: .2rem 1.6rem; align-items: center; }}
  .bf-legend i {{ display: inline-block; width: .9em; height: .9em; border-radius: .2em; margin: 0 .25em 0 .6em;
    vertical-align: -.05em; }}
  /* the exit and 投屏 controls: always visible in the bottom right corner, outside the page's height */
  .st-key-bf-exit {{ position: fixed; right: 1rem; bottom: .8rem; z-index: 1000; width: auto !important;
    background: {theme.DARK_PANEL}; border: 1px solid #24324a; border-radius: .6rem; padding: .3rem .6rem; }}
  .st-key-bf-exit, .st-key-bf-exit p, .st-key-bf-exit a span {{ color: {theme.DARK_FG} !important; }}
  .st-key-bf-exit .bf-note {{ font-size: .9rem; }}
  /* the two charts fill the screen's height below the tiles: the page never scrolls on a projector */
  .bf-legend {{ margin-bottom: 1.1rem; }}
  .bf-ctitle {{ color: {theme.DARK_FG}; font-size: 1.8rem; font-weight: 600; font-family: {theme.FONT_FAMILY};
    line-height: 1.5; padding: .2rem 0 .5rem 0; }}
  [data-testid="stColumn"]:has(.st-key-bf-left), [data-testid="stColumn"]:has(.st-key-bf-right) {{
    height: auto !important; min-height: 0 !important; }}
  .st-key-bf-left, .st-key-bf-right {{ height: calc(100vh - 25rem) !important; min-height: 14rem;
    max-height: calc(100vh - 25rem) !important; flex: 0 0 auto !important; overflow: hidden !important;
    padding-top: .4rem; }}
  /* a 1366×768 projector: smaller type, same layout */
  @media (min-width: 1000px) and (max-height: 900px) {{
    [data-testid="stMainBlockContainer"], .block-container {{ padding: .5rem 1.4rem .2rem 1.4rem !important; }}
    .bf-title {{ font-size: 2rem; }}
    .bf-sub {{ font-size: 1.15rem; }}
    .bf-demo {{ font-size: 1.05rem; }}
    .bf-label {{ font-size: 1.2rem; }}
    .bf-value {{ font-size: 3.1rem; }}
    .bf-note, .bf-mom, .bf-legend {{ font-size: .95rem; }}
    .bf-tile {{ padding: .45rem .9rem; border-radius: .7rem; }}
    .bf-tiles {{ gap: .7rem; margin: .3rem 0 .2rem 0; }}
    .bf-ctitle {{ font-size: 1.3rem; }}
    .st-key-bf-left, .st-key-bf-right {{ height: calc(100vh - 19rem) !important;
      max-height: calc(100vh - 19rem) !important; }}
  }}
  /* a phone: tiles stacked two by two, smaller type; the page scrolls down, never sideways */
  @media (max-width: 700px) {{
    [data-testid="stMainBlockContainer"], .block-container {{ padding: .6rem .8rem 4rem .8rem !important; }}
    .bf-title {{ font-size: 1.6rem; letter-spacing: .02em; }}
    .bf-sub, .bf-note, .bf-mom, .bf-legend {{ font-size: .9rem; }}
    .bf-ctitle {{ font-size: 1.1rem; }}
    .bf-demo {{ font-size: .9rem; margin-left: .4rem; }}
    .bf-tiles {{ grid-template-columns: repeat(2, minmax(0, 1fr)); gap: .5rem; }}
    .bf-tile {{ padding: .5rem .7rem; }}
    .bf-label {{ font-size: 1rem; white-space: normal; }}
    .bf-value {{ font-size: 2.2rem; }}
    .st-key-bf-left, .st-key-bf-right {{ height: 26rem !important; max-height: 26rem !important; }}
  }}
</style>
""")


def tile(label: str, value: str, color: str, note: str, note_color: str | None = None, mom: str = "") -> str:
    """A figure in the palette's meaning: a rate by its display band, a count of problems by
    theme.count_color (zero green, any other red) — never a count coloured by a rate. ``mom``: the
    change since last month's end (HTML from ``change``)."""
    style = f' style="color:{note_color}"' if note_color else ""
    return (f'<div class="bf-tile"><div class="bf-label">{html.escape(label)}</div>'
            f'<div class="bf-value" style="color:{color}">{html.escape(value)}</div>'
            f'<div class="bf-note"{style}>{html.escape(note)}</div>{mom}</div>')


def change(now, before, *, rate: bool, higher_better: bool) -> str:
    """较上月末 ▲0.4个百分点 / ▼12 / 持平, green when better, red when worse, muted without a figure."""
    if now is None or before is None:
        return f'<div class="bf-mom" style="color:{theme.DARK_MUTED}">较上月末 —</div>'
    diff = (now - before) * 100 if rate else now - before
    if abs(diff) < 0.05:
        return f'<div class="bf-mom" style="color:{theme.DARK_MUTED}">较上月末 持平</div>'
    better = (diff > 0) == higher_better
    arrow = "▲" if diff > 0 else "▼"
    amount = f"{abs(diff):.1f}个百分点" if rate else fmt.num(abs(diff))
    color = theme.DARK_GOOD if better else theme.DARK_BAD
    return f'<div class="bf-mom" style="color:{color}">较上月末 {arrow}{amount}</div>'


def legend() -> str:
    """The status colours in words: the thresholds of ui/theme.BANDS, and counts of problems."""
    colors = theme.band_colors(dark=True)
    parts = []
    for kind in ("coverage", "compliance"):
        items = "".join(f'<i style="background:{colors[b]}"></i>{html.escape(t)}' for t, b in theme.legend_items(kind))
        parts.append(f"<span>{theme.BAND_LABELS[kind]}{items}</span>")
    parts.append(f'<span>问题数<i style="background:{colors["good"]}"></i>0'
                 f'<i style="background:{colors["bad"]}"></i>1 及以上</span>')
    return '<div class="bf-legend"><span>颜色说明：</span>' + "".join(parts) + "</div>"


def fixed_rows(fig, n: int) -> None:
    """Bars of one thickness whatever their number: a ranking of 1 or 3 rows keeps the slots of a full one
    (no single bar filling the screen)."""
    if n < RANK_ROWS:
        fig.update_yaxes(autorange=False, range=[RANK_ROWS - 0.5, -0.5])


def _figures(url, d, scope, child):
    figs = data.meeting_figures(url, d, scope, child)
    cov, cad = figs["coverage"], figs["cadence"]
    figs["cov_rate"] = fmt.rate(cov["covered"], cov["households"])
    figs["compliance"] = 1 - cad["overdue"] / cad["active_pairings"] if cad["active_pairings"] else None
    return figs


@st.fragment(run_every=refresh)
def screen():
    if auth.session_expired():  # the fragment's own reruns skip app.py: end an idle session here too
        st.rerun(scope="app")
    url, d, scope = f.url, filters.today() if "as_of" not in st.query_params else f.as_of, f.scope
    figs = _figures(url, d, scope, f.child)
    cov, cad, cap, rep = figs["coverage"], figs["cadence"], figs["cap"], figs["replacements"]
    cov_rate, compliance = figs["cov_rate"], figs["compliance"]
    # month on month: the same figures at the end of last month (a stored date)
    last = _figures(url, previous_month_end(d), scope, f.child)
    overdue_orders = ui_sv.totals(url, d, scope)["overdue"]
    overdue_orders_last = ui_sv.totals(url, previous_month_end(d), scope)["overdue"]
    demo = '<span class="bf-demo">演示数据</span>' if data.is_demo(url) else ""
    # ledger names and URL values as text: escaped, line breaks folded (a blank line would end the HTML block)
    where = fmt.html_text(f.region_name + (f" · {f.unit_name}" if f.unit else ""))
    warn = "".join(f'<div class="bf-warn">⚠ {fmt.html_text(w)}</div>'
                   for w in f.warnings + ([refresh_warning] if refresh_warning else []))
    st.markdown(
        f'<div class="bf-head"><div class="bf-title">帮扶责任人监测{demo}</div>'
        f'<div class="bf-sub">{where} ｜ 数据截至 {fmt.date_zh(d)} ｜ 每{refresh}秒刷新</div></div>'
        f'<div class="bf-note">{html.escape(fmt.computed_zh(data.freshness(url, d)))}</div>{warn}'
        '<div class="bf-tiles">'
        + tile("结对覆盖率", fmt.pct(cov_rate), theme.band_color(cov_rate, "coverage", dark=True),
               f"未覆盖 {fmt.num(cov['households'] - cov['covered'])} 户 / 共 {fmt.num(cov['households'])} 户",
               mom=change(cov_rate, last["cov_rate"], rate=True, higher_better=True))
        + tile("走访逾期结对", fmt.num(cad["overdue"]), theme.count_color(cad["overdue"], dark=True),
               f"走访合规率 {fmt.pct(compliance)}", theme.band_color(compliance, "compliance", dark=True),
               mom=change(cad["overdue"], last["cadence"]["overdue"], rate=False, higher_better=False))
        + tile("超上限责任人", fmt.num(cap["violators"]), theme.count_color(cap["violators"], dark=True),
               f"共 {fmt.num(cap['helpers'])} 名在帮责任人",
               mom=change(cap["violators"], last["cap"]["violators"], rate=False, higher_better=False))
        + tile("未批准调换", fmt.num(rep["unapproved"]), theme.count_color(rep["unapproved"], dark=True),
               f"共 {fmt.num(rep['replacements'])} 次调换",
               mom=change(rep["unapproved"], last["replacements"]["unapproved"], rate=False, higher_better=False))
        + tile("逾期未整改", fmt.num(overdue_orders), theme.count_color(overdue_orders, dark=True),
               "督办事项超过整改期限",
               mom=change(overdue_orders, overdue_orders_last, rate=False, higher_better=False))
        + "</div>" + legend(),
        unsafe_allow_html=True,
    )
    child = f.child
    if not child:
        return
    # worst first, as many rows as the screen holds; the map of the counties beside it (province or city
    # scope), below that (a county is one polygon) the sending units with the most overdue pairings
    cl, cr = st.columns([3, 2])
    # fixed-height boxes (the CSS above sets their height from the screen's); the charts stretch to fill them
    left = cl.container(key="bf-left", height=CHART_HEIGHT, border=False)
    right = cr.container(key="bf-right", height=CHART_HEIGHT, border=False)
    phone = maps.is_phone()  # a phone's box is 390 px wide: the projector's type sizes would crowd its bars
    font, tick = (13, 12) if phone else (20, 17)
    rank = data.meeting_ranking(url, d, child, scope)
    rank = rank[rank["active_pairings"] > 0]
    if len(rank):
        rank = rank.assign(compliance=1 - rank["overdue"] / rank["active_pairings"])
        rank = rank.sort_values(["compliance", "overdue"], ascending=[True, False], kind="stable")
        label = filters.level_label(child)
        title = (f"各{label}走访合规率（由低到高）" if len(rank) <= RANK_ROWS
                 else f"走访合规率最低的{RANK_ROWS}个{label}（共{len(rank)}个）")
        left.markdown(f'<div class="bf-ctitle">{title}</div>', unsafe_allow_html=True)
        fig = charts.ranking_bar(
            rank.head(RANK_ROWS), "compliance", "", "走访合规率", band="compliance", order="asc",
            dark=True, height=CHART_HEIGHT, font_size=font,
            hover=["在帮结对：{active_pairings:,} 个", "逾期结对：{overdue:,} 个"])
        fig.update_layout(transition=dict(duration=0), margin=dict(t=10), **({"font_size": font} if phone else {}))
        fig.update_yaxes(tickmode="linear", dtick=1, tickfont=dict(size=tick))  # every row named, none skipped
        fixed_rows(fig, len(rank.head(RANK_ROWS)))
        left.plotly_chart(fig, key="meeting-rank", config=PLOTLY_CONFIG, theme=None, height="stretch")
    else:
        left.markdown(f'<div class="bf-note">该范围内没有在帮结对，没有可排名的{filters.level_label(child)}。</div>',
                      unsafe_allow_html=True)
    with right:
        if f.level in ("province", "city"):
            maps.meeting_panel(f, d, scope, height=CHART_HEIGHT, stretch=True)
        else:
            units = data.meeting_ranking(url, d, "unit", scope)
            units = units[units["overdue"] > 0].sort_values(["overdue", "name"], ascending=[False, True])
            if len(units):
                st.markdown(f'<div class="bf-ctitle">走访逾期结对最多的派出单位（共{len(units)}个单位有逾期）</div>',
                            unsafe_allow_html=True)
                fig = charts.ranking_bar(
                    units.head(RANK_ROWS), "overdue", "",
                    "逾期结对", kind="count", order="desc", dark=True, height=CHART_HEIGHT, font_size=font,
                    hover=["在帮结对：{active_pairings:,} 个"])
                fig.update_layout(transition=dict(duration=0), margin=dict(t=10), **({"font_size": font} if phone else {}))
                fig.update_yaxes(tickmode="linear", dtick=1, tickfont=dict(size=tick))
                fixed_rows(fig, len(units.head(RANK_ROWS)))
                st.plotly_chart(fig, key="meeting-units", config=PLOTLY_CONFIG, theme=None, height="stretch")
            else:
                st.markdown('<div class="bf-note">该范围内没有走访逾期的结对。</div>', unsafe_allow_html=True)


screen()
with st.container(key="bf-exit"):  # fixed in the bottom right corner (CSS above): the way out, always visible
    if not auth.is_screen():
        st.page_link("pages/overview.py", label="返回看板", icon=":material/arrow_back:")
    auth.screen_controls()  # 投屏模式 (a screen session that outlasts the idle timeout), or 结束投屏
