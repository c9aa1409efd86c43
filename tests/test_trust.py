"""Trust in daily operation (issue 11, items 1–5): an import never leaves real rows under the demo's open door,
a refresh never blocks readers, an import that changes nothing refreshes nothing, stored summaries carry the
version of the rules that made them, the photo months are cut at each stored date, and the service keeps today's
summaries current by itself (once across processes) and says on every page when its figures were computed."""

from __future__ import annotations

import copy
import datetime as dt
import re
import threading
import time
from zoneinfo import ZoneInfo

import pytest
import streamlit as st
from sqlalchemy import func, select, text, update
from streamlit.testing.v1 import AppTest

from data_access import db, schema, settings, summary
from data_access import metrics as m
from data_access import problems as pb
from data_access.demo import generate
from data_access.ledger import ImportFailed, import_ledger

from .conftest import write_ledger
from .ledgers import V1, base, hh, pr
from .pages_ledger import tables

APP = str(__import__("pathlib").Path(__file__).resolve().parent.parent / "app.py")


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def stamps(engine) -> dict:
    s = schema.summary_snapshots
    with engine.connect() as conn:
        return {(k, d): t for k, d, t in conn.execute(select(s.c.kind, s.c.as_of, s.c.refreshed_at))}


# ------------------------------------------------------------------ 1. no open door after an import


def test_import_into_demo_database_replaces_the_demo_and_fails_closed(engine, tmp_path):
    generate(engine, households=300, seed=2, as_of=dt.date(2026, 6, 30))
    summary.refresh_engine(engine, today=dt.date(2026, 6, 30))
    assert db.is_demo(engine) and count(engine, schema.households) == 300

    bad = copy.deepcopy(tables())
    bad["pairings"][0]["helper_id"] = "NO-SUCH-HELPER"
    with pytest.raises(ImportFailed):
        import_ledger(engine, write_ledger(tmp_path / "bad", bad))
    assert db.is_demo(engine) and count(engine, schema.households) == 300  # a failed import changes nothing

    result = import_ledger(engine, write_ledger(tmp_path / "good", tables()))
    assert not db.is_demo(engine)
    assert result.replaced_demo and "演示数据" in result.summary()
    with engine.connect() as conn:
        ids = set(conn.execute(select(schema.households.c.household_id)).scalars())
        assert conn.execute(select(func.count()).select_from(schema.meta).where(schema.meta.c.key.like("demo%"))).scalar() == 0
    assert ids == {h["household_id"] for h in tables()["households"]}  # no generated household is left
    # the figures are those of the imported ledger alone, stored and live
    today = settings.today()
    assert m.coverage(engine, today, "province").equals(m.coverage(engine, today, "province", summary=False))


