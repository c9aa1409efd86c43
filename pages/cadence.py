"""走访频次: overdue pairings (第十二条(二), RULES.md M3) by region and unit, the distribution of
days since the last in-home visit, the photo-upload rate (M6) and the overdue list."""

from __future__ import annotations

import streamlit as st

from data_access import metrics as m
from data_access.dates import months_before
from ui import charts, data, filters
from ui import format as fmt
from ui import supervision as ui_sv
from ui.boot import require_app
from ui.report import report_button
from ui.widgets import click_chart, kpi, problem_list

require_app()  # inside app.py's navigation (see ui/boot.py)

# The "worst units" chart compares units with enough active pairings for a rate to mean something (with
# 1–2 pairings one late visit makes 0% or 50%); relaxed to the fallback when too few units qualify.
MIN_PAIRINGS, MIN_PAIRINGS_FALLBACK, WORST_N = 10, 3, 15

f = filters.filter_bar("pages/cadence.py")
st.title("走访频次")
filters.scope_caption(f)
report_button(f, "cadence", ("cadence", "photos"))
st.caption("第十二条（二）：每2个月至少入户走访1次；省直单位按处室结对的，处室成员可轮流走访，每4个月至少1次。"
           "电话、短信、微信联系不计入走访。")
url, d, scope = f.url, f.as_of, f.scope

# the total is the sum of the child level's groups (the same cached call as the ranking below)
tot = m.total_row(data.cadence(url, d, f.child or "province", scope), "cadence")
start = months_before(d.replace(day=1), 11)  # the 12 calendar months up to d's
# the sum of the child level's groups: the same cached call as the chart below
ph = m.total_row(data.photos(url, start, d, f.child or "province", scope), "photos")
c = st.columns(4)
kpi(c[0], "在帮结对", fmt.num(tot["active_pairings"]))
kpi(c[1], "走访逾期结对", fmt.num(tot["overdue"]))
kpi(c[2], "走访合规率", fmt.pct(1 - tot["overdue"] / tot["active_pairings"]) if tot["active_pairings"] else fmt.DASH)
kpi(c[3], "近12个月照片上传率", fmt.pct(fmt.rate(ph["with_photo"], ph["in_home_visits"])),
    help=f"{fmt.date_zh(start)}至{fmt.date_zh(d)}的入户走访中上传了电子照片的比例（共 {fmt.num(ph['in_home_visits'])} 次入户走访）。")

hover = ["在帮结对：{active_pairings:,} 个", "逾期结对：{overdue:,} 个"]
child = f.child
left, right = st.columns(2)
with left:
    if child:
        label = filters.level_label(child)
        df = data.cadence(url, d, child, scope)
        if df.empty:
            st.info("当前范围内没有在帮结对。")
        else:
            df["compliance"] = 1 - df["overdue"] / df["active_pairings"]
            fig = charts.ranking_bar(df, "compliance", f"各{label}走访合规率", "走访合规率", band="compliance",
                                     hover=hover)
            click_chart(fig, "cadence-rank", f, filters.drill_to)
            st.caption(f"点击条形下钻到该{label}。")
    else:
        st.info("已到村级，没有更下一级。")
with right:
    units = data.cadence(url, d, "unit", scope)
    if units.empty:
        st.info("当前范围内没有在帮结对。")
    else:
        units["compliance"] = 1 - units["overdue"] / units["active_pairings"]
        least = MIN_PAIRINGS
        if (units["active_pairings"] >= least).sum() < WORST_N:
            least = MIN_PAIRINGS_FALLBACK
        ranked = units[units["active_pairings"] >= least]
        if ranked.empty:
            st.info(f"当前范围内没有在帮结对不少于{least}个的派出单位，不作单位排名。")
        else:
            worst = ranked.sort_values(["compliance", "active_pairings", "code"], ascending=[True, False, True],
                                       kind="stable").head(WORST_N)
            fig = charts.ranking_bar(worst, "compliance", f"走访合规率最低的派出单位（后{WORST_N}）", "走访合规率",
                                     band="compliance", hover=hover, order="asc", note="{overdue}/{active_pairings}")
            click_chart(fig, "cadence-units", f, filters.open_unit)
            rule = f"只比较在帮结对不少于{least}个的单位（{len(units):,} 个中的 {len(ranked):,} 个）"
            if least < MIN_PAIRINGS:
                rule += f"，因不少于{MIN_PAIRINGS}个的不足{WORST_N}个而放宽"
            st.caption(f"{rule}；括号内为逾期/在帮结对数。点击条形打开该单位页。")

gaps = data.gaps(url, d, scope)
if int(gaps["on_time"].sum() + gaps["overdue"].sum()):
    click_chart(charts.gap_histogram(gaps), "cadence-gaps", f)
    st.caption("每个在帮结对距最近一次入户走访（未走访的从结对开始算起）的天数，每栏15天，180天及以上的合为最右一栏；"
               "虚线为约2个月（61天）和约4个月（122天）。是否逾期按日历月精确判断。")

if child:
    photos = data.photos(url, start, d, child, scope)
    if len(photos):
        click_chart(charts.photo_bars(photos, f"各{filters.level_label(child)}近12个月入户走访照片上传率"),
                    "cadence-photos", f, filters.drill_to)

st.subheader("走访逾期结对清单")
problem_list(lambda u: data.overdue(url, d, scope, unmasked=u),
             ["pairing_id", "helper_id", "helper_name", "unit_name", "household_id", "head_name", "county", "village",
              "start_date", "last_visit", "gap_days", "interval_months"],
             "走访逾期结对", "overdue", f, empty="当前范围内没有走访逾期的结对。",
             on_row=filters.open_helper, row_code="helper_id", total=tot["overdue"], order="间隔最长的",
             full=lambda u: data.full_list("overdue", url, d, scope, unmasked=u))
ui_sv.issue_panel("overdue", f)
