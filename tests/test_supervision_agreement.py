"""Issue 13's "Done when", end to end on SQLite and PostgreSQL: a county leader issues orders for a unit's overdue
pairings (through the dashboard), the next ledger import (through the command line) rectifies part of them, and
the 督办整改 page, `bangfu rectify list` and the meeting screen's 逾期未整改 tile agree on what is rectified, open and
overdue — with each other and with the statuses worked out in this file from the hand-made ledgers alone
(RULES.md M3 and M7 re-implemented here in a few lines of Python, never by calling the product's code).

Also: a unit user's navigation names the orders that still have items to rectify, 督办整改（N）, right after
sign-in, before and after the import that rectifies one order completely.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from data_access import users
from data_access.cli import main

from .conftest import write_ledger
from .ledgers import HELPERS, REGIONS, UNITS, V1, V2, V3, hh, pr

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PW = "correct-horse-1"
COUNTY = "130102"  # 长安区: V1 and V2
UNIT = "U3"  # 长安区农业农村局: helpers A and B, a county-level unit (2-month interval, no department)

I = dt.date(2026, 6, 30)  # the orders are issued on this day (the dashboard's "today" then)
D = dt.date(2026, 8, 10)  # the day the statuses are read (the dashboard's "today" then)
T_PAST = dt.date(2026, 7, 31)  # deadline already passed on D
T_LATER = dt.date(2026, 8, 31)  # deadline still to come on D
# three orders, their items chosen on the page: (subjects, deadline)
ORDERS = {
    "DB20260630-001": (["P1", "P2", "P3", "P4"], T_PAST),
    "DB20260630-002": (["P5"], T_PAST),
    "DB20260630-003": (["P6", "P7"], T_LATER),
}


# ------------------------------------------------------------------------------------------- the ledgers


def first_ledger() -> dict[str, list[dict]]:
    """U3 has seven pairings never visited since they started on 2026-01-01 (overdue on I: the cut-off is
    2026-04-30) and one visited in June (on time on I and on D). Another unit in the same county and a unit in
    another county have overdue pairings too: they must not end up in U3's orders."""
    households = [hh(f"H{i}", V1) for i in range(1, 9)] + [hh("H9", V2), hh("H10", V3)]
    pairings = [pr(f"P{i}", "A", f"H{i}", "2026-01-01") for i in (1, 2, 3, 4)]
    pairings += [pr(f"P{i}", "B", f"H{i}", "2026-01-01") for i in (5, 6, 7, 8)]
    pairings += [pr("PC9", "C2", "H9", "2026-01-01"),  # 石家庄市教育局 in 长安区: overdue, not U3's
                 pr("PF10", "F", "H10", "2026-01-01")]  # 路南区民政局 in 路南区: overdue, another county
    visits = [visit("V8", "B", "H8", "2026-06-15")]
    return {"regions": REGIONS, "units": UNITS, "helpers": copy.deepcopy(HELPERS), "households": households,
            "pairings": pairings, "visits": visits}


def second_ledger() -> dict[str, list[dict]]:
    """The next import: the first ledger and the contacts made since the orders (cut-off on D: 2026-06-10)."""
    t = first_ledger()
    t["visits"] += [
        visit("W1", "A", "H1", "2026-07-15"),  # P1: in-home, in time -> rectified
        visit("W2", "A", "H2", "2026-07-20", "phone"),  # P2: a phone call is no visit -> still overdue
        visit("W3", "A", "H3", "2026-06-01"),  # P3: in-home but before D's cut-off -> still overdue
        # P4: nothing
        visit("W5", "B", "H5", "2026-08-05"),  # P5: in-home -> rectified
        visit("W6", "A", "H6", "2026-08-01"),  # P6: visited by A, but B is the helper (no department) -> open
        visit("W7", "B", "H7", "2026-08-20"),  # P7: after D -> open on D
    ]
    return t


def visit(vid: str, helper: str, household: str, date: str, mode: str = "in_home") -> dict:
    return {"visit_id": vid, "helper_id": helper, "household_id": household, "visit_date": date, "mode": mode,
            "photo_uploaded": "1"}


