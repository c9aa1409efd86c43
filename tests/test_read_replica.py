"""Reads from a read replica, writes on the primary (BANGFU_READ_DATABASE_URL, data_access/routing.py).

A "replica" here is a second real database (a SQLite file, a PostgreSQL database on the test server) holding a
slightly different ledger, so that every figure tells which database it came from; the streaming replica
itself (pg_basebackup, nginx, two app processes) is exercised by tests/test_failover.py. An unreachable
replica is real too: a missing SQLite directory, or a TCP relay to PostgreSQL that is cut (tests/test_outage.py).
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
import uuid
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import create_engine, select, text
from streamlit.testing.v1 import AppTest

from data_access import audit, db, routing, schema, settings, users
from data_access import metrics as m
from data_access.ledger import import_ledger
from ui import format as fmt

from .conftest import PG_URL, write_ledger
from .pages_ledger import ADMIN, ADMIN_PASSWORD, AS_OF, login, tables
from .test_outage import Relay

APP = str(Path(__file__).resolve().parent.parent / "app.py")
D = AS_OF.isoformat()


def replica_tables() -> dict:
    """The page ledger without household H11 (uncovered): another coverage rate and household count."""
    t = copy.deepcopy(tables())
    t["households"] = [h for h in t["households"] if h["household_id"] != "H11"]
    return t


def coverage_text(engine, day=AS_OF) -> str:
    tot = m.total_row(m.coverage(engine, day, "province"), "coverage")
    return fmt.pct(tot["covered"] / tot["households"])


def url_of(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def mark(engine, who: str) -> None:
    with engine.begin() as conn:
        db.set_meta(conn, "who", who)


def who(engine) -> str:
    return db.get_meta(engine, "who")


def fill(engine, folder: Path, ledger: dict, who_: str) -> None:
    import_ledger(engine, write_ledger(folder, ledger))
    mark(engine, who_)


def _clear_caches():
    st.cache_data.clear()
    st.cache_resource.clear()


class Replica:
    """A second database beside the test's primary: a SQLite file in a folder of its own, or a database on the
    PostgreSQL test server. ``url`` is how the dashboard reaches it; ``take_down``/``bring_back`` make it
    unreachable and reachable again (the folder renamed away; the TCP relay cut and restarted)."""

    def __init__(self, primary, tmp_path: Path):
        self.kind = primary.dialect.name
        self.relay = None
        if self.kind == "sqlite":
            self.folder = tmp_path / "replica"
            self.folder.mkdir()
            self.direct = f"sqlite:///{self.folder / 'replica.sqlite'}"
            self.url = self.direct
        else:
            base = primary.url
            self.name = f"bangfu_test_replica_{uuid.uuid4().hex[:8]}"
            self.admin = create_engine(base, isolation_level="AUTOCOMMIT")
            with self.admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{self.name}"'))
            self.direct = base.set(database=self.name).render_as_string(hide_password=False)
            self.relay = Relay((base.host or "127.0.0.1", base.port or 5432))
            self.url = base.set(database=self.name, host="127.0.0.1", port=self.relay.port) \
                .render_as_string(hide_password=False)
        self.engine = db.make_engine(self.direct)
        db.upgrade(self.engine)

    def take_down(self) -> None:
        if self.relay is not None:
            self.relay.cut()
        else:
            self.folder.rename(self.folder.with_name("replica.away"))

    def bring_back(self) -> None:
        if self.relay is not None:
            self.relay.start()
        else:
            self.folder.with_name("replica.away").rename(self.folder)

    def start(self) -> None:
        if self.relay is not None:
            self.relay.start()

    def close(self) -> None:
        self.engine.dispose()
        if self.relay is not None:
            self.relay.cut()
            with self.admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self.admin.dispose()


@pytest.fixture
def replica(engine, tmp_path):
    r = Replica(engine, tmp_path)
    r.start()
    yield r
    r.close()


# ------------------------------------------------------------------------------------------- the dashboard


def test_pages_read_the_replica_and_every_write_goes_to_the_primary(engine, replica, tmp_path, monkeypatch):
    """Signed in through the real login form: the figures are the replica's; the user, the session, the
    lockout counter and the audit rows live on the primary only (the replica has no user at all: a sign-in
    that read it would fail closed); the audit page, which must read its own writes, reads the primary."""
    fill(engine, tmp_path / "a", tables(), "primary")
    fill(replica.engine, tmp_path / "b", replica_tables(), "replica")
    users.add_user(engine, ADMIN, ADMIN_PASSWORD, "province", display_name="管理员")
    primary_cov, replica_cov = coverage_text(engine), coverage_text(replica.engine)
    assert primary_cov != replica_cov
    monkeypatch.setenv("DATABASE_URL", url_of(engine))
    monkeypatch.setenv("BANGFU_READ_DATABASE_URL", replica.url)
    _clear_caches()
    try:
        t0 = audit.utcnow()
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params["as_of"] = D
        at.run()
        assert not at.exception
        at.text_input(key="login_user").input(ADMIN)
        at.text_input(key="login_password").input("wrong-password")
        at.button[0].click().run()  # a failed attempt: counted on the primary
        assert at.error and "用户名或密码错误" in at.error[0].value
        login(at)
        assert not at.exception and not at.error, [e.value for e in at.error]
        shown = {x.label: x.value for x in at.metric}
        assert shown["结对覆盖率"] == replica_cov  # the page read the replica

        at.switch_page("pages/coverage.py").run()
        assert not at.exception and not at.error

        rows = audit.query(engine, since=t0, username=ADMIN)
        assert {"login_failed", "login_ok", "page_view"} <= set(rows["event"])
        for name in ("audit_log", "sessions", "users"):
            with replica.engine.connect() as conn:
                assert conn.execute(select(schema.metadata.tables[name]).limit(1)).first() is None, name

        at.switch_page("pages/audit.py").run()  # reads its own writes: the primary's audit log
        assert not at.exception and not at.error
        table = at.dataframe[0].value.to_csv()
        assert ADMIN in table and len(at.dataframe[0].value) >= 3
    finally:
        _clear_caches()


def test_without_a_read_url_pages_read_the_primary(engine, tmp_path, monkeypatch):
    """BANGFU_READ_DATABASE_URL unset: one engine, the primary (no fallback machinery)."""
    from ui import data

    url = url_of(engine)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("BANGFU_READ_DATABASE_URL", raising=False)
    _clear_caches()
    try:
        assert data.reader(url) is data.engine(url)
        assert routing.state(data.reader(url)) is None
    finally:
        _clear_caches()


# ------------------------------------------------------------------------------------------- fallback


def test_an_unreachable_replica_sends_reads_to_the_primary_until_it_is_back(engine, replica, tmp_path):
    """No error while the replica is away; reads return to it by themselves ``retry_s`` after it is back; on
    PostgreSQL, pooled connections that the outage killed are replaced by the primary's (the pre-ping), and the
    fallback connections say so in pg_stat_activity."""
    mark(engine, "primary")
    mark(replica.engine, "replica")
    reads = routing.make_read_engine(replica.url, url_of(engine), dashboard=True, retry_s=1.0)
    state = routing.state(reads)
    assert state is not None
    try:
        assert routing.run_read(reads, who) == "replica"

        replica.take_down()
        if replica.kind == "sqlite":
            reads.dispose()  # an open SQLite connection keeps reading its file: new connections find it gone
        assert who(reads) == "primary"  # the engine alone falls back (no retry of the read needed)
        assert state.is_down() and state.fallbacks == 1
        if replica.kind == "postgresql":
            with engine.connect() as conn:
                apps = conn.execute(text("SELECT application_name FROM pg_stat_activity WHERE datname = :d"),
                                    {"d": engine.url.database}).scalars().all()
            assert routing.FALLBACK_APP in apps

        replica.bring_back()
        assert routing.run_read(reads, who) == "primary"  # within retry_s: still the primary
        time.sleep(1.2)
        assert routing.run_read(reads, who) == "replica"  # the pooled primary connection was swapped back
        assert not state.is_down()
        with reads.connect() as conn:
            assert routing.target(conn) == routing.REPLICA
    finally:
        reads.dispose()


def test_the_same_database_url_needs_no_read_engine_and_mixed_databases_are_refused(engine, tmp_path):
    url = url_of(engine)
    plain = routing.make_read_engine(url, url)
    assert routing.state(plain) is None
    plain.dispose()
    other = "postgresql+psycopg://x@127.0.0.1:1/x" if engine.dialect.name == "sqlite" else \
        f"sqlite:///{tmp_path / 'x.sqlite'}"
    with pytest.raises(db.BangfuError, match="同一种数据库"):
        routing.make_read_engine(other, url)


def test_read_retry_seconds_from_the_environment(monkeypatch):
    monkeypatch.delenv("BANGFU_READ_RETRY_S", raising=False)
    assert settings.read_retry_s() == 10.0
    for raw, want in (("3", 3.0), ("0", 0.5), ("nan", 10.0), ("abc", 10.0), ("1e9", 3600.0)):
        monkeypatch.setenv("BANGFU_READ_RETRY_S", raw)
        assert settings.read_retry_s() == want, raw


# ------------------------------------------------------------------------------------------- PostgreSQL only
# (a connection cut in the middle of a statement, and an open dashboard session while the replica goes away)


@pytest.fixture
def pg_replica(pg_engine, tmp_path):
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set (.ci/run sets it)")
    from .conftest import _empty

    _empty(pg_engine)
    r = Replica(pg_engine, tmp_path)
    r.start()
    yield pg_engine, r
    r.close()


def test_a_read_cut_midway_is_retried_on_the_primary(pg_replica):
    primary, replica = pg_replica
    mark(primary, "primary")
    mark(replica.engine, "replica")
    reads = routing.make_read_engine(replica.url, url_of(primary), dashboard=True, retry_s=30)
    calls = []

    def slow_who(eng):
        with eng.connect() as conn:
            calls.append(routing.target(conn))
            conn.execute(text("SELECT pg_sleep(1.5)"))
            return conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "who")).scalar()

    try:
        assert routing.run_read(reads, who) == "replica"
        threading.Timer(0.4, replica.take_down).start()  # the replica goes away while the statement runs
        assert routing.run_read(reads, slow_who) == "primary"
        assert calls == [routing.REPLICA, routing.PRIMARY]
        assert routing.state(reads).fallbacks == 1
    finally:
        reads.dispose()


def test_an_open_dashboard_session_keeps_working_while_the_replica_is_away(pg_replica, tmp_path, monkeypatch):
    """The page shows the replica's figures, then — the replica gone — the primary's with no error message,
    then the replica's again once it is back (BANGFU_READ_RETRY_S later). Each rerun asks for another date,
    so that no cached result stands in for a database."""
    primary, replica = pg_replica
    fill(primary, tmp_path / "a", tables(), "primary")
    fill(replica.engine, tmp_path / "b", replica_tables(), "replica")
    for eng in (primary, replica.engine):
        with eng.begin() as conn:
            db.set_meta(conn, "demo", "1")  # no users: the demo viewer, no sign-in needed
    days = [AS_OF - dt.timedelta(days=i) for i in range(3)]
    monkeypatch.setenv("DATABASE_URL", url_of(primary))
    monkeypatch.setenv("BANGFU_READ_DATABASE_URL", replica.url)
    monkeypatch.setenv("BANGFU_READ_RETRY_S", "1")
    _clear_caches()
    try:
        at = AppTest.from_file(APP, default_timeout=60)

        def show(day):
            at.query_params["as_of"] = day.isoformat()
            at.run()
            assert not at.exception and not at.error, [e.value for e in at.error]
            return {x.label: x.value for x in at.metric}["结对覆盖率"]

        assert show(days[0]) == coverage_text(replica.engine, days[0])
        replica.take_down()
        assert show(days[1]) == coverage_text(primary, days[1])
        replica.bring_back()
        time.sleep(1.2)
        assert show(days[2]) == coverage_text(replica.engine, days[2])
    finally:
        _clear_caches()
