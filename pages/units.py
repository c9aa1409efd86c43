"""单位/责任人: one sending unit's page (its helpers, their loads, last visits, ratings) and one
helper's page (households, visit history on a timeline). Without a unit or helper: the units of
the scope, to pick one."""

from __future__ import annotations

import streamlit as st

from data_access import metrics as m
from data_access import rules
from data_access.scope import Scope
from data_access.dates import months_before
from data_access.views import UNIT_LEVEL_ZH
from data_access import users
from ui import auth, charts, data, filters
from ui import format as fmt
from ui.boot import require_app
from ui.widgets import click_chart, click_table, kpi, pct_column, problem_list, table, titled, unmask

require_app()  # inside app.py's navigation (see ui/boot.py)

PAGE = "pages/units.py"
f = filters.filter_bar(PAGE)
url, d, scope, year = f.url, f.as_of, f.scope, f.year


def helper_page(helper_id: str) -> None:
    unmasked = unmask(f"helper-{helper_id}", f)
    info = data.helper_info(url, helper_id, scope, unmasked)
    if info is None:  # read_state checked helper_visible; gone since
        st.warning(f"未找到帮扶责任人 {fmt.md_text(helper_id)}，或您无权查看该责任人。")
        return
    text = fmt.md_text  # ledger values in titles and captions are shown as text, never as Markdown
    st.title(f"帮扶责任人：{text(info['helper_name'])}（{text(helper_id)}）")
    st.caption(" ｜ ".join(x for x in [
        f"派出单位：{text(info['unit_name'])}", f"处室：{text(info['department'])}" if info.get("department") else None,
        f"类别：{text(info['category'])}", f"职务：{text(info['position'])}" if info.get("position") else None,
        f"联系电话：{text(info['phone'])}" if info.get("phone") else None, f"数据截至 {fmt.date_zh(d)}"] if x))
    filters.freshness_note(url, d)
    b1, b2, _ = st.columns([1, 1, 4])
    if filters.within(Scope(unit=info["unit_id"])) != users.NOTHING:
        b1.button("← 返回单位页", on_click=filters.update, kwargs={"unit": info["unit_id"], "helper": None},
                  key="back-unit")
    b2.button("关闭责任人页", on_click=filters.update, kwargs={"helper": None}, key="close-helper")

    pairs = data.helper_pairings(url, d, helper_id, scope, unmasked)
    active = pairs[pairs["active"]]
    in_scope = active[active["gap_days"].notna()]
    c = st.columns(4)
    kpi(c[0], "帮扶户数", fmt.num(len(in_scope)), help="截至当日在帮结对的在帮贫困户数（第五条上限5户）。")
    kpi(c[1], "走访逾期结对", fmt.num(int(in_scope["is_overdue"].fillna(False).sum())))
    last = in_scope["last_visit"].dropna()
    kpi(c[2], "最近入户走访", fmt.date_zh(max(last)) if len(last) else "无")
    visits_all = data.helper_visits(url, helper_id, None, d, scope, unmasked)
    kpi(c[3], "累计走访记录", fmt.num(len(visits_all)))

    st.subheader("结对贫困户")
    shown = pairs.assign(
        active=pairs["active"].map({True: "是", False: "否"}),
        is_overdue=pairs["is_overdue"].map({True: "逾期", False: "正常"}).fillna("—"),
    )
    table(titled(shown, ["pairing_id", "household_id", "head_name", "status", "county", "township", "village",
                                "start_date", "end_date", "end_reason", "active", "last_visit", "gap_days",
                                "interval_months", "is_overdue"]))

    st.subheader("走访记录")
    start = months_before(d, 24)
    visits = visits_all[visits_all["visit_date"] >= start]
    if visits.empty:
        st.info(f"{fmt.date_zh(start)}以来没有走访记录。")
    else:
        click_chart(charts.visit_timeline(visits, f"近两年走访记录（{fmt.date_zh(start)}至{fmt.date_zh(d)}）"),
                    "helper-timeline", f)
        st.caption("圆点：入户走访（实心已上传照片，空心未上传照片）；菱形：电话、短信、微信联系，不计入走访频次。")
        with st.expander("走访记录明细"):
            table(titled(visits.sort_values("visit_date", ascending=False),
                         ["visit_date", "household_id", "head_name", "mode", "photo_uploaded", "visit_id"]))


