"""年度考核: grade distribution (第十三、十四条, RULES.md M4) per year by region and sending unit,
missing ratings, and helpers rated excellent despite overdue pairings or being over the cap."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from data_access import metrics as m
from data_access import rules
from data_access import shares
from data_access.views import rating_check_date
from ui import charts, data, filters
from ui import format as fmt
from ui.boot import require_app
from ui.report import report_button
from ui.widgets import click_chart, kpi, problem_list

require_app()  # inside app.py's navigation (see ui/boot.py)

f = filters.filter_bar("pages/ratings.py")
st.title("年度考核")
filters.scope_caption(f)
report_button(f, "ratings", ("ratings",))
url, d, scope, year = f.url, f.as_of, f.scope, f.year
st.caption(f"考核年度：{year}年度（在左侧“考核年度”中切换）。未考核：该年度有在帮结对、但没有该年度等次的责任人。"
           "优秀、合格、不合格的占比以已考核责任人为基数，未考核的占比以应考核（已考核 + 未考核）为基数。")
if year >= d.year:
    st.caption(f"{year}年度在数据截至日期（{fmt.date_zh(d)}）尚未结束，等次一般在年度结束后评定，未考核人数仅供参考。")

tot = m.total_row(data.ratings(url, year, "province", scope), "ratings")
share = shares.rating_shares(tot)
rated = shares.rated(tot)
c = st.columns(5)
kpi(c[0], "已考核责任人", fmt.num(rated))
for col, g, name in ((c[1], "excellent", "优秀"), (c[2], "qualified", "合格"), (c[3], "unqualified", "不合格")):
    kpi(col, name, fmt.num(tot[g]), f"占已考核 {fmt.pct(share[g])}", neutral=True)
kpi(c[4], "未考核", fmt.num(tot["missing"]), f"占应考核 {fmt.pct(share['missing'])}", neutral=True)

# the years rated by the as-of date: a year's ratings are given after it ends (and the chosen year)
years = sorted(y for y in set(data.rating_years(url)) | {year} if y < d.year or y == year)
rows = []
for y in years:
    r = m.total_row(data.ratings(url, y, "province", scope), "ratings")
    rows.append({"year": y, **{k: r[k] for k in ("excellent", "qualified", "unqualified", "missing")}})
if len(rows) > 1:
    click_chart(charts.years_grade_shares(pd.DataFrame(rows)), "ratings-years", f)

child = f.child
options = ([child] if child else []) + ["unit"]
names = {**{lvl: f"按{filters.level_label(lvl)}" for lvl in options if lvl != "unit"}, "unit": "按派出单位"}
by = st.segmented_control("分组", options, format_func=names.get, default=options[0], key=f"ratings-by-{child}") or options[0]
df = data.ratings(url, year, by, scope)
if shares.due(tot) == 0:
    # nothing rated and nobody due a rating: no chart and no lists (no green "everyone rated" under it)
    st.info(f"当前范围内没有{year}年度的考核等次，也没有该年度有在帮结对的责任人。")
else:
    if rated == 0:
        st.info(f"当前范围内还没有{year}年度的考核等次；下图只有未考核人数。")
    if by == "unit":
        df = df.assign(_n=df[["excellent", "qualified", "unqualified", "missing"]].sum(axis=1))
        df = df.sort_values(["_n", "code"], ascending=[False, True]).head(30).drop(columns="_n")
        title = f"{year}年度各派出单位考核等次占比（责任人最多的前30个单位）"
        action = filters.open_unit
    else:
        title = f"{year}年度各{filters.level_label(by)}考核等次占比"
        action = filters.drill_to
    click_chart(charts.grade_shares(df, title), "ratings-shares", f, action)
    st.caption("点击条形" + ("打开该单位页。" if by == "unit" else "下钻到该区划。") + "「省直」「市直」为上级派出单位汇总。")

    st.subheader("未考核责任人")
    problem_list(lambda u: data.missing_ratings(url, year, scope, unmasked=u),
                 ["helper_id", "helper_name", "unit_name", "unit_id", "department", "category", "phone"],
                 f"{year}年度未考核责任人", f"missing_ratings_{year}", f,
                 empty=f"{year}年度有在帮结对的责任人都有考核等次。",
                 on_row=filters.open_helper, row_code="helper_id", total=tot["missing"], order="按责任人编号",
                 full=lambda u: data.full_list("missing_ratings", url, year, scope, unmasked=u))

    st.subheader("评为优秀但存在问题的责任人")
    check = rating_check_date(year, d)
    if not tot["excellent"]:
        st.info(f"当前范围内没有评为{year}年度优秀的责任人，无需核查。")
    else:
        problem_list(lambda u: data.excellent_with_problems(url, year, d, scope, unmasked=u),
                     ["helper_id", "helper_name", "unit_name", "unit_id", "department", "load", "overdue", "problems",
                      "checked_on"],
                     f"{year}年度优秀但存在问题", f"excellent_with_problems_{year}", f,
                     empty=f"{year}年度评为优秀的责任人在{fmt.date_zh(check)}都没有走访逾期或超上限问题。",
                     on_row=filters.open_helper, row_code="helper_id", order="按责任人编号",
                     full=lambda u: data.full_list("excellent_with_problems", url, year, d, scope, unmasked=u),
                     note=f"以{fmt.date_zh(check)}（考核年度末，或更早的数据截至日期）的状态核查：有走访逾期结对或帮扶超过"
                          f"{rules.CAP}户。")
