"""Supervision orders (RULES.md M7): items judged from the ledger on any date, on SQLite and PostgreSQL;
who may issue and respond; the `bangfu rectify` commands of CONTRACT.md."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from sqlalchemy import select

from data_access import audit, schema, summary, users
from data_access import supervision as sv
from data_access.cli import main
from data_access.ledger import import_ledger

from .conftest import write_ledger
from .ledgers import V1, V2, V3, base, hh, pr

I = dt.date(2026, 6, 30)  # issued on
T = dt.date(2026, 7, 31)  # deadline
PW = "correct-horse-1"


def ledger() -> dict:
    helpers = copy.deepcopy(base()["helpers"]) + [{"helper_id": "G", "name": "冯十一", "unit_id": "U3", "category": "cadre"}]
    households = [hh(f"H{i}", V1) for i in range(1, 10)] + [hh("H20", V2), hh("H30", V3)]
    pairings = [pr("P1", "A", "H1", "2026-01-01"), pr("P2", "A", "H2", "2026-01-01"),
                pr("P3", "A", "H3", "2026-01-01")]
    pairings += [pr(f"PG{i}", "G", f"H{i}", "2026-01-01") for i in (4, 5, 6, 7, 8, 9)]  # G: load 6
    pairings += [pr("PX", "B", "H20", "2025-01-01", "2026-05-01", "transfer"),  # replacement, not approved
                 pr("PY", "B", "H20", "2026-05-01")]
    pairings += [pr("PF", "F", "H30", "2026-06-01")]
    visits = [{"visit_id": f"VG{i}", "helper_id": "G", "household_id": f"H{i}", "visit_date": "2026-06-20",
               "mode": "in_home"} for i in (4, 5, 6, 7, 8, 9)]
    assignments = [{"unit_id": "U3", "village_code": V1, "start_date": "2025-01-01"},
                   {"unit_id": "U3", "village_code": V2, "start_date": "2025-01-01"}]
    t = base(households=households, pairings=pairings, visits=visits, assignments=assignments)
    t["helpers"] = helpers
    # H21 in V2 (assigned to U3) has no pairing: uncovered
    t["households"].append(hh("H21", V2))
    return t


@pytest.fixture
def orders_db(engine, tmp_path):
    import_ledger(engine, write_ledger(tmp_path / "l0", ledger()), refresh_summaries=False)
    return engine


def statuses(engine, d, **kw) -> dict:
    df = sv.item_status(engine, d, **kw)
    return dict(zip(df["subject"], df["status"]))


def reimport(engine, tmp_path, name, change) -> None:
    t = ledger()
    change(t)
    import_ledger(engine, write_ledger(tmp_path / name, t), refresh_summaries=False)


def test_overdue_items_judged_by_the_ledger(orders_db, tmp_path):
    e = orders_db
    out = sv.issue(e, "overdue", "U3", T, as_of=I)
    assert out["items"] == 3 and out["order_id"].startswith("DB20260630-")
    assert statuses(e, I) == {"P1": "open", "P2": "open", "P3": "open"}
    assert sv.item_status(e, I - dt.timedelta(days=1)).empty  # not issued yet

    def later(t):
        t["visits"] += [{"visit_id": "V1", "helper_id": "A", "household_id": "H1", "visit_date": "2026-07-10",
                         "mode": "in_home"},
                        {"visit_id": "V3", "helper_id": "A", "household_id": "H3", "visit_date": "2026-07-12",
                         "mode": "phone"}]  # a phone call is no visit
        t["pairings"][1]["end_date"] = "2026-07-05"  # P2 ended
        t["pairings"][1]["end_reason"] = "other"
    reimport(e, tmp_path, "l1", later)
    d = dt.date(2026, 7, 15)
    assert statuses(e, d) == {"P1": "rectified", "P2": "rectified", "P3": "open"}
    assert statuses(e, T) == {"P1": "rectified", "P2": "rectified", "P3": "open"}  # the deadline day itself
    after = T + dt.timedelta(days=1)
    assert statuses(e, after) == {"P1": "rectified", "P2": "rectified", "P3": "overdue"}
    # relapse: two months after the visit P1 is overdue again, and past the deadline
    assert statuses(e, dt.date(2026, 9, 11))["P1"] == "overdue"
    assert statuses(e, dt.date(2026, 9, 10))["P1"] == "rectified"
    items = sv.item_status(e, after)
    assert sv.rectification_rate(items, after) == pytest.approx(2 / 3)
    assert sv.rectification_rate(sv.item_status(e, d), d) is None  # no deadline passed yet
    # the stored status of a refreshed date gives the same answer as the live path
    summary.refresh_engine(e, today=after, dates=[after], years=[])
    with e.connect() as conn:
        assert summary.status_date(conn, after)
    assert statuses(e, after) == {"P1": "rectified", "P2": "rectified", "P3": "overdue"}


def test_cap_uncovered_and_unapproved_items(orders_db, tmp_path):
    e = orders_db
    cap = sv.issue(e, "cap", "U3", T, as_of=I)
    unc = sv.issue(e, "uncovered", "U3", T, as_of=I)
    una = sv.issue(e, "unapproved", "U3", T, as_of=I)
    assert (cap["items"], unc["items"], una["items"]) == (1, 1, 1)
    d = dt.date(2026, 7, 20)
    assert statuses(e, d) == {"G": "open", "H21": "open", "PX": "open"}

    def fixed(t):
        t["pairings"][3]["end_date"] = "2026-07-01"  # G's load back to five
        t["pairings"][3]["end_reason"] = "other"
        t["pairings"].append(pr("PZ", "B", "H21", "2026-07-02"))  # H21 covered
        t["pairings"][9]["approved"] = "1"  # the replacement approved
    reimport(e, tmp_path, "l1", fixed)
    assert statuses(e, d) == {"G": "rectified", "H21": "rectified", "PX": "rectified"}
    assert statuses(e, dt.date(2026, 7, 1)) == {"G": "rectified", "H21": "open", "PX": "rectified"}

    def exited(t):  # a household that exits is no longer a problem either
        t["households"][-1]["status"] = "exited"
    reimport(e, tmp_path, "l2", exited)
    assert statuses(e, dt.date(2026, 7, 1))["H21"] == "rectified"


def test_issue_refuses_bad_input_and_changes_nothing(orders_db):
    e = orders_db
    with pytest.raises(sv.SupervisionError, match="早于"):
        sv.issue(e, "overdue", "U3", I - dt.timedelta(days=1), as_of=I)
    with pytest.raises(sv.SupervisionError, match="不存在"):
        sv.issue(e, "overdue", "NOPE", T, as_of=I)
    with pytest.raises(sv.SupervisionError, match="没有"):
        sv.issue(e, "overdue", "U4", T, as_of=I)  # F's pairing started 06-01: not overdue
    with pytest.raises(sv.SupervisionError, match="不在"):
        sv.issue(e, "overdue", "U3", T, as_of=I, subjects=["P1", "PG4"])
    with e.connect() as conn:
        assert conn.execute(select(schema.supervision_orders)).first() is None
    part = sv.issue(e, "overdue", "U3", T, as_of=I, subjects=["P1", "P3"])
    assert part["items"] == 2 and set(statuses(e, I)) == {"P1", "P3"}


def test_roles_for_issue_and_response(orders_db):
    e = orders_db
    users.add_user(e, "prov", PW, "province")
    users.add_user(e, "changan", PW, "county", region="130102")
    users.add_user(e, "tangshan", PW, "city", region="130200")
    users.add_user(e, "u3", PW, "unit", unit="U3")
    users.add_user(e, "u4", PW, "unit", unit="U4")
    get = lambda n: users.get_user(e, n)  # noqa: E731
    with pytest.raises(sv.SupervisionError, match="角色"):
        sv.issue(e, "overdue", "U3", T, as_of=I, user=get("u3"))
    with pytest.raises(sv.SupervisionError):
        sv.issue(e, "overdue", "U3", T, as_of=I, user=get("tangshan"))  # rows outside Tangshan: none
    from data_access.users import User

    demo = User(username="demo", display_name="演示用户", role="province", region_code=None, unit_id=None,
                can_unmask=False, email=None, disabled=False, failed_attempts=0, locked_until=None,
                created_at=dt.datetime(2000, 1, 1), updated_at=dt.datetime(2000, 1, 1))
    with pytest.raises(sv.SupervisionError, match="角色"):
        sv.issue(e, "overdue", "U3", T, as_of=I, user=demo)  # the demo viewer writes nothing
    out = sv.issue(e, "overdue", "U3", T, as_of=I, user=get("changan"), note="限期入户走访")
    with e.connect() as conn:
        row = conn.execute(select(schema.supervision_orders)).mappings().one()
    assert row["region_code"] == "130102" and row["issued_by"] == "changan"
    # a county user may issue to a province-level unit, for the rows in the county only
    users.add_user(e, "luanan", PW, "county", region="130202")
    with pytest.raises(sv.SupervisionError):
        sv.issue(e, "overdue", "U1", T, as_of=I, user=get("luanan"))
    # responses: only the addressed unit
    for who in ("u4", "changan", "prov"):
        with pytest.raises(sv.SupervisionError):
            sv.respond(e, out["order_id"], "已整改", get(who))
    sv.respond(e, out["order_id"], "已安排入户走访", get("u3"))
    sv.respond(e, out["order_id"], "已全部入户走访", get("u3"))  # one per order: replaced
    od = sv.orders(e, I, users.user_scope(get("u3")))
    assert list(od["response"]) == ["已全部入户走访"] and list(od["open"]) == [3]
    assert sv.orders(e, I, users.user_scope(get("u4"))).empty  # another unit sees nothing
    assert len(sv.orders(e, I, users.user_scope(get("changan")))) == 1
    assert sv.orders(e, I, users.user_scope(get("tangshan"))).empty
    rows = audit.query(e)
    events = list(rows["event"]) if hasattr(rows, "columns") else [r["event"] for r in rows]
    assert events.count("order_issue") == 1 and events.count("order_response") == 2
    assert events.count("denied") >= 4


def test_rectify_commands(orders_db, capsys, tmp_path):
    e = orders_db
    url = e.url.render_as_string(hide_password=False)
    # --region: U3's overdue pairings are all in 长安区; in 路南区 it has none (a plain sentence, exit 1)
    assert main(["rectify", "issue", "overdue", "--unit", "U3", "--deadline", T.isoformat(), "--as-of", I.isoformat(),
                 "--region", "130202", "--db", url]) == 1
    err = capsys.readouterr().err
    assert "派出单位 U3 在 2026-06-30 没有" in err and "无需督办" in err and "Traceback" not in err
    assert main(["rectify", "issue", "overdue", "--unit", "U3", "--deadline", T.isoformat(), "--as-of", I.isoformat(),
                 "--region", "999999", "--db", url]) == 1
    assert "区划 999999 不存在" in capsys.readouterr().err
    assert sv.orders(e, I).empty  # nothing was written by the refused calls
    assert main(["rectify", "issue", "overdue", "--unit", "U3", "--deadline", T.isoformat(), "--as-of", I.isoformat(),
                 "--note", "限期整改", "--region", "130102", "--db", url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["items"] == 3
    assert main(["rectify", "issue", "overdue", "--unit", "U3", "--deadline", "2026-06-01", "--as-of", I.isoformat(),
                 "--db", url]) == 1
    err = capsys.readouterr().err
    assert "早于" in err and "Traceback" not in err
    assert main(["rectify", "issue", "cap", "--unit", "U4", "--deadline", T.isoformat(), "--as-of", I.isoformat(),
                 "--db", url]) == 1
    assert "没有" in capsys.readouterr().err
    assert main(["rectify", "issue", "cap", "--unit", "ZZ", "--deadline", T.isoformat(), "--as-of", I.isoformat(),
                 "--db", url]) == 1
    assert "派出单位 ZZ 不存在" in capsys.readouterr().err
    assert main(["rectify", "list", "--as-of", "2026-08-01", "--format", "json", "--db", url]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["subject"] for r in rows] == ["P1", "P2", "P3"]
    assert set(rows[0]) == {"order_id", "kind", "subject", "unit_id", "issued_on", "deadline", "status"}
    assert {r["status"] for r in rows} == {"overdue"} and rows[0]["issued_on"] == "2026-06-30"
    assert main(["rectify", "list", "--as-of", "2026-08-01", "--status", "open", "--db", url]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["rectify", "list", "--as-of", "2026-08-01", "--format", "csv", "--output",
                 str(tmp_path / "r.csv"), "--db", url]) == 0
    assert (tmp_path / "r.csv").read_text(encoding="utf-8-sig").startswith("order_id,kind,subject")
    # --unit: the unit's items only
    assert main(["rectify", "list", "--as-of", "2026-08-01", "--unit", "U3", "--db", url]) == 0
    assert [r["subject"] for r in json.loads(capsys.readouterr().out)] == ["P1", "P2", "P3"]
    assert main(["rectify", "list", "--as-of", "2026-08-01", "--unit", "U4", "--db", url]) == 0
    assert json.loads(capsys.readouterr().out) == []
    # xlsx: the same rows in a workbook
    from openpyxl import load_workbook
    assert main(["rectify", "list", "--as-of", "2026-08-01", "--format", "xlsx", "--output",
                 str(tmp_path / "r.xlsx"), "--db", url]) == 0
    values = [[c for c in row if c is not None] for row in load_workbook(tmp_path / "r.xlsx").active.iter_rows(values_only=True)]
    header = next(i for i, row in enumerate(values) if row[:3] == ["order_id", "kind", "subject"])
    assert [row[2] for row in values[header + 1:] if row] == ["P1", "P2", "P3"]


def test_county_user_orders_a_province_unit_for_the_county_rows_only(engine, tmp_path):
    t = ledger()
    t["pairings"] += [pr("PD1", "D1", "H21", "2026-01-01"),  # 省财政厅 in 长安区 (V2)
                      pr("PD3", "D3", "H30", "2026-01-01")]  # and in 路南区 (V3)
    import_ledger(engine, write_ledger(tmp_path / "l", t), refresh_summaries=False)
    users.add_user(engine, "changan", PW, "county", region="130102")
    out = sv.issue(engine, "overdue", "U1", T, as_of=I, user=users.get_user(engine, "changan"))
    assert out["items"] == 1 and statuses(engine, I) == {"PD1": "open"}
    # the whole unit's list holds both: the order was cut to the county
    assert set(sv.problem_rows_for(engine, "overdue", I, sv.Scope(unit="U1"))["pairing_id"]) == {"PD1", "PD3"}
    # and the order shows in the county's view, not in 路南区's
    assert len(sv.orders(engine, I, sv.Scope(region="130102"))) == 1
    assert sv.orders(engine, I, sv.Scope(region="130202")).empty
