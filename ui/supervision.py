"""Supervision orders in the dashboard (督办, data_access.supervision): the issue panel under each problem list,
cached reads for the 督办整改 page, the overview and the meeting screen, and the unit's badge.

Every write goes through data_access.supervision, which checks the user's role and scope on the server, audits
and writes to the primary database; the reads here use the primary too (an order just issued must show at once;
the tables are small).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from data_access import db
from data_access import supervision as sv
from data_access.scope import Scope

from . import auth, data
from .filters import Filters, today
from .format import md_text

TTL = 300  # the key holds supervision.version(): an import or a write elsewhere shows at once


def primary():
    """The engine of the primary database (DATABASE_URL): supervision reads must see their own writes."""
    return data.engine(data.db_url())


@st.cache_data(ttl=TTL, show_spinner=False)
def _orders(url: str, version: str, as_of: dt.date, scope: Scope) -> pd.DataFrame:
    return sv.orders(primary(), as_of, scope)


@st.cache_data(ttl=TTL, show_spinner=False)
def _totals(url: str, version: str, as_of: dt.date, scope: Scope) -> dict:
    return sv.totals(primary(), as_of, scope)


@st.cache_data(ttl=TTL, show_spinner=False)
def _by_group(url: str, version: str, as_of: dt.date, scope: Scope, by: str) -> pd.DataFrame:
    return sv.by_group(primary(), as_of, scope, by)


@st.cache_data(ttl=TTL, show_spinner=False)
def _detail(url: str, version: str, order_id: str, as_of: dt.date, scope: Scope):
    return sv.order_detail(primary(), order_id, as_of, scope)


@st.cache_data(ttl=TTL, show_spinner=False)
def _unit_open_count(url: str, version: str, unit_id: str, as_of: dt.date) -> int:
    return sv.unit_open_count(primary(), unit_id, as_of)


def _version(url: str) -> str:
    return sv.version(primary())


def orders(url: str, as_of: dt.date, scope: Scope) -> pd.DataFrame:
    return _orders(url, _version(url), as_of, scope)


def totals(url: str, as_of: dt.date, scope: Scope) -> dict:
    return _totals(url, _version(url), as_of, scope)


def by_group(url: str, as_of: dt.date, scope: Scope, by: str) -> pd.DataFrame:
    return _by_group(url, _version(url), as_of, scope, by)


def detail(url: str, order_id: str, as_of: dt.date, scope: Scope):
    return _detail(url, _version(url), order_id, as_of, scope)


def unit_open_count(url: str, unit_id: str, as_of: dt.date) -> int:
    return _unit_open_count(url, _version(url), unit_id, as_of)


def forget() -> None:
    """After a write: the cached reads of this module start again."""
    for fn in (_orders, _totals, _by_group, _detail, _unit_open_count):
        fn.clear()


# the metric whose per-unit rows tell which sending units have rows in a problem list, and the field that counts them
UNIT_COUNTS = {"overdue": ("cadence", "overdue"), "cap": ("cap", "violators"),
               "unapproved": ("replacements", "unapproved"), "uncovered": ("coverage", None)}


def _unit_choices(kind: str, f: Filters) -> dict[str, str]:
    """unit_id -> "name（n 条）" of the sending units with problems of the kind in the scope on the date, most
    first, from the metrics' own per-unit rows (stored for today). Uncovered households belong to a unit through
    its assigned villages: the units whose assigned villages hold households not covered by them."""
    metric, field = UNIT_COUNTS[kind]
    df = getattr(data, metric)(f.url, f.as_of, "unit", f.scope)
    if df.empty:
        return {}
    n = df["households"] - df["covered"] if field is None else df[field]
    df = df.assign(n=n)
    df = df[df["n"] > 0].sort_values(["n", "code"], ascending=[False, True])
    return {str(c): f"{name}（{int(k):,}）" for c, name, k in zip(df["code"], df["name"], df["n"])}


def issue_panel(kind: str, f: Filters) -> None:
    """下发督办单 under a problem list: pick a sending unit with rows in the list, all of its rows or some,
    a deadline (30 days by default) and a note. Shown to province, city and county users on today's list."""
    user = auth.current_user()
    if user is None or auth.is_demo_viewer(user) or not sv.may_issue(user):
        return
    key = f"issue-{kind}"
    with st.expander(f"下发督办单（{sv.KIND_ZH[kind]}）", icon=":material/assignment_late:"):
        if f.as_of != today():
            st.caption("督办单按今天的问题清单下发：请把数据截至日期改为今天。")
            return
        choices = _unit_choices(kind, f)
        if not choices:
            st.caption("当前清单中没有可督办的派出单位。")
            return
        unit = st.selectbox("派出单位（括号内为问题数）", list(choices), format_func=lambda u: choices[u], key=f"{key}-unit",
                            placeholder="请选择")
        preview = sv.problem_rows_for(primary(), kind, f.as_of, Scope(region=f.region or user.scope.region, unit=unit))
        first = sv.FIRST_FIELD[kind]
        subjects = list(preview[first].astype(str)) if len(preview) else []
        if not subjects:
            st.caption("该单位在当前范围内没有此类问题。")
            return
        whole = st.radio("督办范围", ["该单位的全部问题", "选择部分记录"], horizontal=True, key=f"{key}-mode")
        chosen = subjects
        if whole == "选择部分记录":
            # no English words from Streamlit's own widget: a Chinese placeholder, and no "Select all" (the radio's
            # 该单位的全部问题 is that choice)
            chosen = st.multiselect(f"选择{sv.SUBJECT_ZH[kind]}（共 {len(subjects)} 条）", subjects, key=f"{key}-pick",
                                    placeholder="点击选择，可输入查找", select_all=False)
        st.date_input("整改期限", value=f.as_of + dt.timedelta(days=sv.DEFAULT_DAYS), min_value=f.as_of,
                                 key=f"{key}-deadline")
        st.text_area("督办说明（可选）", max_chars=sv.MAX_NOTE, key=f"{key}-note")
        st.button(f"下发督办单（{len(chosen)} 条）", type="primary", key=f"{key}-go", disabled=not chosen,
                  on_click=_issue, args=(kind, unit, f.as_of, f.region, None if whole == "该单位的全部问题" else chosen))
        done = st.session_state.pop(f"{key}-result", None)
        if done:
            ok, message = done
            (st.success if ok else st.error)(message, icon=":material/check_circle:" if ok else ":material/error:")


