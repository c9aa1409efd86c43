"""PostgreSQL hardening: the dashboard's read-only role, statement_timeout, surviving a restart.

The role tests need PostgreSQL (skipped on SQLite); they create a role with a unique name and LOGIN,
connect as it (trust auth on 127.0.0.1) and drop it afterwards."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from data_access import audit, db
from data_access import users as us
from data_access.cli import main
from data_access.db import make_engine

from .cheap_hash import cheap_hash  # noqa: F401 - a fixture
from .conftest import write_ledger
from .ledgers import V1, base, hh, pr

PW = "correct horse 1"


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def pg(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    return engine


@pytest.fixture
def readonly_role(pg, db_url, tmp_path, capsys):
    """A fresh ledger, a user, and a read-only role made by `bangfu db grant-readonly`; dropped after."""
    from data_access.ledger import import_ledger

    import_ledger(pg, write_ledger(tmp_path / "l", base(households=[hh("H1", V1)],
                                                         pairings=[pr("P1", "A", "H1", "2026-01-01")])))
    us.add_user(pg, "zhang", PW, "county", region="130102")
    role = f"bangfu_ro_{uuid.uuid4().hex[:8]}"
    code, out, err = run(capsys, "db", "grant-readonly", role, "--db", db_url)
    assert code == 0, err
    assert out.count("\n") == 1 and role in out and "已创建" in out
    ro_url = make_url(db_url).set(username=role, password=None)
    ro = make_engine(ro_url.render_as_string(hide_password=False), dashboard=True)
    yield role, ro
    ro.dispose()
    with pg.begin() as conn:
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))


def _fails(ro, sql):
    with pytest.raises(ProgrammingError) as info:
        with ro.begin() as conn:
            conn.execute(text(sql))
    assert "permission denied" in str(info.value) or info.value.orig.sqlstate == "42501", sql


def test_readonly_role_reads_but_cannot_write(readonly_role, pg):
    role, ro = readonly_role
    with ro.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == role
        assert conn.execute(text("SELECT count(*) FROM households")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM pairings")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 1
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "15s"
    for sql in [
        "INSERT INTO households (household_id, head_name, village_code, status) VALUES ('X', 'x', 'v', 'exited')",
        "UPDATE households SET head_name = 'x'",
        "DELETE FROM households",
        "INSERT INTO pairings (pairing_id, helper_id, household_id, start_date) VALUES ('X', 'A', 'H1', '2026-01-01')",
        "UPDATE pairings SET end_date = '2026-02-01'",
        "DELETE FROM pairings",
        "DELETE FROM regions",
        "TRUNCATE visits",
        "UPDATE metric_summary SET n1 = 0",
        "CREATE TABLE evil (x int)",
        "ALTER TABLE households ADD COLUMN evil int",
        "DROP TABLE ratings",
        "CREATE INDEX evil_ix ON households (head_name)",
        # users, login_throttle and audit_log: written only through the functions of migration 0009
        "UPDATE users SET failed_attempts = 0",
        "UPDATE users SET locked_until = NULL, updated_at = now()",
        "INSERT INTO audit_log (at, username, event, outcome) VALUES (now(), 'cli', 'import', 'ok')",
        "INSERT INTO audit_log (at, username, event, outcome) VALUES (now(), 'zhang', 'page_view', 'ok')",
        "UPDATE login_throttle SET failures = 0",
        "DELETE FROM login_throttle",
        "INSERT INTO login_throttle (client, failures, window_start) VALUES ('c:x', 0, now())",
        "SELECT bangfu_audit_insert('cli', 'import', 'x', NULL, 'ok', NULL, now()::timestamp)",
        # the append function refuses the events of the owner's commands and of the lockout bookkeeping
        "SELECT bangfu_audit_append('cli', 'user_add', 'evil', 'all', 'ok', NULL, NULL)",
        "SELECT bangfu_audit_append('zhang', 'login_locked', 'zhang', NULL, 'ok', NULL, NULL)",
        # sessions: new rows and their times only
        "UPDATE sessions SET username = 'prov'",
        "DELETE FROM sessions",
        "UPDATE users SET role = 'province'",
        "UPDATE users SET can_unmask = true",
        "UPDATE users SET password_hash = 'x'",
        "UPDATE users SET disabled = false",
        "INSERT INTO users (username, role, can_unmask, disabled, failed_attempts, created_at, updated_at) "
        "VALUES ('evil', 'province', true, false, 0, now(), now())",
        "DELETE FROM users",
        "UPDATE audit_log SET outcome = 'ok'",
        "DELETE FROM audit_log",
    ]:
        _fails(ro, sql)

    # what the dashboard does need works: audit rows and the sign-in bookkeeping
    audit.record(ro, "zhang", audit.PAGE_VIEW, object="总览", scope="region=130102")
    r = us.authenticate(ro, "zhang", "wrong-password")
    assert r.reason == "bad_password"
    assert us.authenticate(ro, "zhang", PW).ok
    assert us.get_user(pg, "zhang").failed_attempts == 0
    events = audit.query(pg, username="zhang", newest_first=False)["event"].tolist()
    assert events == ["page_view", "login_failed", "login_ok"]
    # but no user management
    with pytest.raises(ProgrammingError):
        us.add_user(ro, "evil", PW, "province")
    with pytest.raises(ProgrammingError):
        us.disable_user(ro, "zhang")
    assert not us.get_user(pg, "zhang").disabled


def test_readonly_role_signs_in_throttles_and_audits_through_the_functions(cheap_hash, readonly_role, pg, db_url,
                                                                           capsys):
    """As the read-only role: the lockout bookkeeping, the audit chain and the sessions work exactly as for
    the owner (and the functions use the database's clock, not the caller's)."""
    role, ro = readonly_role
    us.add_user(pg, "li", PW, "province")
    # one client fails until it is blocked; the same account still signs in from another client
    reasons = [us.authenticate(ro, "li", "wrong-password", client="ip:192.0.2.1").reason
               for _ in range(us.CLIENT_THRESHOLD + 1)]
    assert reasons == ["bad_password"] * (us.CLIENT_THRESHOLD - 1) + ["throttled", "throttled"]
    r = us.authenticate(ro, "li", PW, client="ip:192.0.2.1")
    assert (r.ok, r.reason) == (False, "throttled") and r.locked_until > audit.utcnow() + dt.timedelta(minutes=14)
    assert us.get_user(pg, "li").failed_attempts == us.CLIENT_THRESHOLD
    assert us.authenticate(ro, "li", PW, client="ip:192.0.2.2").ok
    assert us.get_user(pg, "li").failed_attempts == 0
    # an unknown name is counted the same way
    assert us.authenticate(ro, "ghost", PW, client="ip:192.0.2.3").reason == "unknown_user"
    with pg.connect() as conn:
        keys = set(conn.execute(text("SELECT client FROM login_throttle")).scalars())
    assert keys == {"c:ip:192.0.2.1", "c:ip:192.0.2.3", "u:ghost"}
    # a back-dated row from the dashboard role gets the database's time
    audit.record(ro, "li", audit.EXPORT, object="overdue", at=dt.datetime(2000, 1, 1))
    last = audit.query(pg, username="li", event="export").iloc[0]
    assert abs(last["at"] - audit.utcnow()) < dt.timedelta(minutes=5)
    ev = audit.query(pg, username="li", newest_first=False)["event"].tolist()
    assert ev.count("login_failed") == us.CLIENT_THRESHOLD + 2 and ev.count("login_throttled") == 1
    assert ev[-2:] == ["login_ok", "export"]
    # the chain holds, and the read-only role can verify it
    ro_url = ro.url.render_as_string(hide_password=False)
    code, out, err = run(capsys, "audit", "verify", "--db", ro_url)
    assert code == 0 and out.startswith("审计日志完整："), err
    # sessions: the dashboard creates, touches and revokes its sessions
    now = audit.utcnow()
    with ro.begin() as conn:
        conn.execute(text("INSERT INTO sessions (token_hash, username, kind, client, created_at, last_seen_at, "
                          "expires_at) VALUES ('h1', 'li', 'user', 'ip:192.0.2.2', :n, :n, :e)"),
                     {"n": now, "e": now + dt.timedelta(hours=1)})
        conn.execute(text("UPDATE sessions SET last_seen_at = :n, expires_at = :e WHERE token_hash = 'h1'"),
                     {"n": now, "e": now + dt.timedelta(hours=2)})
        conn.execute(text("UPDATE sessions SET revoked_at = :n WHERE token_hash = 'h1'"), {"n": now})
        assert conn.execute(text("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL")).scalar() == 1


def test_grant_readonly_needs_the_functions(pg, db_url, capsys):
    """A database whose schema predates migration 0009 is refused with one line (run bangfu db upgrade)."""
    role = f"bangfu_ro_{uuid.uuid4().hex[:8]}"
    with pg.begin() as conn:
        conn.execute(text("ALTER FUNCTION bangfu_login_result(text, text, boolean, timestamp) "
                          "RENAME TO bangfu_login_result_away"))
    try:
        code, out, err = run(capsys, "db", "grant-readonly", role, "--db", db_url)
        assert code == 1 and err.count("\n") == 1 and "bangfu_login_result" in err and "bangfu db upgrade" in err
    finally:
        with pg.begin() as conn:
            conn.execute(text("ALTER FUNCTION bangfu_login_result_away(text, text, boolean, timestamp) "
                              "RENAME TO bangfu_login_result"))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


def test_grant_readonly_again_and_bad_input(readonly_role, pg, db_url, capsys):
    role, ro = readonly_role
    # a second run is fine and gives the same result, also after someone granted more
    with pg.begin() as conn:
        conn.execute(text(f'GRANT DELETE ON households TO "{role}"'))
    code, out, err = run(capsys, "db", "grant-readonly", role, "--db", db_url)
    assert code == 0 and "已更新" in out, err
    _fails(ro, "DELETE FROM households")
    # bad input: one line, exit 1
    for name in ("postgres", "1bad", "bad-name", "x" * 70):
        code, out, err = run(capsys, "db", "grant-readonly", name, "--db", db_url)
        assert code == 1 and err.count("\n") == 1 and err.startswith("bangfu: "), (name, err)


def test_grant_readonly_with_password(pg, db_url, capsys, monkeypatch):
    import io
    import sys

    role = f"bangfu_ro_{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(sys, "stdin", io.StringIO("it's a %s secret\n"))
    try:
        code, out, err = run(capsys, "db", "grant-readonly", role, "--password-stdin", "--db", db_url)
        assert code == 0, err
        with pg.connect() as conn:
            assert conn.execute(text("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = :r"),
                                {"r": role}).scalar()
            assert conn.execute(text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    finally:
        with pg.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


def test_grant_readonly_needs_postgresql(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    code, out, err = run(capsys, "db", "grant-readonly", "dashboard", "--db", url)
    assert code == 1 and err.count("\n") == 1 and "PostgreSQL" in err


# ---------------------------------------------------------------------------- timeouts and outages


def test_dashboard_statement_timeout(pg, db_url, monkeypatch):
    dash = make_engine(db_url, dashboard=True)
    with dash.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "15s"
    dash.dispose()
    plain = make_engine(db_url)
    with plain.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
    plain.dispose()
    monkeypatch.setenv("BANGFU_STATEMENT_TIMEOUT_MS", "200")
    dash = make_engine(db_url, dashboard=True)
    with dash.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "200ms"
        with pytest.raises(OperationalError) as info:
            conn.execute(text("SELECT pg_sleep(2)"))
    assert db.is_timeout(info.value) and not db.is_unavailable(info.value)
    assert "超时" in db.unavailable_message(info.value)
    dash.dispose()
    monkeypatch.setenv("BANGFU_STATEMENT_TIMEOUT_MS", "soon")
    with pytest.raises(db.BangfuError):
        make_engine(db_url, dashboard=True)


def _kill_backends(pg, pids):
    with pg.connect() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        conn.commit()


def test_connections_survive_a_restart(pg, db_url):
    """Server-side termination of every dashboard connection stands in for a database restart."""
    dash = make_engine(db_url, dashboard=True)
    # idle pooled connections that died are replaced by the pre-ping, without an error
    with dash.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    _kill_backends(pg, [pid])
    with dash.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        # a connection cut while in use fails once, recognisably ...
        _kill_backends(pg, [pid])
        with pytest.raises(DBAPIError) as info:
            conn.execute(text("SELECT 1"))
    assert db.is_unavailable(info.value)
    assert "数据库" in db.unavailable_message(info.value)
    # ... and the next rerun works again
    with dash.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 0
    dash.dispose()


def test_app_engine_starts_while_the_database_is_down():
    dash = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/postgres", dashboard=True)  # nothing listens
    t0 = dt.datetime.now()
    with pytest.raises(OperationalError) as info:
        with dash.connect() as conn:
            conn.execute(select(1))
    assert dt.datetime.now() - t0 < dt.timedelta(seconds=10)
    assert db.is_unavailable(info.value)
    assert db.unavailable_message(info.value).startswith("暂时无法连接数据库")
    dash.dispose()


def test_unavailable_is_not_a_bad_query(pg):
    with pytest.raises(ProgrammingError) as info:
        with pg.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))
    assert not db.is_unavailable(info.value)


def test_dashboard_engine_on_sqlite():
    e = make_engine("sqlite:///:memory:", dashboard=True)
    with e.connect() as conn:
        assert conn.execute(select(1)).scalar() == 1
    e.dispose()


def test_readonly_role_issues_orders_and_units_respond(readonly_role, pg):
    """督办 as the dashboard's role: issue and respond work through data_access.supervision (its checks and audit
    rows); an order or item cannot be changed or deleted, and nothing else becomes writable."""
    from data_access import supervision as sv

    role, ro = readonly_role
    us.add_user(pg, "u3", PW, "unit", unit="U3")
    issued = dt.date(2026, 6, 30)
    out = sv.issue(ro, "overdue", "U3", issued + dt.timedelta(days=30), as_of=issued, user=us.get_user(pg, "zhang"))
    assert out["items"] == 1
    sv.respond(ro, out["order_id"], "已安排入户走访", us.get_user(pg, "u3"))
    sv.respond(ro, out["order_id"], "已入户走访", us.get_user(pg, "u3"))
    assert list(sv.orders(ro, issued, us.user_scope(us.get_user(pg, "u3")))["response"]) == ["已入户走访"]
    for sql in ["UPDATE supervision_orders SET deadline = '2030-01-01'",
                "DELETE FROM supervision_orders",
                "UPDATE supervision_items SET subject = 'X'",
                "DELETE FROM supervision_items",
                "DELETE FROM supervision_responses",
                "UPDATE supervision_responses SET order_id = 'X'"]:
        _fails(ro, sql)
    events = audit.query(pg, newest_first=False)["event"].tolist()
    assert events.count("order_issue") == 1 and events.count("order_response") == 2
