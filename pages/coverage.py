"""结对覆盖: coverage and weak pairings down the region tree, uncovered households, and
assigned-village coverage by sending unit (RULES.md M1)."""

from __future__ import annotations

import streamlit as st

from data_access import metrics as m
from ui import charts, data, filters
from ui import format as fmt
from ui import supervision as ui_sv
from ui.boot import require_app
from ui.report import report_button
from ui.widgets import click_chart, click_table, kpi, pct_column, problem_list

require_app()  # inside app.py's navigation (see ui/boot.py)

f = filters.filter_bar("pages/coverage.py")
st.title("结对覆盖")
filters.scope_caption(f)
report_button(f, "coverage", ("coverage", "replacements"))
url, d, scope = f.url, f.as_of, f.scope

# the total is the sum of the child level's groups (the same cached call as the ranking below)
tot = m.total_row(data.coverage(url, d, f.child or "province", scope), "coverage")
c = st.columns(4)
kpi(c[0], "结对覆盖率", fmt.pct(fmt.rate(tot["covered"], tot["households"])))
kpi(c[1], "在帮贫困户", fmt.num(tot["households"]))
kpi(c[2], "未覆盖户", fmt.num(tot["households"] - tot["covered"]))
kpi(c[3], "弱结对户", fmt.num(tot["weak"]),
    help="尚未脱贫、但在帮责任人都不是干部职工的户（第五条：原则上应由帮扶能力较强的干部职工结对帮扶）。")
if scope.unit:
    st.caption(f"选定派出单位时，覆盖率按该单位驻村帮扶的村计算：这些村的在帮贫困户中，由「{fmt.md_text(f.unit_name)}」责任人结对的比例。")

child = f.child
if child:
    label = filters.level_label(child)
    st.subheader(f"各{label}覆盖情况")
    df = data.coverage(url, d, child, scope)
    if df.empty:
        st.info("当前范围内没有在帮贫困户。")
    else:
        df["uncovered"] = df["households"] - df["covered"]
        df["rate"] = df["covered"] / df["households"]
        df["weak_rate"] = df["weak"] / df["covered"].where(df["covered"] > 0)
        # chart and table in the same order: lowest coverage first (where to act), ties by code
        df = df.sort_values(["rate", "code"], kind="stable").reset_index(drop=True)
        left, right = st.columns([3, 2])
        with left:
            fig = charts.ranking_bar(df, "rate", f"各{label}结对覆盖率（由低到高）", "覆盖率", band="coverage",
                                     order="asc", hover=["在帮贫困户：{households:,} 户", "未覆盖：{uncovered:,} 户",
                                                         "弱结对：{weak:,} 户"])
            click_chart(fig, "coverage-rank", f, filters.drill_to)
        with right:
            table = df.assign(rate=df["rate"] * 100, weak_rate=df["weak_rate"] * 100)
            table = table[["name", "households", "covered", "uncovered", "rate", "weak", "weak_rate"]].rename(columns={
                "name": label, "households": "在帮贫困户", "covered": "已覆盖", "uncovered": "未覆盖",
                "rate": "覆盖率", "weak": "弱结对户", "weak_rate": "弱结对占比"})
            click_table(table, "coverage-table", f, list(df["code"]), filters.drill_to,
                        column_config={"覆盖率": pct_column(), "弱结对占比": pct_column()})
            st.caption(f"点击条形或选中一行，下钻到该{label}。")
else:
    st.info("已到村级，没有更下一级。")

st.subheader("未覆盖贫困户清单")
problem_list(lambda u: data.uncovered(url, d, scope, unmasked=u),
             ["household_id", "head_name", "id_number", "status", "city", "county", "township", "village",
              "village_code"],
             "未覆盖贫困户", "uncovered", f, empty="当前范围内所有在帮贫困户都有在帮结对。",
             # with a unit scope the list is of the unit's assigned villages, which the tiles do not count
             total=None if scope.unit else tot["households"] - tot["covered"], order="按户编号",
             full=lambda u: data.full_list("uncovered", url, d, scope, unmasked=u))
ui_sv.issue_panel("uncovered", f)

st.subheader("未经批准的调换")
st.caption("因患病、调离、处分结束的结对（调换）须经县委组织部批准（第十条）；这里列出截至当日结束、未记录批准的调换。")
problem_list(lambda u: data.unapproved(url, d, scope, unmasked=u),
             ["pairing_id", "helper_id", "helper_name", "unit_name", "household_id", "head_name", "start_date",
              "end_date", "end_reason"],
             "未批准调换", "unapproved", f, empty="当前范围内没有未经批准的调换。", order="按结对编号",
             full=lambda u: data.full_list("unapproved", url, d, scope, unmasked=u))
ui_sv.issue_panel("unapproved", f)

st.subheader("派出单位驻村帮扶覆盖")
st.caption("每个单位：截至当日驻村帮扶的村里的在帮贫困户中，由本单位责任人结对的比例（第七条）。选中一行打开单位页。")
units = data.coverage(url, d, "unit", scope)
if units.empty:
    st.info("当前范围内没有截至当日的驻村帮扶任务。")
else:
    units["rate"] = units["covered"] / units["households"]
    units = units.sort_values(["rate", "code"], kind="stable").reset_index(drop=True)
    table = units.assign(rate=units["rate"] * 100)[
        ["code", "name", "households", "covered", "rate", "weak"]].rename(columns={
            "code": "单位编号", "name": "派出单位", "households": "驻村在帮贫困户", "covered": "本单位结对",
            "rate": "覆盖率", "weak": "弱结对户"})
    click_table(table, "coverage-units", f, list(units["code"]), filters.open_unit,
                column_config={"覆盖率": pct_column()})