# ------------------------------------------------------- the rules, worked out here from the ledger rows


def months_before(d: dt.date, k: int) -> dt.date:
    """RULES.md Time: the same day k calendar months earlier, clamped to the month's last day."""
    y, m = divmod(d.year * 12 + d.month - 1 - k, 12)
    return dt.date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def overdue_pairings(t: dict, d: dt.date, unit: str | None = None) -> set[str]:
    """RULES.md M3 on these ledgers (every helper here is of a county- or city-level unit or has no department:
    interval 2 months, the helper is the only visitor)."""
    day = dt.date.fromisoformat
    helpers = {h["helper_id"]: h for h in t["helpers"]}
    status = {x["household_id"]: x["status"] for x in t["households"]}
    level = {u["unit_id"]: u["level"] for u in t["units"]}
    out = set()
    for p in t["pairings"]:
        h = helpers[p["helper_id"]]
        assert not (level[h["unit_id"]] == "province" and h.get("department")), "a department-based pairing"
        if unit and h["unit_id"] != unit:
            continue
        active = day(p["start_date"]) <= d and (not p["end_date"] or day(p["end_date"]) > d)
        if not active or status[p["household_id"]] not in ("not_lifted", "lifted_with_policy"):
            continue
        seen = [day(v["visit_date"]) for v in t["visits"] if v["helper_id"] == p["helper_id"]
                and v["household_id"] == p["household_id"] and v["mode"] == "in_home" and day(v["visit_date"]) <= d]
        ref = max(seen + [day(p["start_date"])])
        if ref < months_before(d, 2):
            out.add(p["pairing_id"])
    return out


def expected_statuses(t: dict, d: dt.date) -> dict[tuple[str, str], str]:
    """RULES.md M7: (order_id, subject) -> rectified / overdue / open on d, from ledger t."""
    still = overdue_pairings(t, d)
    return {(o, s): "rectified" if s not in still else "overdue" if d > deadline else "open"
            for o, (subjects, deadline) in ORDERS.items() for s in subjects}


def tally(statuses: dict[tuple[str, str], str]) -> dict[str, int]:
    c = Counter(statuses.values())
    return {s: c[s] for s in ("rectified", "open", "overdue")}


def unfinished_orders(statuses: dict[tuple[str, str], str]) -> int:
    return len({o for (o, _), s in statuses.items() if s != "rectified"})


# ------------------------------------------------------------------------------------------- the dashboard


