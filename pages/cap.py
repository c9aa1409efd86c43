"""帮扶上限: helpers over five households (第五条, RULES.md M2) by region and sending unit, and the
helpers with their loads."""

from __future__ import annotations

import streamlit as st

from data_access import metrics as m
from data_access import rules
from ui import charts, data, filters
from ui import format as fmt
from ui import supervision as ui_sv
from ui.boot import require_app
from ui.report import report_button
from ui.widgets import click_chart, kpi, problem_list

require_app()  # inside app.py's navigation (see ui/boot.py)

f = filters.filter_bar("pages/cap.py")
st.title("帮扶上限")
filters.scope_caption(f)
report_button(f, "cap", ("cap",))
st.caption(f"第五条：1名帮扶责任人最多帮扶不超过{rules.CAP}个贫困户。按责任人所属派出单位的区划统计。")
url, d, scope = f.url, f.as_of, f.scope

# the total is the sum of the child level's groups (the same cached call as the ranking below)
tot = m.total_row(data.cap(url, d, f.child or "province", scope), "cap")
c = st.columns(4)
kpi(c[0], "在帮责任人", fmt.num(tot["helpers"]))
kpi(c[1], "超上限责任人", fmt.num(tot["violators"]))
kpi(c[2], "超上限占比", fmt.pct(fmt.rate(tot["violators"], tot["helpers"])))
kpi(c[3], "超出户数合计", fmt.num(tot["excess"]), help="各超上限责任人（帮扶户数 − 5）之和。")

hover = ["在帮责任人：{helpers:,} 名", "超出户数：{excess:,} 户"]
child = f.child
left, right = st.columns(2)
with left:
    if child:
        label = filters.level_label(child)
        df = data.cap(url, d, child, scope)
        if df.empty:
            st.info("当前范围内没有在帮责任人。")
        else:
            fig = charts.ranking_bar(df, "violators", f"各{label}超上限责任人数", "超上限责任人", kind="count",
                                     hover=hover)
            click_chart(fig, "cap-rank", f, filters.drill_to)
            st.caption(f"点击条形下钻到该{label}；「省直」「市直」为上级派出单位汇总。")
    else:
        st.info("已到村级，没有更下一级。")
with right:
    units = data.cap(url, d, "unit", scope)
    if units.empty:
        st.info("当前范围内没有在帮责任人。")
    else:
        top = units.sort_values(["violators", "excess", "code"], ascending=[False, False, True]).head(15)
        fig = charts.ranking_bar(top, "violators", "超上限责任人最多的派出单位（前15）", "超上限责任人", kind="count",
                                 hover=hover)
        click_chart(fig, "cap-units", f, filters.open_unit)
        st.caption("点击条形打开该单位页。")

st.subheader("超上限责任人清单")
cols = ["helper_id", "helper_name", "unit_name", "unit_id", "department", "category", "phone", "load"]
def by_load(df):
    return df.sort_values(["load", "helper_id"], ascending=[False, True], kind="stable")


def violators(loads):
    """The helpers over the cap: the head of the loads list (the same order, load first), so one cached
    call serves both lists (with more than LIST_ROWS violators the loads list is all of them)."""
    return loads[loads["load"] > rules.CAP]


problem_list(lambda u: violators(by_load(data.cap_list(url, d, scope, 1, unmasked=u))), cols, "超上限责任人", "cap", f,
             empty=f"当前范围内没有帮扶超过{rules.CAP}户的责任人。", on_row=filters.open_helper, row_code="helper_id",
             total=tot["violators"], order="帮扶户数最多的",
             full=lambda u: by_load(data.full_list("cap", url, d, scope, unmasked=u)))
ui_sv.issue_panel("cap", f)

with st.expander("全部在帮责任人及帮扶户数"):
    problem_list(lambda u: by_load(data.cap_list(url, d, scope, 1, unmasked=u)), cols, "在帮责任人帮扶户数", "loads", f,
                 empty="当前范围内没有在帮责任人。", on_row=filters.open_helper, row_code="helper_id",
                 total=tot["helpers"], order="帮扶户数最多的",
                 full=lambda u: by_load(data.full_list("cap", url, d, scope, min_load=1, unmasked=u)))
