"""The audit log: every event written once with its row, `bangfu audit` exports.

Runs on SQLite and PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from data_access import audit
from data_access import users as us
from data_access.cli import main
from data_access.scope import Scope

from .cheap_hash import cheap_hash  # noqa: F401 - a fixture
from .conftest import write_ledger
from .ledgers import V1, V2, V3, base, hh, pr

PW = "correct horse 1"
T0 = dt.datetime(2026, 7, 1, 8, 0, 0)


def run(capsys, monkeypatch, *argv, stdin: str | None = None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def ledger():
    return base(households=[hh("H1", V1), hh("H2", V2), hh("H3", V3)],
                pairings=[pr("P1", "A", "H1", "2026-01-01")])


@pytest.fixture
def imported(engine, db_url, tmp_path, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "import", str(write_ledger(tmp_path / "ok", ledger())), "--db", db_url)
    assert code == 0, err
    return engine


def rows(engine, event=None):
    return audit.query(engine, event=event, newest_first=False).to_dict("records")


def only(engine, event):
    got = rows(engine, event)
    assert len(got) == 1, (event, got)
    return got[0]


def test_import_events(imported, db_url, tmp_path, capsys, monkeypatch):
    engine = imported
    r = only(engine, audit.IMPORT)
    assert (r["username"], r["outcome"]) == ("cli", "ok")
    assert r["object"].endswith("ok") and r["detail"].startswith("导入完成")
    assert isinstance(r["at"], dt.datetime) and abs(r["at"] - audit.utcnow()) < dt.timedelta(minutes=5)
    bad = ledger()
    bad["households"] = [hh("H9", "999999999999")]  # unknown village
    code, out, err = run(capsys, monkeypatch, "import", str(write_ledger(tmp_path / "bad", bad)), "--db", db_url)
    assert code == 1
    got = rows(engine, audit.IMPORT)
    assert [x["outcome"] for x in got] == ["ok", "failed"]
    assert got[1]["object"].endswith("bad") and "1 处错误" in got[1]["detail"]


def test_login_events(imported, cheap_hash):
    engine = imported
    us.add_user(engine, "zhang", PW, "county", region="130102")
    assert us.authenticate(engine, "zhang", PW, now=T0, client="ip:10.0.0.1").ok
    r = only(engine, audit.LOGIN_OK)
    assert r == {**r, "username": "zhang", "event": "login_ok", "object": "zhang", "scope": "region=130102",
                 "outcome": "ok", "detail": "password", "at": T0}

    us.authenticate(engine, "zhang", "wrong-password", now=T0, client="ip:10.0.0.1")
    r = only(engine, audit.LOGIN_FAILED)
    assert (r["username"], r["outcome"], r["detail"], r["scope"]) == ("zhang", "failed", "bad_password", "region=130102")

    # 19 more failures from four clients (none of them reaches the client threshold): the name is locked
    for i in range(us.ACCOUNT_THRESHOLD - 1):
        us.authenticate(engine, "zhang", "wrong-password", now=T0 + dt.timedelta(seconds=i + 1),
                        client=f"ip:10.0.1.{i % 4}")
    r = only(engine, audit.LOGIN_LOCKED)
    assert (r["username"], r["object"], r["scope"], r["outcome"]) == ("zhang", "zhang", "region=130102", "ok")
    until = T0 + dt.timedelta(seconds=us.ACCOUNT_THRESHOLD - 1) + us.LOCKOUT_DURATION
    assert json.loads(r["detail"]) == {"failed_attempts": us.ACCOUNT_THRESHOLD,
                                       "locked_until": until.strftime("%Y-%m-%dT%H:%M:%S")}
    assert rows(engine, audit.LOGIN_THROTTLED) == []
    us.authenticate(engine, "zhang", PW, now=T0 + dt.timedelta(minutes=1), client="ip:10.0.2.1")
    failed = rows(engine, audit.LOGIN_FAILED)
    assert [x["detail"] for x in failed] == ["bad_password"] * us.ACCOUNT_THRESHOLD + ["locked"]
    assert failed[-1]["outcome"] == "denied"

    us.authenticate(engine, "ghost", PW, now=T0, client="ip:10.0.0.1")
    ghost = audit.query(engine, username="ghost").to_dict("records")
    assert [(g["event"], g["outcome"], g["detail"], g["scope"], g["at"]) for g in ghost] == [
        ("login_failed", "failed", "unknown_user", None, T0)]

    # a client that fails too often is blocked (login_throttled, object = the client), whatever the names
    t1 = T0 + dt.timedelta(hours=1)
    for i in range(us.CLIENT_THRESHOLD + 1):
        us.authenticate(engine, f"guess{i}", "wrong-password", now=t1 + dt.timedelta(seconds=i), client="ip:192.0.2.9")
    r = only(engine, audit.LOGIN_THROTTLED)
    blocked = t1 + dt.timedelta(seconds=us.CLIENT_THRESHOLD - 1) + us.LOCKOUT_DURATION
    assert (r["username"], r["object"], r["scope"]) == (f"guess{us.CLIENT_THRESHOLD - 1}", "ip:192.0.2.9", None)
    assert json.loads(r["detail"]) == {"failures": us.CLIENT_THRESHOLD,
                                       "blocked_until": blocked.strftime("%Y-%m-%dT%H:%M:%S")}
    last = audit.query(engine, username=f"guess{us.CLIENT_THRESHOLD}").to_dict("records")
    assert [(x["event"], x["outcome"], x["detail"]) for x in last] == [("login_failed", "denied", "throttled")]
    assert audit.verify(engine).ok


def test_logout_page_view_export_unmask(imported):
    engine = imported
    u = us.add_user(engine, "li", PW, "unit", unit="U3", can_unmask=True)
    plain = us.add_user(engine, "wu", PW, "province")

    us.logout(engine, u, reason="idle timeout")
    r = only(engine, audit.LOGOUT)
    assert (r["username"], r["object"], r["scope"], r["detail"], r["outcome"]) == (
        "li", "li", "unit=U3", "idle timeout", "ok")

    audit.record_page_view(engine, "li", "总览", Scope(region="130102", unit="U3"))
    r = only(engine, audit.PAGE_VIEW)
    assert (r["username"], r["object"], r["scope"]) == ("li", "总览", "region=130102,unit=U3")

    audit.record_export(engine, "li", "overdue", 17, masked=True, scope=Scope(unit="U3"), fmt="xlsx")
    r = only(engine, audit.EXPORT)
    assert (r["username"], r["object"], r["scope"]) == ("li", "overdue", "unit=U3")
    assert json.loads(r["detail"]) == {"rows": 17, "masked": True, "format": "xlsx"}

    assert us.request_unmask(engine, u, "问题清单/逾期", Scope(unit="U3"))
    r = only(engine, audit.UNMASK)
    assert (r["username"], r["object"], r["scope"], r["outcome"]) == ("li", "问题清单/逾期", "unit=U3", "ok")
    assert not us.request_unmask(engine, plain, "问题清单/逾期", Scope())
    assert [(x["username"], x["outcome"], x["scope"]) for x in rows(engine, audit.UNMASK)] == [
        ("li", "ok", "unit=U3"), ("wu", "denied", "all")]


def test_user_events_from_the_cli(imported, db_url, capsys, monkeypatch):
    engine = imported
    argv = ("--password-stdin", "--db", db_url)
    assert run(capsys, monkeypatch, "user", "add", "zhao", "--role", "county", "--region", "130102", "--unmask",
               *argv, stdin=PW + "\n")[0] == 0
    r = only(engine, audit.USER_ADD)
    assert (r["username"], r["object"], r["scope"], r["outcome"]) == ("cli", "zhao", "region=130102", "ok")
    assert json.loads(r["detail"]) == {"role": "county", "region": "130102", "can_unmask": True}
    assert run(capsys, monkeypatch, "user", "disable", "zhao", "--db", db_url)[0] == 0
    r = only(engine, audit.USER_DISABLE)
    assert (r["username"], r["object"], r["scope"]) == ("cli", "zhao", "region=130102")
    assert run(capsys, monkeypatch, "user", "enable", "zhao", "--db", db_url)[0] == 0
    assert (only(engine, audit.USER_ENABLE)["object"]) == "zhao"
    assert run(capsys, monkeypatch, "user", "passwd", "zhao", *argv, stdin="new-password-2\n")[0] == 0
    r = only(engine, audit.USER_PASSWD)
    assert (r["username"], r["object"]) == ("cli", "zhao")
    assert "new-password-2" not in json.dumps(rows(engine), default=str)
    # a refused change writes nothing
    assert run(capsys, monkeypatch, "user", "disable", "nobody", "--db", db_url)[0] == 1
    assert len(rows(engine, audit.USER_DISABLE)) == 1


def test_cli_problems_export_is_audited(imported, db_url, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "problems", "uncovered", "--as-of", "2026-06-30", "--region", "130102",
                         "--db", db_url)
    assert code == 0, err
    r = only(imported, audit.EXPORT)
    assert (r["username"], r["object"], r["scope"]) == ("cli", "problems:uncovered", "region=130102")
    assert json.loads(r["detail"]) == {"rows": len(json.loads(out)), "masked": False, "format": "json"}


def test_bangfu_audit_export(imported, db_url, tmp_path, capsys, monkeypatch):
    engine = imported
    audit.record(engine, "a", audit.PAGE_VIEW, object="p1", scope="all", at=dt.datetime(2026, 5, 1, 23, 59))
    audit.record(engine, "b", audit.PAGE_VIEW, object="p2", scope=Scope(region="130102"), at=dt.datetime(2026, 5, 2, 0, 0))
    audit.record(engine, "a", audit.EXPORT, object="=cmd()", at=dt.datetime(2026, 5, 3, 12, 0),
                 detail={"rows": 3, "masked": True})
    code, out, err = run(capsys, monkeypatch, "audit", "--format", "json", "--since", "2026-05-01",
                         "--until", "2026-05-02", "--db", db_url)
    assert code == 0, err
    doc = json.loads(out)
    assert [(d["username"], d["event"], d["object"], d["scope"], d["at"]) for d in doc] == [
        ("a", "page_view", "p1", "all", "2026-05-01T23:59:00"), ("b", "page_view", "p2", "region=130102", "2026-05-02T00:00:00")]
    assert set(doc[0]) == {"id", "at", "username", "event", "object", "scope", "outcome", "detail"}
    assert doc[0]["outcome"] == "ok" and isinstance(doc[0]["id"], int)

    code, out, err = run(capsys, monkeypatch, "audit", "--format", "json", "--user", "a", "--event", "export",
                         "--db", db_url)
    doc = json.loads(out)
    assert [(d["object"], json.loads(d["detail"])) for d in doc] == [("=cmd()", {"rows": 3, "masked": True})]
    # reading the log is itself audited
    r = audit.query(engine, event="export", username="cli").to_dict("records")
    assert len(r) == 2 and r[0]["object"] == "audit_log"
    assert json.loads(r[0]["detail"]) == {"rows": 1, "masked": False, "format": "json", "user": "a", "event": "export"}

    code, out, err = run(capsys, monkeypatch, "audit", "--format", "csv", "--event", "page_view", "--db", db_url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "id,at,username,event,object,scope,outcome,detail" and len(lines) == 3

    target = tmp_path / "audit.xlsx"
    code, out, err = run(capsys, monkeypatch, "audit", "--format", "xlsx", "--output", str(target), "--user", "a",
                         "--db", db_url)
    assert code == 0 and "2 条" in err
    ws = load_workbook(target).active
    assert [c.value for c in ws[1]][:4] == ["序号", "时间（UTC）", "用户", "事件"]
    assert ws.max_row == 3 and ws.cell(3, 5).value == "'=cmd()"  # no formula

    # bad input / usage
    code, out, err = run(capsys, monkeypatch, "audit", "--since", "2026-05-03", "--until", "2026-05-01", "--db", db_url)
    assert code == 1 and err.count("\n") == 1
    code, out, err = run(capsys, monkeypatch, "audit", "--event", "bogus", "--db", db_url)
    assert code == 2 and err.count("\n") == 1
    code, out, err = run(capsys, monkeypatch, "audit", "--since", "2026-13-01", "--db", db_url)
    assert code == 2 and err.count("\n") == 1


def test_record_and_query_details(engine):
    with pytest.raises(ValueError):
        audit.record(engine, "x", "made_up_event")
    audit.record(engine, "u" * 300, audit.PAGE_VIEW, object="o" * 500, detail="d")
    r = only(engine, audit.PAGE_VIEW)
    assert len(r["username"]) == 100 and len(r["object"]) == 200 and r["object"].endswith("…")
    # a connection: the row joins the caller's transaction
    with engine.connect() as conn:
        audit.record(conn, "t", audit.LOGOUT)
        conn.rollback()
    assert rows(engine, audit.LOGOUT) == []
    with engine.begin() as conn:
        audit.record(conn, "t", audit.LOGOUT, at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    assert only(engine, audit.LOGOUT)["at"] == dt.datetime(2025, 12, 31, 16, 0)
    assert list(audit.query(engine)["event"]) == ["page_view", "logout"]  # newest first
    assert len(audit.query(engine, limit=1)) == 1
    assert audit.query(engine, until=dt.date(2025, 12, 31))["event"].tolist() == ["logout"]
    assert audit.query(engine, since=dt.datetime(2026, 1, 1)).event.tolist() == ["page_view"]


# ---------------------------------------------------------------------------- the hash chain


def _sql(engine, statement, **params):
    with engine.begin() as conn:
        return conn.execute(text(statement), params)


def _verify(capsys, monkeypatch, db_url):
    return run(capsys, monkeypatch, "audit", "verify", "--db", db_url)


def test_verify_passes_on_a_clean_log_and_names_an_edited_or_deleted_row(imported, db_url, capsys, monkeypatch):
    engine = imported
    for i in range(6):
        audit.record_page_view(engine, "li", f"页面{i}", Scope(region="130102"))
    audit.record(engine, "li", audit.EXPORT, object="overdue", detail={"rows": 3, "masked": True})
    n = len(rows(engine))
    code, out, err = _verify(capsys, monkeypatch, db_url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"审计日志完整：{n} 条记录" and "哈希" in lines[-1]
    assert "哈希链启用之前" not in out
    check = audit.verify(engine)
    assert (check.ok, check.rows, check.legacy) == (True, n, 0)
    assert check.last_hash and len(check.last_hash) == 64

    ids = [r["id"] for r in rows(engine)]
    mid = ids[3]
    original = _sql(engine, "SELECT object FROM audit_log WHERE id = :i", i=mid).scalar()
    # someone edits a row in the middle: that row is named
    _sql(engine, "UPDATE audit_log SET object = '页面X' WHERE id = :i", i=mid)
    code, out, err = _verify(capsys, monkeypatch, db_url)
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert f"id={mid} " in err and "被改动" in err
    # ... or the time of a row (the same check, another field)
    _sql(engine, "UPDATE audit_log SET object = :o WHERE id = :i", o=original, i=mid)
    assert _verify(capsys, monkeypatch, db_url)[0] == 0
    _sql(engine, "UPDATE audit_log SET outcome = 'denied' WHERE id = :i", i=ids[1])
    code, out, err = _verify(capsys, monkeypatch, db_url)
    assert code == 1 and f"id={ids[1]} " in err
    _sql(engine, "UPDATE audit_log SET outcome = 'ok' WHERE id = :i", i=ids[1])
    assert _verify(capsys, monkeypatch, db_url)[0] == 0
    # someone deletes a row in the middle: the row after it is named
    _sql(engine, "DELETE FROM audit_log WHERE id = :i", i=mid)
    code, out, err = _verify(capsys, monkeypatch, db_url)
    assert code == 1 and err.count("\n") == 1
    assert f"id={ids[4]} " in err and "删除" in err
    # verifying writes nothing; export options are refused
    assert len(rows(engine)) == n - 1
    code, out, err = run(capsys, monkeypatch, "audit", "verify", "--user", "li", "--db", db_url)
    assert code == 2 and err.count("\n") == 1


def test_rows_from_before_the_chain_are_its_start(engine, db_url, capsys, monkeypatch):
    from data_access.schema import audit_log

    with engine.begin() as conn:  # written before migration 0008: no hashes
        for i in range(2):
            conn.execute(audit_log.insert().values(at=T0, username="old", event="page_view", object=f"p{i}",
                                                   outcome="ok"))
    for i in range(3):
        audit.record(engine, "new", audit.PAGE_VIEW, object=f"q{i}")
    first_new = rows(engine)[2]
    assert first_new["username"] == "new"
    assert _sql(engine, "SELECT prev_hash FROM audit_log WHERE id = :i", i=first_new["id"]).scalar() is None
    code, out, err = _verify(capsys, monkeypatch, db_url)
    assert code == 0, err
    assert out.splitlines()[0] == "审计日志完整：5 条记录"
    assert "前 2 条写于哈希链启用之前" in out
    # but a row without a hash after the chain has begun is a break
    with engine.begin() as conn:
        conn.execute(audit_log.insert().values(at=T0, username="evil", event="page_view", outcome="ok"))
    bad = _sql(engine, "SELECT max(id) FROM audit_log").scalar()
    code, out, err = _verify(capsys, monkeypatch, db_url)
    assert code == 1 and f"id={bad} " in err


def test_concurrent_appends_keep_one_chain(engine):
    """Two threads, each on its own connection, append at the same time: still one valid chain."""
    import threading

    start = threading.Barrier(2)
    errors = []

    def worker(name):
        try:
            start.wait()
            for i in range(25):
                with engine.begin() as conn:
                    audit.record(conn, name, audit.PAGE_VIEW, object=f"{name}{i}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = audit.verify(engine)
    assert (check.ok, check.rows, check.legacy) == (True, 50, 0), check
    prevs = _sql(engine, "SELECT prev_hash FROM audit_log").scalars().all()
    assert len(set(prevs)) == 50  # no two rows chained to the same predecessor (no fork)