@pytest.fixture
def app_db(engine, db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield engine, db_url
    st.cache_data.clear()
    st.cache_resource.clear()


def login(username: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input(key="login_user").input(username)
    at.text_input(key="login_password").input(PW)
    at.button[0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def nav_titles(at: AppTest) -> list[str]:
    """The page titles of the navigation app.py drew in the last run (st.navigation's registry in AppTest)."""
    pages = getattr(at, "_registered_pages", None)
    assert pages, "AppTest no longer exposes the navigation's pages"
    return [p["page_name"] for p in pages.values()]


def supervision_nav_title(at: AppTest) -> str:
    titles = [t for t in nav_titles(at) if t.startswith("督办整改")]
    assert len(titles) == 1, nav_titles(at)
    return titles[0]


def cli_import(tables: dict, folder: Path, url: str, capsys) -> None:
    assert main(["import", str(write_ledger(folder, tables)), "--db", url]) == 0, capsys.readouterr().err
    capsys.readouterr()


def cli_list(url: str, d: dt.date, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["rectify", "list", "--as-of", d.isoformat(), "--format", "json", "--db", url]) == 0
    return json.loads(capsys.readouterr().out)


def page_figures(at: AppTest, d: dt.date) -> dict:
    """What the 督办整改 page shows: its tiles, its orders table, the per-unit and per-county tables, and each
    order's items with their status on d (the order picked in its selectbox)."""
    metrics = {m.label: m.value for m in at.metric}
    tables = [df.value for df in at.dataframe]

    def table_with(*cols):
        found = [t for t in tables if all(c in t.columns for c in cols)]
        assert len(found) == 1, [list(t.columns) for t in tables]
        return found[0]

    orders = table_with("督办单号", "事项", "已整改", "整改中", "逾期未整改")
    units = table_with("单位编号", "已整改", "整改中", "逾期未整改", "期限已到", "整改率")
    counties = table_with("所在地区", "已整改", "整改中", "逾期未整改", "期限已到")
    rate = [c.value for c in at.caption if c.value.startswith("整改率")]
    items: dict[tuple[str, str], str] = {}
    column = f"{d.year}年{d.month}月{d.day}日状态"
    zh = {"已整改": "rectified", "整改中": "open", "逾期未整改": "overdue"}
    for order_id in orders["督办单号"]:
        at.selectbox(key="sv-pick").set_value(order_id).run()
        assert not at.exception, [e.message for e in at.exception]
        detail = [df.value for df in at.dataframe if column in df.value.columns]
        assert len(detail) == 1, [list(df.value.columns) for df in at.dataframe]
        items.update({(order_id, str(s)): zh[v] for s, v in zip(detail[0]["结对编号"], detail[0][column])})
    return {"metrics": metrics, "orders": orders, "units": units, "counties": counties, "rate": rate, "items": items}


def meeting_overdue_tile(at: AppTest) -> tuple[str, str]:
    """(the 逾期未整改 tile's figure, the screen's 数据截至 line) of the meeting screen."""
    html = "".join(m.value for m in at.markdown)
    tile = re.findall(r'<div class="bf-label">逾期未整改</div><div class="bf-value"[^>]*>([^<]*)</div>', html)
    assert len(tile) == 1, html[:2000]
    date = re.findall(r"数据截至 (\d+年\d+月\d+日)", html)
    return tile[0], date[0] if date else ""


def issue_on_page(at: AppTest, subjects: list[str], deadline: dt.date) -> None:
    """下发督办单 under the 走访频次 page's overdue list: unit U3, the chosen pairings, the deadline."""
    at.selectbox(key="issue-overdue-unit").set_value(UNIT).run()
    at.radio(key="issue-overdue-mode").set_value("选择部分记录").run()
    at.multiselect(key="issue-overdue-pick").set_value(subjects).run()
    at.date_input(key="issue-overdue-deadline").set_value(deadline).run()
    at.text_area(key="issue-overdue-note").input("限期入户走访").run()
    at.button(key="issue-overdue-go").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("已下发督办单" in s.value for s in at.success), [e.value for e in at.error]


# ------------------------------------------------------------------------------------------- the test


def test_page_cli_and_meeting_screen_agree_after_an_import(app_db, tmp_path, monkeypatch, capsys):
    engine, url = app_db
    first, second = first_ledger(), second_ledger()

    # the ledger as it stood on I, imported that day
    monkeypatch.setenv("BANGFU_TODAY", I.isoformat())
    cli_import(first, tmp_path / "ledger-1", url, capsys)
    users.add_user(engine, "changan", PW, "county", region=COUNTY, display_name="长安区领导")
    users.add_user(engine, "u3", PW, "unit", unit=UNIT)
    overdue_on_i = overdue_pairings(first, I, UNIT)
    assert overdue_on_i == {f"P{i}" for i in range(1, 8)}  # P8 was visited in June
    assert overdue_pairings(first, I) == overdue_on_i | {"PC9", "PF10"}

    # the county leader issues three orders from the 走访频次 page's overdue list
    at = goto(login("changan"), "cadence")
    assert at.date_input(key="f_as_of").value == I
    pick = None
    for subjects, deadline in ORDERS.values():
        issue_on_page(at, subjects, deadline)
        pick = at.multiselect(key="issue-overdue-pick")
    assert set(pick.options) == overdue_on_i  # U3's overdue pairings in the county, nothing of U2's or U4's
    issued = cli_list(url, I, capsys)
    assert {(r["order_id"], r["subject"]): (r["issued_on"], r["deadline"], r["unit_id"]) for r in issued} == {
        (o, s): (I.isoformat(), deadline.isoformat(), UNIT) for o, (subjects, deadline) in ORDERS.items()
        for s in subjects}
    assert {r["status"] for r in issued} == {"open"}

    # on D, before the next import, nothing is rectified: the unit user's navigation names all three orders
    monkeypatch.setenv("BANGFU_TODAY", D.isoformat())
    before = expected_statuses(first, D)
    assert tally(before) == {"rectified": 0, "open": 2, "overdue": 5}
    at_unit = login("u3")
    assert supervision_nav_title(at_unit) == f"督办整改（{unfinished_orders(before)}）" == "督办整改（3）"
    assert {(r["order_id"], r["subject"]): r["status"] for r in cli_list(url, D, capsys)} == before

    # the county leader has the 督办整改 page open on D when the next ledger is imported
    at = goto(login("changan"), "supervision")
    assert page_figures(at, D)["items"] == before

    cli_import(second, tmp_path / "ledger-2", url, capsys)

    # worked out from the ledger rows alone
    want = expected_statuses(second, D)
    assert want == {
        ("DB20260630-001", "P1"): "rectified", ("DB20260630-001", "P2"): "overdue",
        ("DB20260630-001", "P3"): "overdue", ("DB20260630-001", "P4"): "overdue",
        ("DB20260630-002", "P5"): "rectified",
        ("DB20260630-003", "P6"): "open", ("DB20260630-003", "P7"): "open",
    }
    counts = tally(want)
    assert counts == {"rectified": 2, "open": 2, "overdue": 3}  # all three present
    due = [k for k in want if ORDERS[k[0]][1] <= D]
    rate = sum(want[k] == "rectified" for k in due) / len(due)  # RULES.md M7: rectified / items past deadline

    # 1. the command line
    rows = cli_list(url, D, capsys)
    assert [(r["order_id"], r["subject"]) for r in rows] == sorted(want)
    cli = {(r["order_id"], r["subject"]): r["status"] for r in rows}
    assert cli == want
    assert {r["kind"] for r in rows} == {"overdue"} and {r["unit_id"] for r in rows} == {UNIT}

    # 2. the 督办整改 page (the same session, rerun after the import)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.date_input(key="f_as_of").value == D
    page = page_figures(at, D)
    assert page["items"] == want == cli
    assert page["metrics"] == {"督办单": str(len(ORDERS)), "督办事项": str(len(want)),
                               "已整改": str(counts["rectified"]), "整改中": str(counts["open"]),
                               "逾期未整改": str(counts["overdue"])}
    assert page["rate"] == [f"整改率（期限已到的事项中已整改的比例）：{rate * 100:.1f}%"] == ["整改率（期限已到的事项中已整改的比例）：40.0%"]
    per_order = {o: Counter(s for (oo, _), s in want.items() if oo == o) for o in ORDERS}
    shown = {r["督办单号"]: (r["事项"], r["已整改"], r["整改中"], r["逾期未整改"]) for r in page["orders"].to_dict("records")}
    assert shown == {o: (len(ORDERS[o][0]), c["rectified"], c["open"], c["overdue"]) for o, c in per_order.items()}
    units = page["units"].to_dict("records")
    assert [(u["单位编号"], u["已整改"], u["整改中"], u["逾期未整改"], u["期限已到"]) for u in units] == [
        (UNIT, counts["rectified"], counts["open"], counts["overdue"], len(due))]
    assert units[0]["整改率"] == pytest.approx(rate)
    counties = page["counties"].to_dict("records")
    assert [(c["所在地区"], c["已整改"], c["整改中"], c["逾期未整改"]) for c in counties] == [
        ("长安区", counts["rectified"], counts["open"], counts["overdue"])]

    # 3. the meeting screen
    at = goto(login("changan"), "meeting")
    figure, date = meeting_overdue_tile(at)
    assert date == f"{D.year}年{D.month}月{D.day}日"
    assert figure == str(counts["overdue"]) == page["metrics"]["逾期未整改"] == str(Counter(cli.values())["overdue"])

    # the unit user, signing in now: order 002 is rectified throughout, 001 and 003 are not
    at_unit = login("u3")
    assert supervision_nav_title(at_unit) == f"督办整改（{unfinished_orders(want)}）" == "督办整改（2）"
