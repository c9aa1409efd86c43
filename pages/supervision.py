"""督办整改: supervision orders by status, rectification by sending unit and by county, units ranked by overdue
items, an order's items with their live status and the unit's written response, and the 责任追究 list
(RULES.md M7). A unit user sees the orders addressed to the unit and writes one response per order."""

from __future__ import annotations

import streamlit as st

from data_access import supervision as sv
from ui import auth, charts, filters
from ui import format as fmt
from ui import supervision as ui_sv
from ui.boot import require_app
from ui.widgets import PLOTLY_CONFIG, kpi, pct_column, table

require_app()  # inside app.py's navigation (see ui/boot.py)

PAGE = "pages/supervision.py"
f = filters.filter_bar(PAGE)
st.title("督办整改")
filters.scope_caption(f)
st.caption("督办单按问题清单下发给派出单位；每条事项是否整改由台账判定（入户走访、结对结束、帮扶户数回到5户以内、"
           "贫困户已结对或退出、调换已批准），单位的整改说明不能代替台账。")
url, d, scope = f.url, f.as_of, f.scope
user = auth.current_user()

tot = ui_sv.totals(url, d, scope)
c = st.columns(5)
kpi(c[0], "督办单", fmt.num(tot["orders"]), neutral=True)
kpi(c[1], "督办事项", fmt.num(tot["items"]), neutral=True)
kpi(c[2], "已整改", fmt.num(tot["rectified"]), neutral=True)
kpi(c[3], "整改中", fmt.num(tot["open"]), neutral=True)
kpi(c[4], "逾期未整改", fmt.num(tot["overdue"]), neutral=True,
    help="整改期限已过、按台账仍未整改的事项。")
st.caption(f"整改率（期限已到的事项中已整改的比例）：{fmt.pct(tot['rate'])}")

od = ui_sv.orders(url, d, scope)
if od.empty:
    if user is not None and user.role == "unit":
        st.info("截至当日，没有下发给本单位的督办单。", icon=":material/inbox:")
    else:
        st.info("截至当日，当前范围内没有督办单。可在「走访频次」「帮扶上限」「结对覆盖」页的问题清单下方下发督办单。",
                icon=":material/inbox:")
    st.stop()

st.subheader("督办单")
status_filter = st.segmented_control("状态", ["全部", "有逾期", "整改中", "已全部整改"], default="全部",
                                     key="sv-status")
shown = od
if status_filter == "有逾期":
    shown = od[od["overdue"] > 0]
elif status_filter == "整改中":
    shown = od[(od["open"] > 0) & (od["overdue"] == 0)]
elif status_filter == "已全部整改":
    shown = od[od["rectified"] == od["items"]]
view = shown.assign(kind_zh=shown["kind"].map(sv.KIND_ZH), responded_zh=shown["responded"].map({True: "已填写", False: "未填写"}))
cols = {"order_id": "督办单号", "kind_zh": "问题类型", "unit_name": "派出单位", "place": "所在地区", "issued_on": "下发日期",
        "deadline": "整改期限", "items": "事项", "rectified": "已整改", "open": "整改中", "overdue": "逾期未整改",
        "responded_zh": "整改说明"}
st.dataframe(view[list(cols)].rename(columns=cols), hide_index=True, key="sv-orders", width="stretch")
ids = list(view["order_id"])
labels = {o: f"{o} · {u} · {k}（{n} 条，逾期 {x} 条）" for o, u, k, n, x in
          zip(view["order_id"], view["unit_name"], view["kind_zh"], view["items"], view["overdue"])}
# a unit user opens the first order that still has open items; others pick one
pending = [o for o, a, b in zip(view["order_id"], view["open"], view["overdue"]) if a + b > 0]
default = ids.index(pending[0]) + 1 if user is not None and user.role == "unit" and pending else 0
order_id = st.selectbox("查看督办单的事项和整改说明", [None, *ids], index=default, key="sv-pick",
                        format_func=lambda o: "（选择督办单）" if o is None else labels[o], placeholder="请选择")

