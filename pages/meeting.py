"""会议大屏: a few huge, high-contrast figures and one ranking for projection at 1920×1080,
refreshing itself every N seconds (query parameter ``refresh``, default 30) inside a fragment."""

from __future__ import annotations

import html

import streamlit as st

from ui import auth, charts, data, filters, maps, theme
from ui import format as fmt
from ui.boot import require_app
from ui.widgets import PLOTLY_CONFIG

require_app()  # inside app.py's navigation (see ui/boot.py)

DEFAULT_REFRESH = 30
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
  [data-testid="stMainBlockContainer"], .block-container {{ padding: 1.2rem 2.4rem 1rem 2.4rem !important;
    max-width: 100% !important; }}
  .bf-head {{ display: flex; justify-content: space-between; align-items: baseline; color: {theme.DARK_FG};
    font-family: {theme.FONT_FAMILY}; }}
  .bf-title {{ font-size: 3.2rem; font-weight: 800; letter-spacing: .08em; }}
  .bf-sub {{ font-size: 1.6rem; color: {theme.DARK_MUTED}; }}
  .bf-demo {{ display: inline-block; background: {theme.DARK_WARN}; color: #000; font-weight: 800;
    font-size: 1.5rem; padding: .1rem .8rem; border-radius: .4rem; margin-left: 1rem; vertical-align: middle; }}
  .bf-warn {{ color: {theme.DARK_WARN}; font-size: 1.3rem; font-family: {theme.FONT_FAMILY}; }}
  .bf-tiles {{ display: grid; grid-template-columns: repeat(4, 1fr); gap: 1.2rem; margin: 1rem 0 1.2rem 0; }}
  .bf-tile {{ background: {theme.DARK_PANEL}; border-radius: 1rem; padding: 1.2rem 1.6rem;
    font-family: {theme.FONT_FAMILY}; border: 2px solid #24324a; }}
  .bf-label {{ color: {theme.DARK_MUTED}; font-size: 2rem; font-weight: 600; }}
  .bf-value {{ font-size: 6rem; font-weight: 800; line-height: 1.1; font-variant-numeric: tabular-nums; }}
  .bf-note {{ color: {theme.DARK_MUTED}; font-size: 1.5rem; }}
</style>
""")


def tile(label: str, value: str, color: str, note: str, note_color: str | None = None) -> str:
    """A figure in the palette's meaning: a rate by its display band, a count of problems by
    theme.count_color (zero green, any other red) — never a count coloured by a rate."""
    style = f' style="color:{note_color}"' if note_color else ""
    return (f'<div class="bf-tile"><div class="bf-label">{html.escape(label)}</div>'
            f'<div class="bf-value" style="color:{color}">{html.escape(value)}</div>'
            f'<div class="bf-note"{style}>{html.escape(note)}</div></div>')


@st.fragment(run_every=refresh)
def screen():
    if auth.session_expired():  # the fragment's own reruns skip app.py: end an idle session here too
        st.rerun(scope="app")
    url, d, scope = f.url, filters.today() if "as_of" not in st.query_params else f.as_of, f.scope
    figs = data.meeting_figures(url, d, scope, f.child)
    cov, cad, cap, rep = figs["coverage"], figs["cadence"], figs["cap"], figs["replacements"]
    cov_rate = fmt.rate(cov["covered"], cov["households"])
    compliance = 1 - cad["overdue"] / cad["active_pairings"] if cad["active_pairings"] else None
    demo = '<span class="bf-demo">演示数据</span>' if data.is_demo(url) else ""
    # ledger names and URL values as text: escaped, line breaks folded (a blank line would end the HTML block)
    where = fmt.html_text(f.region_name + (f" · {f.unit_name}" if f.unit else ""))
    warn = "".join(f'<div class="bf-warn">⚠ {fmt.html_text(w)}</div>'
                   for w in f.warnings + ([refresh_warning] if refresh_warning else []))
    st.markdown(
        f'<div class="bf-head"><div class="bf-title">帮扶责任人监测{demo}</div>'
        f'<div class="bf-sub">{where} ｜ 数据截至 {fmt.date_zh(d)} ｜ 每{refresh}秒刷新</div></div>{warn}'
        '<div class="bf-tiles">'
        + tile("结对覆盖率", fmt.pct(cov_rate), theme.band_color(cov_rate, "coverage", dark=True),
               f"未覆盖 {fmt.num(cov['households'] - cov['covered'])} 户 / 共 {fmt.num(cov['households'])} 户")
        + tile("走访逾期结对", fmt.num(cad["overdue"]), theme.count_color(cad["overdue"], dark=True),
               f"走访合规率 {fmt.pct(compliance)}", theme.band_color(compliance, "compliance", dark=True))
        + tile("超上限责任人", fmt.num(cap["violators"]), theme.count_color(cap["violators"], dark=True),
               f"共 {fmt.num(cap['helpers'])} 名在帮责任人")
        + tile("未批准调换", fmt.num(rep["unapproved"]), theme.count_color(rep["unapproved"], dark=True),
               f"共 {fmt.num(rep['replacements'])} 次调换")
        + "</div>",
        unsafe_allow_html=True,
    )
    child = f.child
    # the map of the counties beside the ranking (province or city scope: below, a county is one polygon)
    left, right = st.columns([3, 2]) if f.level in ("province", "city") else (st.container(), None)
    if child:
        rank = data.meeting_ranking(url, d, child, scope)
        if len(rank):
            rank = rank.assign(compliance=1 - rank["overdue"] / rank["active_pairings"])
            fig = charts.ranking_bar(
                rank, "compliance", f"各{filters.level_label(child)}走访合规率排名", "走访合规率", band="compliance",
                dark=True, height=640, font_size=24, hover=["在帮结对：{active_pairings:,} 个", "逾期结对：{overdue:,} 个"])
            fig.update_layout(transition=dict(duration=0))
            left.plotly_chart(fig, key="meeting-rank", config=PLOTLY_CONFIG, theme=None)
    if right is not None:
        with right:
            maps.meeting_panel(f, d, scope, height=640)


screen()
auth.screen_controls()  # 投屏模式 (a screen session that outlasts the idle timeout), or 结束投屏