def test_dashboard_fails_closed_after_an_import_into_the_demo_database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    generate(engine, households=200, seed=2)
    monkeypatch.setenv("DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and any("演示模式" in w.value for w in at.info)  # the demo's open door
    import_ledger(engine, write_ledger(tmp_path / "l", tables()))
    # the same session's next run, with the cached "is demo" answer still fresh: no data, no login-free view
    at.run()
    assert not at.exception
    assert not at.metric and not at.dataframe and not at.get("plotly_chart")
    assert any("尚未创建任何看板用户" in e.value for e in at.error)
    st.cache_data.clear()
    st.cache_resource.clear()
    engine.dispose()


# ------------------------------------------------------------------ 2. readers never blocked, no needless refresh


def test_refresh_does_not_block_readers(engine, tmp_path):
    import_ledger(engine, write_ledger(tmp_path / "l", tables()))
    today = settings.today()
    before_list = pb.overdue(engine, today)
    before_cap = m.cap(engine, today, "county")
    assert len(before_list) > 0
    writer = engine.connect()
    trans = writer.begin()
    try:
        summary.lock_refresh(writer)
        summary.refresh(writer, today=today)  # a full refresh, not committed yet
        with engine.connect() as reader:
            if engine.dialect.name == "postgresql":
                # a reader that would wait on a lock fails fast instead of hanging the test
                reader.execute(text("SET lock_timeout = '3s'"))
                reader.execute(text("SET statement_timeout = '20s'"))
            got_list = pb.overdue(reader, today)
            got_cap = m.cap(reader, today, "county")
        assert got_list.equals(before_list) and got_cap.equals(before_cap)  # the previous snapshot
    finally:
        trans.commit()
        writer.close()
    assert pb.overdue(engine, today).equals(before_list)


def test_import_that_changes_nothing_does_not_refresh(engine, tmp_path):
    folder = write_ledger(tmp_path / "l", tables())
    import_ledger(engine, folder)
    with engine.begin() as conn:
        conn.execute(update(schema.summary_snapshots).values(refreshed_at="sentinel"))
    result = import_ledger(engine, folder)
    assert not result.changed()
    assert set(stamps(engine).values()) == {"sentinel"}  # nothing was recomputed
    changed = copy.deepcopy(tables())
    changed["households"][1]["size"] = 9
    assert import_ledger(engine, write_ledger(tmp_path / "l2", changed)).changed()
    assert "sentinel" not in set(stamps(engine).values())


# ------------------------------------------------------------------ 4. summaries stamped with the rules version


def test_stale_summaries_are_not_read_and_are_recomputed_on_upgrade(engine, tmp_path, capsys):
    import_ledger(engine, write_ledger(tmp_path / "l", tables()))
    today = settings.today()
    live = m.cadence(engine, today, "county", summary=False)
    # summaries of an older rules version, whose figures differ from today's rules
    with engine.begin() as conn:
        ms = schema.metric_summary
        conn.execute(update(ms).where(ms.c.kind == "cadence").values(n2=ms.c.n2 + 7))
        conn.execute(update(schema.summary_snapshots).values(rules_version=summary.RULES_VERSION - 1))
    assert m.cadence(engine, today, "county").equals(live)  # the stale rows are not read
    with engine.connect() as conn:
        assert summary.needs_refresh(conn, today) == "rules"
        assert summary.freshness(conn, today) is None
    from data_access.cli import main

    assert main(["db", "upgrade", "--db", engine.url.render_as_string(hide_password=False)]) == 0
    assert "重新计算" in capsys.readouterr().out
    s = schema.summary_snapshots
    with engine.connect() as conn:
        versions = set(conn.execute(select(s.c.rules_version).distinct()).scalars())
        assert versions == {summary.RULES_VERSION}
        assert summary.needs_refresh(conn, today) is None and summary.available(conn, "cadence", today)
    assert m.cadence(engine, today, "county").equals(live)


OLD_STAMP = "2000-01-01T00:00:00+08:00"


def test_stale_summaries_are_recomputed_when_the_server_starts(engine, tmp_path):
    """The start path of item 4: the server's maintenance thread (ui/startup.start_maintenance runs _maintain,
    which calls summary.ensure_current) finds summaries stamped with an older rules version and recomputes
    every stored date — not only today — so that pages (stored) and the live figures agree again."""
    from ui import startup

    import_ledger(engine, write_ledger(tmp_path / "l", tables()))
    s, ms = schema.summary_snapshots, schema.metric_summary
    month_end = dt.date(2026, 6, 30)
    before = stamps(engine)
    with engine.connect() as conn:
        assert summary.needs_refresh(conn, settings.today()) is None
    assert (("cadence", month_end) in before) and len({d for _, d in before}) > 2
    live = {d: m.cadence(engine, d, "county", summary=False) for d in (settings.today(), month_end)}
    # an upgrade changed a rule: the stored figures and their stamps are the older version's
    with engine.begin() as conn:
        conn.execute(update(ms).where(ms.c.kind == "cadence").values(n2=ms.c.n2 + 7))
        conn.execute(update(s).values(rules_version=summary.RULES_VERSION - 1, refreshed_at=OLD_STAMP))
    with engine.connect() as conn:
        assert summary.needs_refresh(conn, settings.today()) == "rules"

    # the server starts: its maintenance thread, run as start_maintenance runs it (with a stop the test sets)
    stop = threading.Event()
    thread = threading.Thread(target=startup._maintain, args=(engine.url.render_as_string(hide_password=False), stop),
                              daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if summary.needs_refresh(conn, settings.today()) is None:
                    break
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(120)
    assert not thread.is_alive()
    with engine.connect() as conn:
        assert summary.needs_refresh(conn, settings.today()) is None
        assert set(conn.execute(select(s.c.rules_version).distinct()).scalars()) == {summary.RULES_VERSION}
    after = stamps(engine)
    assert set(after) == set(before)  # every stored date is stored again ...
    assert OLD_STAMP not in after.values(), [k for k, v in after.items() if v == OLD_STAMP]  # ... recomputed
    for d, want in live.items():  # ... by today's rules: the stored figures are the live ones again
        assert m.cadence(engine, d, "county").equals(want), d
        with engine.connect() as conn:
            assert summary.available(conn, "cadence", d), d  # read from the stored rows, not live


# ------------------------------------------------------------------ 5. photo months cut at each stored date


def test_photo_rate_of_an_earlier_date_in_the_same_month(engine, tmp_path):
    ledger = base(households=[hh("H1", V1)], pairings=[pr("P1", "A", "H1", "2026-01-01")],
                  visits=[{"visit_id": "V1", "helper_id": "A", "household_id": "H1", "visit_date": "2026-06-10",
                           "mode": "in_home", "photo_uploaded": "1"},
                          {"visit_id": "V2", "helper_id": "A", "household_id": "H1", "visit_date": "2026-06-30",
                           "mode": "in_home", "photo_uploaded": "1"}])
    import_ledger(engine, write_ledger(tmp_path / "l", ledger), refresh_summaries=False)
    d1, d2 = dt.date(2026, 6, 29), dt.date(2026, 6, 30)
    summary.refresh_engine(engine, today=d2, dates=[d1, d2], years=[])
    first = dt.date(2026, 6, 1)
    for d, want in ((d1, 1), (d2, 2)):
        live = m.photos(engine, first, d, "province", summary=False)
        stored = m.photos(engine, first, d, "province")
        assert int(live["in_home_visits"].sum()) == want
        assert int(stored["in_home_visits"].sum()) == want and int(stored["with_photo"].sum()) == want
    with engine.connect() as conn:
        assert summary.available(conn, "photos", d1)  # read from the stored month piece, not live


# ------------------------------------------------------------------ 3. today kept current by the service itself


def test_ensure_current_stores_a_new_day_once(engine, tmp_path):
    import_ledger(engine, write_ledger(tmp_path / "l", tables()), refresh_summaries=False)
    day = dt.date(2026, 7, 1)
    summary.refresh_engine(engine, today=dt.date(2026, 6, 30))
    with engine.connect() as conn:
        assert summary.needs_refresh(conn, day) == "today" and summary.freshness(conn, day) is None
    assert summary.ensure_current(engine, today=day) == "today"
    with engine.connect() as conn:
        assert summary.needs_refresh(conn, day) is None
        stamp = summary.freshness(conn, day)
        assert stamp and dt.datetime.fromisoformat(stamp).utcoffset() == dt.timedelta(hours=8)
        assert summary.available(conn, "cadence", dt.date(2026, 6, 30))  # the month-end kept
    assert summary.ensure_current(engine, today=day) is None  # nothing to do the second time
    assert m.cadence(engine, day, "county").equals(m.cadence(engine, day, "county", summary=False))


def test_ensure_current_leaves_the_work_to_the_lock_holder(engine, tmp_path):
    import_ledger(engine, write_ledger(tmp_path / "l", tables()), refresh_summaries=False)
    day = dt.date(2026, 7, 1)
    if engine.dialect.name == "postgresql":
        holder = engine.connect()
        trans = holder.begin()
        assert summary.lock_refresh(holder, wait=False)  # another process refreshing
        release = lambda: (trans.rollback(), holder.close())  # noqa: E731
    else:
        held = summary._sqlite_try_lock(engine)
        assert held
        release = held.close
    try:
        assert summary.ensure_current(engine, today=day) == "busy"
        with engine.connect() as conn:
            assert not summary.available(conn, "cadence", day)
    finally:
        release()
    assert summary.ensure_current(engine, today=day) == "today"  # once the lock is free


def test_concurrent_processes_refresh_once(engine, tmp_path):
    """Two threads (each as a separate process would, with its own connections) ask at once: one refreshes,
    the other finds the lock taken or the work done; never both."""
    import_ledger(engine, write_ledger(tmp_path / "l", tables()), refresh_summaries=False)
    day = dt.date(2026, 7, 1)
    summary.refresh_engine(engine, today=dt.date(2026, 6, 30))
    other = db.make_engine(engine.url.render_as_string(hide_password=False))
    results = []
    barrier = threading.Barrier(2)

    def run(e):
        barrier.wait()
        results.append(summary.ensure_current(e, today=day))

    threads = [threading.Thread(target=run, args=(e,)) for e in (engine, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    other.dispose()
    assert sorted(results, key=str).count("today") == 1, results
    with engine.connect() as conn:
        assert summary.needs_refresh(conn, day) is None


# ------------------------------------------------------------------ every page says when its figures were computed


def test_pages_say_when_figures_were_computed_or_that_they_are_live(tmp_path, monkeypatch):
    from .pages_ledger import ADMIN, add_admin, build, login

    url = build(tmp_path)
    add_admin(url)
    monkeypatch.setenv("DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = login(AppTest.from_file(APP, default_timeout=60).run(), ADMIN)
    assert not at.exception
    today_notes = [c.value for c in at.caption if "数据计算于" in c.value]
    assert today_notes and "北京时间" in today_notes[0]
    for page in ("coverage", "cap", "cadence", "ratings", "units", "map"):
        at.query_params["as_of"] = "2026-06-17"  # a mid-month day: not stored
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception
        assert any("实时计算" in c.value for c in at.caption), page

    # the meeting screen (its note is in the screen's HTML) and the 督办整改 page: a stored date says when its
    # figures were computed, in Beijing time, from the date's own stamp; a date not stored says it is live
    engine = db.make_engine(url)
    stored = dt.date(2026, 6, 30)  # a month-end: stored by the import
    with engine.connect() as conn:
        stamp = summary.freshness(conn, stored)
        assert stamp and summary.freshness(conn, dt.date(2026, 6, 17)) is None
    engine.dispose()
    at_ = dt.datetime.fromisoformat(stamp).astimezone(ZoneInfo("Asia/Shanghai"))
    when = f"数据计算于 {at_.month}月{at_.day}日 {at_:%H:%M}（北京时间）"

    def meeting_note(at):
        # the note under the screen's header (the tiles' notes use the same class)
        notes = [n for e in at.markdown
                 for n in re.findall(r'<div class="bf-sub">[^<]*</div></div><div class="bf-note">([^<]*)</div>', e.value)]
        assert len(notes) == 1, [e.value for e in at.markdown]
        return notes[0]

    def page_notes(at):
        return [c.value for c in at.caption if "数据计算于" in c.value or "实时计算" in c.value]

    for day, live in ((stored, False), (dt.date(2026, 6, 17), True)):
        at.query_params["as_of"] = day.isoformat()
        at.switch_page("pages/meeting.py").run()
        assert not at.exception, [e.message for e in at.exception]
        note = meeting_note(at)
        assert ("实时计算" in note and "数据计算于" not in note) if live else note == when, (day, note)
        at.switch_page("pages/supervision.py").run()
        assert not at.exception, [e.message for e in at.exception]
        notes = page_notes(at)
        assert len(notes) == 1, (day, notes)
        assert ("实时计算" in notes[0] and "数据计算于" not in notes[0]) if live else notes[0] == when, (day, notes)
    st.cache_data.clear()
    st.cache_resource.clear()