def unit_page() -> None:
    info = f.unit_info
    text = fmt.md_text  # ledger values in titles and captions are shown as text, never as Markdown
    st.title(f"派出单位：{text(info['name'])}")
    st.caption(" ｜ ".join([f"单位编号：{text(info['unit_id'])}",
                           f"级别：{text(UNIT_LEVEL_ZH.get(info['level'], info['level']))}",
                           f"所属区划：{text(info['region_name'])}", f"数据截至 {fmt.date_zh(d)}"]))
    filters.freshness_note(url, d)
    st.button("← 返回单位列表", on_click=filters.update, kwargs={"unit": None, "helper": None}, key="back-units")
    # the unit's own page: all of its helpers wherever they help — within what the user may see (a county
    # user sees the unit's work in the county only)
    uscope = filters.within(Scope(unit=f.unit))
    if uscope == users.NOTHING:
        st.warning(auth.DENIED, icon=":material/block:")
        return
    if uscope.region:
        st.caption(f"单位页显示该单位在您有权查看的范围（{text(auth.scope_name(url, auth.current_user()))}）内的责任人和结对。")
    elif f.region:
        st.caption(f"单位页显示该单位的全部责任人，不受区划范围（{text(f.region_name)}）限制。")
    cap = m.total_row(data.cap(url, d, "province", uscope), "cap")
    cad = m.total_row(data.cadence(url, d, "province", uscope), "cadence")
    cov = m.total_row(data.coverage(url, d, "province", uscope), "coverage")
    rt = m.total_row(data.ratings(url, year, "province", uscope), "ratings")
    c = st.columns(5)
    kpi(c[0], "在帮责任人", fmt.num(cap["helpers"]))
    kpi(c[1], "超上限责任人", fmt.num(cap["violators"]))
    kpi(c[2], "走访合规率", fmt.pct(1 - cad["overdue"] / cad["active_pairings"]) if cad["active_pairings"] else fmt.DASH,
        help=f"在帮结对 {fmt.num(cad['active_pairings'])} 个，逾期 {fmt.num(cad['overdue'])} 个。")
    kpi(c[3], "驻村覆盖率", fmt.pct(fmt.rate(cov["covered"], cov["households"])),
        help=f"驻村帮扶的村中在帮贫困户 {fmt.num(cov['households'])} 户，本单位结对 {fmt.num(cov['covered'])} 户。")
    kpi(c[4], f"{year}年度未考核", fmt.num(rt["missing"]))

    st.subheader("本单位帮扶责任人")
    helpers = data.unit_helpers(url, d, year, uscope, unmask(f"unit_helpers_{f.unit}", f))
    if helpers.empty:
        st.info("该单位没有帮扶责任人。")
        return
    # no rating: 未考核 when due one (M4's missing list, the tile's count), else 无需考核 (no in-scope pairing in
    # the year) — never a bare "—" beside a tile that says nobody is missing
    due = set(data.missing_ratings(url, year, uscope, limit=None)["helper_id"])
    helpers = helpers.assign(grade=[g if isinstance(g, str) else "未考核" if h in due else "无需考核"
                                    for g, h in zip(helpers["grade"], helpers["helper_id"])])
    cols = ["helper_id", "helper_name", "department", "category", "phone", "load", "active_pairings", "overdue",
            "last_home_visit", "grade"]
    shown = titled(helpers, cols).rename(columns={"考核等次": f"{year}年度考核"})
    click_table(shown, "unit-helpers", f, list(helpers["helper_id"]), filters.open_helper)
    st.caption(f"帮扶户数超过{rules.CAP}户即超上限。考核一栏“无需考核”：{year}年度没有在帮结对。选中一行打开该责任人页。")

    st.subheader("本单位走访逾期结对")
    problem_list(lambda u: data.overdue(url, d, uscope, unmasked=u),
                 ["pairing_id", "helper_id", "helper_name", "household_id", "head_name", "county", "village",
                  "last_visit", "gap_days", "interval_months"],
                 "走访逾期结对", f"overdue_{f.unit}", f, empty="该单位没有走访逾期的结对。",
                 total=cad["overdue"], order="间隔最长的",
                 full=lambda u: data.full_list("overdue", url, d, uscope, unmasked=u))


def units_list() -> None:
    st.title("派出单位")
    filters.scope_caption(f)
    st.caption("各派出单位（按单位所在区划筛选）的在帮责任人、超上限和走访情况。选中一行打开单位页，也可在左侧“派出单位”中选择。")
    units = data.list_units(url, f.region)
    if units.empty:
        st.info("当前范围内没有派出单位。")
        return
    uscope = filters.within(Scope(region=f.region))
    cap = data.cap(url, d, "unit", uscope)[["code", "helpers", "violators"]]
    cad = data.cadence(url, d, "unit", filters.within(Scope()))[["code", "active_pairings", "overdue"]]
    df = units.merge(cap, how="left", left_on="unit_id", right_on="code").drop(columns="code")
    df = df.merge(cad, how="left", left_on="unit_id", right_on="code").drop(columns="code")
    for col in ("helpers", "violators", "active_pairings", "overdue"):
        df[col] = df[col].fillna(0).astype("int64")
    df["compliance"] = [(1 - o / a) * 100 if a else None for o, a in zip(df["overdue"], df["active_pairings"])]
    df["level"] = df["level"].map(UNIT_LEVEL_ZH)
    df = df.sort_values(["violators", "overdue", "unit_id"], ascending=[False, False, True]).reset_index(drop=True)
    shown = df[["unit_id", "name", "level", "region_name", "helpers", "violators", "active_pairings", "overdue",
                "compliance"]].rename(columns={
        "unit_id": "单位编号", "name": "派出单位", "level": "级别", "region_name": "所属区划", "helpers": "在帮责任人",
        "violators": "超上限责任人", "active_pairings": "在帮结对", "overdue": "逾期结对", "compliance": "走访合规率"})
    click_table(shown, "units-list", f, list(df["unit_id"]), filters.open_unit, column_config={"走访合规率": pct_column()})


if f.helper:
    helper_page(f.helper)
elif f.unit:
    unit_page()
else:
    units_list()