def _issue(kind: str, unit: str, as_of: dt.date, region: str | None, subjects: list[str] | None) -> None:
    """The 下发督办单 button's callback (it runs before the script, so a rerun of the script cannot lose the click):
    data_access.supervision.issue checks the user's role and scope on the server, audits and writes."""
    key = f"issue-{kind}"
    deadline = st.session_state.get(f"{key}-deadline")
    note = st.session_state.get(f"{key}-note")
    try:
        out = sv.issue(primary(), kind, unit, deadline, as_of=as_of, region=region, note=note, subjects=subjects,
                       user=auth.current_user())
    except (sv.SupervisionError, db.BangfuError) as exc:
        st.session_state[f"{key}-result"] = (False, str(exc))
        return
    forget()
    st.session_state[f"{key}-result"] = (True, f"已下发督办单 {out['order_id']}：派出单位 {md_text(unit)}，{out['items']} 条，"
                                               f"整改期限 {deadline.isoformat()}。可在「督办整改」页查看整改情况。")


def respond(order_id: str) -> None:
    """The 提交整改说明 button's callback: data_access.supervision.respond checks that the user belongs to the
    addressed unit, audits and writes."""
    text = st.session_state.get(f"sv-response-{order_id}", "")
    try:
        sv.respond(primary(), order_id, text, auth.current_user())
    except (sv.SupervisionError, db.BangfuError) as exc:
        st.session_state[f"sv-response-{order_id}-result"] = (False, str(exc))
        return
    forget()
    st.session_state[f"sv-response-{order_id}-result"] = (True, "整改说明已提交。")


def nav_title(url: str) -> str:
    """The navigation title of the page for a unit user: 督办整改（N） with N the orders addressed to the unit that
    still have an item not rectified today (the user of the previous run: the navigation is drawn before sign-in
    is checked again, and is cosmetic — the page itself checks the user)."""
    user = auth.current_user()
    if user is None or user.role != "unit" or not user.unit_id:
        return "督办整改"
    try:
        n = unit_open_count(url, user.unit_id, today())
    except Exception:  # noqa: BLE001 - the badge never breaks the navigation (the page says what is wrong)
        return "督办整改"
    return f"督办整改（{n}）" if n else "督办整改"