if order_id:
    det = ui_sv.detail(url, order_id, d, scope)
    if det is None:
        st.warning("该督办单不在您有权查看的范围内。")
    else:
        o = det["order"]
        st.subheader(f"督办单 {order_id}")
        st.caption(" ｜ ".join([f"派出单位：{fmt.md_text(o['unit_name'])}", f"问题类型：{sv.KIND_ZH[o['kind']]}",
                                f"下发：{fmt.date_zh(o['issued_on'])}（{fmt.md_text(o['issued_by'])}）",
                                f"整改期限：{fmt.date_zh(o['deadline'])}"]))
        if o.get("note"):
            st.text(f"督办说明：{o['note']}")
        items = det["items"].assign(status_zh=lambda x: x["status"].map(sv.STATUS_ZH))
        wanted = [c for c in ["subject", "helper_id", "household_id", "load", "last_visit", "gap_days", "end_date",
                              "village_code", "status_zh"] if c in items.columns]
        names = {"subject": sv.SUBJECT_ZH[o["kind"]] + "编号", "helper_id": "帮扶责任人编号", "household_id": "户编号",
                 "load": "下发时帮扶户数", "last_visit": "下发时最近入户走访", "gap_days": "下发时间隔天数",
                 "end_date": "结束日期", "village_code": "村代码", "status_zh": f"{fmt.date_zh(d)}状态"}
        table(items[wanted].rename(columns=names), key=f"sv-items-{order_id}")
        st.markdown("**单位整改说明**")
        if o.get("response"):
            st.text(o["response"])
        else:
            st.caption("被督办单位尚未填写整改说明。")
        if user is not None and user.role == "unit" and user.unit_id == o["unit_id"] and not auth.is_demo_viewer(user):
            with st.form(f"sv-respond-{order_id}"):
                st.text_area("填写或修改整改说明（每张督办单一份；事项是否整改仍以台账为准）", value=o.get("response") or "",
                             max_chars=sv.MAX_RESPONSE, key=f"sv-response-{order_id}")
                st.form_submit_button("提交整改说明", type="primary", on_click=ui_sv.respond, args=(order_id,))
            done = st.session_state.pop(f"sv-response-{order_id}-result", None)
            if done:
                (st.success if done[0] else st.error)(done[1])

if user is None or user.role != "unit":
    st.subheader("各派出单位整改情况")
    units = ui_sv.by_group(url, d, scope, "unit")
    ranked = units[units["overdue"] > 0]
    if len(ranked):
        fig = charts.ranking_bar(ranked.head(15), "overdue", "逾期未整改事项最多的派出单位", "逾期未整改事项",
                                 kind="count", hover=["督办事项：{items:,} 条", "已整改：{rectified:,} 条"])
        st.plotly_chart(fig, key="sv-rank", config=PLOTLY_CONFIG)
    ucols = {"code": "单位编号", "name": "派出单位", "orders": "督办单", "items": "事项", "rectified": "已整改",
             "open": "整改中", "overdue": "逾期未整改", "due": "期限已到", "rate": "整改率"}
    st.dataframe(units[list(ucols)].rename(columns=ucols), hide_index=True, width="stretch",
                 column_config={"整改率": pct_column()}, key="sv-units")
    st.subheader("各县（市、区）整改情况")
    counties = ui_sv.by_group(url, d, scope, "county")
    ccols = {"name": "所在地区", "orders": "督办单", "items": "事项", "rectified": "已整改", "open": "整改中",
             "overdue": "逾期未整改", "due": "期限已到", "rate": "整改率"}
    st.dataframe(counties[list(ccols)].rename(columns=ccols), hide_index=True, width="stretch",
                 column_config={"整改率": pct_column()}, key="sv-counties")
    st.subheader("责任追究")
    acc = units[units["overdue"] > 0]
    if acc.empty:
        st.success("没有逾期未整改的事项。", icon=":material/check_circle:")
    else:
        st.caption("整改期限已过、按台账仍未整改的事项所属单位（第十二条（四）：问题突出的单位和地方要追究责任）。")
        st.dataframe(acc[["code", "name", "overdue", "items", "rate"]].rename(columns=ucols), hide_index=True,
                     width="stretch", column_config={"整改率": pct_column()}, key="sv-accountability")
