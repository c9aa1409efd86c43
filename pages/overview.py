"""总览: the province's state in ten seconds, for leading group members."""

from __future__ import annotations

import streamlit as st

from data_access import shares
from data_access.dates import previous_month_end
from ui import charts, data, filters
from ui import format as fmt
from ui import supervision as ui_sv
from ui.boot import require_app
from ui.report import report_button
from ui.widgets import click_chart, kpi

require_app()  # inside app.py's navigation (see ui/boot.py)

f = filters.filter_bar("pages/overview.py")
st.title("总览")
filters.scope_caption(f)
report_button(f, "overview")

url, d, scope = f.url, f.as_of, f.scope
prev = previous_month_end(d)
figs = data.overview(url, d, prev, f.year, scope, f.child)  # one cached call for the whole page


def totals(key):
    cov, cap, cad, rep = (figs[key][k] for k in ("coverage", "cap", "cadence", "replacements"))
    return {
        "coverage_rate": fmt.rate(cov["covered"], cov["households"]),
        "households": cov["households"], "uncovered": cov["households"] - cov["covered"],
        "violators": cap["violators"], "helpers": cap["helpers"],
        "overdue": cad["overdue"], "active": cad["active_pairings"],
        "compliance": 1 - fmt.rate(cad["overdue"], cad["active_pairings"]) if cad["active_pairings"] else None,
        "unapproved": rep["unapproved"], "replacements": rep["replacements"],
    }


now, before = totals("now"), totals("before")
vs = f"与上月末（{fmt.date_zh(prev)}）相比"

c = st.columns(6)
kpi(c[0], "结对覆盖率", fmt.pct(now["coverage_rate"]), fmt.pp_delta(now["coverage_rate"], before["coverage_rate"]),
    help=f"在帮贫困户中有在帮结对的比例（{fmt.num(now['households'])} 户，未覆盖 {fmt.num(now['uncovered'])} 户）。{vs}。")
kpi(c[1], "超上限责任人", fmt.num(now["violators"]), fmt.count_delta(now["violators"], before["violators"]),
    bad_when_up=True, help=f"帮扶超过5户的责任人数（共 {fmt.num(now['helpers'])} 名在帮责任人）。{vs}。")
kpi(c[2], "走访逾期结对", fmt.num(now["overdue"]), fmt.count_delta(now["overdue"], before["overdue"]),
    bad_when_up=True, help=f"超过规定间隔未入户走访的在帮结对数（共 {fmt.num(now['active'])} 个在帮结对）。{vs}。")
kpi(c[3], "走访合规率", fmt.pct(now["compliance"]), fmt.pp_delta(now["compliance"], before["compliance"]),
    help=f"1 − 逾期结对 ÷ 在帮结对。{vs}。")
kpi(c[4], "未批准调换", fmt.num(now["unapproved"]), fmt.count_delta(now["unapproved"], before["unapproved"]),
    bad_when_up=True, help=f"因患病、调离、处分调换而未经县委组织部批准的结对（共 {fmt.num(now['replacements'])} 次调换）。{vs}。")

# last year's rating mix (ratings are per year: compared with the year before)
rt, rt_prev = figs["ratings"][f.year], figs["ratings"][f.year - 1]


s_now, s_prev = shares.rating_shares(rt), shares.rating_shares(rt_prev)  # the one definition
kpi(c[5], f"{f.year}年度优秀占比", fmt.pct(s_now["excellent"]), fmt.pp_delta(s_now["excellent"], s_prev["excellent"]),
    neutral=True,
    help=(f"{f.year}年度已考核责任人 {fmt.num(shares.rated(rt))} 人中：优秀 {fmt.pct(s_now['excellent'])}、"
          f"合格 {fmt.pct(s_now['qualified'])}、不合格 {fmt.pct(s_now['unqualified'])}（以已考核为基数）；"
          f"未考核 {fmt.num(rt['missing'])} 人。考核按年度进行，变化与上一年度相比。"))
# one short line under the tile (优秀 is the tile's value; 未考核 is in the help text)
c[5].caption(f"合格 {fmt.pct(s_now['qualified'])} · 不合格 {fmt.pct(s_now['unqualified'])}")

# supervision orders (RULES.md M7): items past their deadline that the ledger does not show rectified
sv = ui_sv.totals(url, d, scope)
if sv["items"]:
    st.page_link("pages/supervision.py", icon=":material/assignment_late:",
                 label=f"督办整改：逾期未整改 {fmt.num(sv['overdue'])} 条 · 整改中 {fmt.num(sv['open'])} 条 · "
                       f"已整改 {fmt.num(sv['rectified'])} 条（整改率 {fmt.pct(sv['rate'])}）")

st.divider()
left, right = st.columns([1, 1])
with left:
    child = f.child
    if child:
        cad = figs["ranking"].copy()
        cad["compliance"] = 1 - cad["overdue"] / cad["active_pairings"]
        label = filters.level_label(child)
        fig = charts.ranking_bar(
            cad, "compliance", f"各{label}走访合规率排名", "走访合规率", band="compliance",
            hover=["在帮结对：{active_pairings:,} 个", "逾期结对：{overdue:,} 个"])
        click_chart(fig, "overview-rank", f, filters.drill_to)
        st.caption(f"点击条形可下钻到该{label}。")
    else:
        st.info("已到村级，没有更下一级的排名。")
with right:
    tr = figs["trend"]
    click_chart(charts.trend_lines(tr), "overview-trend", f)

# worst 10 counties and worst 10 sending units of the whole scope (the province for a province user),
# whatever the drill level above: the ones to call first
st.divider()
WORST_N, MIN_PAIRINGS = 10, 5
where = "全省" if f.level == "province" else "本范围"
w1, w2 = st.columns(2)
for col, by, what, action in ((w1, "county", "县（市、区）", filters.drill_to), (w2, "unit", "派出单位", filters.open_unit)):
    with col:
        rows = data.cadence(url, d, by, scope)
        rows = rows[rows["active_pairings"] >= MIN_PAIRINGS].copy()
        if rows.empty:
            st.info(f"{where}没有在帮结对不少于{MIN_PAIRINGS}个的{what}，不作排名。")
            continue
        rows["compliance"] = 1 - rows["overdue"] / rows["active_pairings"]
        worst = rows.sort_values(["compliance", "overdue", "code"], ascending=[True, False, True],
                                 kind="stable").head(WORST_N)
        fig = charts.ranking_bar(
            worst, "compliance", f"{where}走访合规率最低的{len(worst)}个{what}", "走访合规率", band="compliance",
            order="asc", note="{overdue}/{active_pairings}",
            hover=["在帮结对：{active_pairings:,} 个", "逾期结对：{overdue:,} 个"])
        click_chart(fig, f"overview-worst-{by}", f, action)
        st.caption(f"括号内为逾期结对/在帮结对；只比较在帮结对不少于{MIN_PAIRINGS}个的{what}"
                   f"（{len(rows):,} 个）。点击条形查看。")
