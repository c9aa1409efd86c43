"""The stored summaries give exactly the live figures, and the metrics really read them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, or_, select, update

from data_access import settings
from data_access import metrics as m
from data_access import rules
from data_access import schema
from data_access.ledger import import_ledger
from data_access.scope import Scope
from data_access.summary import available, refresh_engine

from .conftest import write_ledger
from .test_metrics import D, coverage_ledger


def test_metrics_read_the_summary_when_it_exists(engine, tmp_path):
    import_ledger(engine, write_ledger(tmp_path / "l", coverage_ledger()), refresh_summaries=False)
    refresh_engine(engine, dates=[D], years=[2025])
    with engine.connect() as conn:
        assert available(conn, "coverage", D) and not available(conn, "coverage", dt.date(2026, 6, 29))
    live = m.coverage(engine, D, "province", summary=False)
    assert m.coverage(engine, D, "province").equals(live)
    with engine.begin() as conn:  # tamper with the stored rows: the summary path must show it
        conn.execute(update(schema.metric_summary).where(schema.metric_summary.c.kind == "coverage")
                     .values(n1=schema.metric_summary.c.n1 + 100))
    # province totals come from the one province roll-up row
    assert int(m.coverage(engine, D, "province")["households"].iloc[0]) == int(live["households"].iloc[0]) + 100
    # a township grouping reads the village rows: three villages in the ledger, each 100 higher
    assert int(m.coverage(engine, D, "township")["households"].sum()) == int(live["households"].iloc[0]) + 300
    assert m.coverage(engine, D, "province", summary=False).equals(live)


def test_import_refreshes_summaries_for_today(engine, tmp_path):
    import_ledger(engine, write_ledger(tmp_path / "l", coverage_ledger()))
    today = settings.today()
    with engine.connect() as conn:
        assert available(conn, "cadence", today) and available(conn, "ratings", dt.date(today.year - 1, 12, 31))


@pytest.fixture
def demo(engine):
    from data_access.demo import generate

    generate(engine, households=1500, seed=3, as_of=dt.date(2026, 6, 30))
    refresh_engine(engine, today=dt.date(2026, 6, 30))
    return engine


def test_summary_equals_live_on_demo_data(demo):
    """Every metric, grouping and a spread of scopes: stored summaries == live SQL."""
    d = dt.date(2026, 6, 30)
    months = [d, dt.date(2025, 7, 31)]
    with demo.connect() as conn:
        city = conn.execute(select(rules.T_REG.c.code).where(rules.T_REG.c.level == "city").order_by(rules.T_REG.c.code)).scalars().first()
        county = conn.execute(select(rules.T_REG.c.code).where(rules.T_REG.c.level == "county").order_by(rules.T_REG.c.code)).scalars().first()
        unit = conn.execute(select(rules.T_ASSIGN.c.unit_id).order_by(rules.T_ASSIGN.c.unit_id)).scalars().first()
    scopes = [Scope(), Scope(region=city), Scope(region=county), Scope(unit=unit), Scope(region=city, unit=unit)]
    checked = 0
    for day in months:
        for fn in (m.coverage, m.cap, m.cadence, m.replacements):
            for by in ("province", "city", "county", "unit"):
                for sc in scopes:
                    live = fn(demo, day, by, sc, summary=False)
                    stored = fn(demo, day, by, sc)
                    assert stored.equals(live), (fn.__name__, day, by, sc)
                    checked += 1
    # finer than the stored grains (township grouping or scope, a unit by township): the live path answers
    with demo.connect() as conn:
        township = conn.execute(select(rules.T_REG.c.code).where(rules.T_REG.c.level == "township").order_by(rules.T_REG.c.code)).scalars().first()
    for fn in (m.coverage, m.cadence, m.cap):
        for by, sc in (("township", Scope()), ("village", Scope(region=township)), ("township", Scope(unit=unit)),
                       ("unit", Scope(region=township))):
            assert fn(demo, d, by, sc).equals(fn(demo, d, by, sc, summary=False)), (fn.__name__, by, sc)
    for by in ("city", "unit"):
        for sc in scopes:
            assert m.ratings(demo, 2025, by, sc).equals(m.ratings(demo, 2025, by, sc, summary=False))
    assert checked == 2 * 4 * 4 * 5


def test_assigned_village_coverage_on_every_stored_date(demo):
    """Assigned-village coverage is stored for all dates from one pass (on_<i> per date): on every stored
    date it equals the live figure, also while assignments begin and end within the stored months."""
    from data_access.summary import default_dates

    dates = default_dates(dt.date(2026, 6, 30))
    a = rules.T_ASSIGN
    with demo.connect() as conn:
        changes = conn.execute(select(func.count()).where(or_(
            a.c.start_date.between(min(dates), max(dates)), a.c.end_date.between(min(dates), max(dates))))).scalar()
    assert changes > 0  # the check below is meaningful only if the assigned villages change
    with demo.connect() as conn:
        unit = conn.execute(select(a.c.unit_id).where(or_(
            a.c.start_date.between(min(dates), max(dates)), a.c.end_date.between(min(dates), max(dates))))
            .order_by(a.c.unit_id)).scalars().first()
    for day in dates:
        # by unit: the per-unit roll-up; one unit's county breakdown: the unit x village rows
        assert m.coverage(demo, day, "unit").equals(m.coverage(demo, day, "unit", summary=False)), day
        assert m.coverage(demo, day, "county", Scope(unit=unit)).equals(
            m.coverage(demo, day, "county", Scope(unit=unit), summary=False)), day


def _scopes(engine):
    with engine.connect() as conn:
        first = lambda level: conn.execute(  # noqa: E731
            select(rules.T_REG.c.code).where(rules.T_REG.c.level == level).order_by(rules.T_REG.c.code)).scalars().first()
        city, county, township = first("city"), first("county"), first("township")
        unit = conn.execute(select(rules.T_ASSIGN.c.unit_id).order_by(rules.T_ASSIGN.c.unit_id)).scalars().first()
    return [Scope(), Scope(region=city), Scope(region=county), Scope(region=township), Scope(unit=unit),
            Scope(region=county, unit=unit)]


def test_stored_status_lists_and_distributions_equal_live(engine):
    """The per-pairing / per-helper status, gap distribution, photo months and trend stored by the
    refresh give exactly what the live SQL gives, for every scope (also finer than the roll-ups)."""
    from data_access import problems as pb
    from data_access import summary, views
    from data_access.demo import generate

    d = dt.date(2026, 6, 30)
    generate(engine, households=1500, seed=5, as_of=d)
    scopes = _scopes(engine)
    photo_ranges = [(dt.date(2025, 7, 1), d), (dt.date(2025, 7, 16), dt.date(2026, 3, 9)), (dt.date(2026, 6, 1), d)]
    live = {}
    for sc in scopes:
        live[sc] = {
            "overdue": pb.overdue(engine, d, sc, detail=True),
            "overdue_top": pb.overdue(engine, d, sc, limit=7),
            "cap": pb.cap_violators(engine, d, sc, detail=True),
            "loads_top": pb.cap_violators(engine, d, sc, min_load=1, limit=9),
            "gaps": pb.gap_histogram(engine, d, sc),
            "trend": pb.trend(engine, d, sc),
            "photos": [m.photos(engine, a, b, "county", sc) for a, b in photo_ranges],
            "uncovered": pb.uncovered(engine, d, sc, detail=True),
            "uncovered_top": pb.uncovered(engine, d, sc, limit=5),
            "missing": views.missing_ratings(engine, d.year - 1, sc),
            "excellent": views.excellent_with_problems(engine, d.year - 1, d, sc),
        }
        assert live[sc]["gaps"][["on_time", "overdue"]].to_numpy().sum() == int(
            m.total_row(m.cadence(engine, d, "province", sc, summary=False), "cadence")["active_pairings"])
    summary.refresh_engine(engine, today=d)
    with engine.connect() as conn:
        assert summary.status_date(conn, d) and summary.available(conn, "gaps", d)
        assert summary.available(conn, "photos", d) and summary.available(conn, "photos", dt.date(2025, 7, 31))
    some_overdue = 0
    for sc in scopes:
        now = live[sc]
        assert pb.overdue(engine, d, sc, detail=True).equals(now["overdue"]), sc
        top = pb.overdue(engine, d, sc, limit=7)
        assert top.equals(now["overdue_top"]), sc
        assert list(top["gap_days"]) == sorted(now["overdue"]["gap_days"], reverse=True)[:7]
        assert pb.cap_violators(engine, d, sc, detail=True).equals(now["cap"]), sc
        assert pb.cap_violators(engine, d, sc, min_load=1, limit=9).equals(now["loads_top"]), sc
        assert pb.gap_histogram(engine, d, sc).equals(now["gaps"]), sc
        assert pb.trend(engine, d, sc).equals(now["trend"]), sc
        for (a, b), want in zip(photo_ranges, now["photos"]):
            assert m.photos(engine, a, b, "county", sc).equals(want), (sc, a, b)
        assert pb.uncovered(engine, d, sc, detail=True).equals(now["uncovered"]), sc
        assert pb.uncovered(engine, d, sc, limit=5).equals(now["uncovered_top"]), sc
        assert views.missing_ratings(engine, d.year - 1, sc).equals(now["missing"]), sc
        assert views.excellent_with_problems(engine, d.year - 1, d, sc).equals(now["excellent"]), sc
        assert views.missing_ratings(engine, d.year - 1, sc, limit=3).equals(now["missing"].head(3)), sc
        assert views.excellent_with_problems(engine, d.year - 1, d, sc, limit=3).equals(now["excellent"].head(3)), sc
        some_overdue += len(now["overdue"])
    assert some_overdue > 0
    everywhere = live[Scope()]
    assert len(everywhere["uncovered"]) and len(everywhere["missing"]) and len(everywhere["excellent"])
    # the lists really read the stored rows: take one away and it is gone from the list
    gone_hh, gone_helper = everywhere["uncovered"]["household_id"].iloc[0], everywhere["missing"]["helper_id"].iloc[0]
    flagged = everywhere["excellent"]["helper_id"].iloc[0]
    with engine.begin() as conn:
        conn.execute(schema.uncovered_status.delete().where(schema.uncovered_status.c.household_id == gone_hh))
        conn.execute(schema.rating_missing.delete().where(schema.rating_missing.c.helper_id == gone_helper))
        conn.execute(update(schema.helper_status).where(schema.helper_status.c.helper_id == flagged)
                     .values(load=0, overdue=0))
    assert gone_hh not in set(pb.uncovered(engine, d, detail=True)["household_id"])
    assert gone_helper not in set(views.missing_ratings(engine, d.year - 1)["helper_id"])
    assert flagged not in set(views.excellent_with_problems(engine, d.year - 1, d)["helper_id"])


def test_last_month_end_has_its_status_stored_and_equal_to_live(engine):
    """The refresh stores the per-pairing / per-helper status of the last month-end (the monthly meeting's date):
    its overdue and cap lists, gap histogram and uncovered list read stored rows equal to the live SQL; the daily
    refresh keeps it (and stores it when it is missing) and keeps no status of the older month-ends."""
    from data_access import problems as pb
    from data_access import summary
    from data_access.demo import generate

    today, month_end_ = dt.date(2026, 7, 14), dt.date(2026, 6, 30)
    generate(engine, households=1200, seed=7, as_of=today)
    scopes = _scopes(engine)[:3]
    live = {sc: (pb.overdue(engine, month_end_, sc, detail=True), pb.cap_violators(engine, month_end_, sc, detail=True),
                 pb.gap_histogram(engine, month_end_, sc), pb.uncovered(engine, month_end_, sc, detail=True))
            for sc in scopes}
    summary.refresh_engine(engine, today=today)
    with engine.connect() as conn:
        assert summary.status_date(conn, month_end_) and summary.available(conn, "gaps", month_end_)
        assert not summary.status_date(conn, dt.date(2026, 5, 31))
    for sc, (overdue, cap, gaps, uncovered) in live.items():
        assert pb.overdue(engine, month_end_, sc, detail=True).equals(overdue), sc
        assert pb.cap_violators(engine, month_end_, sc, detail=True).equals(cap), sc
        assert pb.gap_histogram(engine, month_end_, sc).equals(gaps), sc
        assert pb.uncovered(engine, month_end_, sc, detail=True).equals(uncovered), sc
    assert len(live[Scope()][0]) and len(live[Scope()][1])
    # the lists really read the stored rows: one stored overdue pairing taken away is gone from the list
    gone = live[Scope()][0]["pairing_id"].iloc[0]
    with engine.begin() as conn:
        conn.execute(schema.pairing_status.delete().where(schema.pairing_status.c.as_of == month_end_,
                                                          schema.pairing_status.c.pairing_id == gone))
    assert gone not in set(pb.overdue(engine, month_end_, detail=True)["pairing_id"])
    # next month, the daily refresh: July's end gets its status, June's is dropped (a status per stored month-end
    # would be a million rows each at province scale), and June's lists are computed live again, still right
    with engine.begin() as conn:
        summary.refresh(conn, today=dt.date(2026, 7, 31))
    with engine.begin() as conn:
        summary.refresh(conn, today=dt.date(2026, 8, 3), only_missing=True)
    with engine.connect() as conn:
        assert summary.status_date(conn, dt.date(2026, 7, 31)) and summary.status_date(conn, dt.date(2026, 8, 3))
        assert not summary.status_date(conn, month_end_)
        left = conn.execute(select(schema.pairing_status.c.as_of).distinct()).scalars().all()
    assert sorted(left) == [dt.date(2025, 12, 31), dt.date(2026, 7, 31), dt.date(2026, 8, 3)]
    assert pb.overdue(engine, month_end_, Scope(), detail=True).equals(live[Scope()][0])
    # a daily refresh that finds the last month-end without its status stores it
    with engine.begin() as conn:
        summary.clear(conn, keep=[dt.date(2026, 7, 31), dt.date(2025, 12, 31)], keep_status=[dt.date(2025, 12, 31)])
    with engine.begin() as conn:
        summary.refresh(conn, today=dt.date(2026, 8, 4), only_missing=True)
    with engine.connect() as conn:
        assert summary.status_date(conn, dt.date(2026, 7, 31))


def _stored(engine) -> dict[str, list]:
    """Every stored summary, status and span row (without the refresh stamps), sorted: what two refreshes of the
    same ledger must agree on."""
    out = {}
    with engine.connect() as conn:
        for t in (schema.metric_summary, schema.pairing_status, schema.helper_status, schema.uncovered_status,
                  schema.rating_missing, schema.overdue_spans):
            out[t.name] = sorted((tuple("" if v is None else str(v) for v in r) for r in conn.execute(select(t))))
        snaps = schema.summary_snapshots
        out["snapshots"] = sorted((r.kind, str(r.as_of)) for r in conn.execute(select(snaps.c.kind, snaps.c.as_of)))
    return out


def test_an_import_of_visits_only_refreshes_from_its_earliest_date_and_equals_a_full_refresh(engine, tmp_path,
                                                                                              monkeypatch):
    """An import that writes visits and nothing else refreshes incrementally (ledger.ImportResult.only_visits):
    the stored dates before its earliest visit (old or new value) and the rating years are kept, the spans of the
    other households too — and every stored row then equals what a full refresh of the same ledger stores."""
    from data_access import db, summary
    from data_access.demo import generate

    today = dt.date(2026, 7, 14)
    monkeypatch.setattr(settings, "today", lambda: today)
    generate(engine, households=900, seed=11, as_of=today)
    with engine.begin() as conn:  # real rows from now on: an import would replace a demo database
        db.set_meta(conn, "demo", "0")
    summary.refresh_engine(engine, today=today)
    with engine.connect() as conn:
        pairs = conn.execute(select(schema.pairings.c.helper_id, schema.pairings.c.household_id)
                             .where(schema.pairings.c.end_date.is_(None)).order_by(schema.pairings.c.pairing_id)
                             .limit(40)).all()
    since = dt.date(2026, 3, 20)
    v = schema.visits
    with engine.connect() as conn:  # the first new visit (on ``since``) ends a pairing's overdue span: that span
        sp = schema.overdue_spans   # began before ``since`` and must be cut there
        late = conn.execute(select(sp.c.helper_id, sp.c.household_id).where(
            sp.c.overdue_from < since, sp.c.overdue_to > since, sp.c.household_id.in_([hh for _, hh in pairs[:12]])
        ).limit(1)).first() or conn.execute(select(sp.c.helper_id, sp.c.household_id).where(
            sp.c.overdue_from < since, sp.c.overdue_to > since).limit(1)).first()
    assert late is not None
    pairs = [tuple(late)] + [p_ for p_ in pairs if tuple(p_) != tuple(late)]
    with engine.connect() as conn:  # a paired household with an in-home visit since: its visits since then move
        sp = schema.overdue_spans
        household = conn.execute(
            select(v.c.household_id).where(v.c.visit_date >= since, v.c.mode == "in_home",
                                           v.c.household_id.in_([hh for _, hh in pairs[31:]]),
                                           v.c.household_id.in_(select(sp.c.household_id)))
            .order_by(v.c.visit_id).limit(1)).scalar()
        moved_rows = [r._asdict() for r in conn.execute(select(v).where(v.c.household_id == household,
                                                                        v.c.visit_date >= since))]
    visits = [{"visit_id": f"NEW{i}", "helper_id": h, "household_id": hh, "visit_date": str(since + dt.timedelta(days=9 * i)),
               "mode": "in_home", "photo_uploaded": "1" if i % 2 else "0"} for i, (h, hh) in enumerate(pairs[:12])]
    visits += [{"visit_id": f"PH{i}", "helper_id": h, "household_id": hh, "visit_date": "2026-07-01", "mode": "phone"}
               for i, (h, hh) in enumerate(pairs[12:20])]
    # a household's visits since ``since`` moved to another household (a correction): it has none left on or after
    # ``since``, and its spans must still be rebuilt (they lose visits)
    visits += [{**{k: ("" if x is None else str(x)) for k, x in r.items()}, "visit_date": f"2026-04-0{2 + i}",
                "household_id": pairs[30][1], "helper_id": pairs[30][0]} for i, r in enumerate(moved_rows)]
    with engine.connect() as conn:
        before = {r.as_of: r.refreshed_at for r in conn.execute(select(schema.summary_snapshots)
                                                                 .where(schema.summary_snapshots.c.kind == "cadence"))}
    result = import_ledger(engine, write_ledger(tmp_path / "visits", {"visits": visits}))
    assert result.only_visits() and result.inserted["visits"] == 20 and result.updated["visits"] == len(moved_rows) > 0
    assert result.visit_since == since
    assert result.visit_households == {household, pairs[30][1]}
    with engine.connect() as conn:
        after = {r.as_of: r.refreshed_at for r in conn.execute(select(schema.summary_snapshots)
                                                                .where(schema.summary_snapshots.c.kind == "cadence"))}
    assert set(after) == set(before)
    kept = [d for d in before if d < since]
    assert kept and all(after[d] == before[d] for d in kept)  # the dates before the earliest visit were kept
    incremental = _stored(engine)
    summary.refresh_engine(engine, today=today)
    full = _stored(engine)
    for name in full:
        assert incremental[name] == full[name], name
    # an import that changes anything else refreshes everything
    with engine.connect() as conn:
        grade = conn.execute(select(schema.ratings.c.grade).where(schema.ratings.c.helper_id == pairs[0][0],
                                                                  schema.ratings.c.year == 2025)).scalar()
    result = import_ledger(engine, write_ledger(tmp_path / "more", {
        "visits": [{**visits[0], "visit_id": "NEW99", "visit_date": "2026-07-10"}],
        "ratings": [{"helper_id": pairs[0][0], "year": 2025, "grade": "不合格" if grade == "excellent" else "优秀"}]}))
    assert result.changed() and not result.only_visits()
