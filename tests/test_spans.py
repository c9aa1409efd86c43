"""Any date as cheap as a stored one (issue 15): the overdue spans (M3) and the stored-date-plus-changes path
(M1, M2) give exactly what the live SQL, the reference implementation, gives on both databases — for random
dates between the stored ones and for the boundaries (a deadline day and the day before it, a span's last day
and the day after, a pairing's start and end date, a visit's date, the day after a stored month-end), for every
scope level; and the SQL deadline is the first day the rule calls overdue."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import Date, Integer, func, literal, select, union_all, update

from data_access import metrics as m
from data_access import rules
from data_access import problems as pb
from data_access import schema, summary, views
from data_access.dates import months_before
from data_access.scope import Scope

TODAY = dt.date(2026, 6, 30)


def test_overdue_deadline_is_the_first_overdue_day(engine):
    """overdue_deadline(t, k) = the first D with months_before(D, k) > t, for every day of two years
    (month-ends into shorter months, leap days) and both intervals."""
    days = [dt.date(2023, 12, 1) + dt.timedelta(days=i) for i in range(800)]
    want = {}
    for t in days:
        for k in (2, 4):
            d = t + dt.timedelta(days=1)
            while not months_before(d, k) > t:
                d += dt.timedelta(days=1)
            want[(t, k)] = d
    with engine.connect() as conn:
        got = {}
        keys = list(want)
        for i in range(0, len(keys), 400):
            part = keys[i:i + 400]
            sel = union_all(*[select(literal(j, Integer).label("j"),
                                     rules.overdue_deadline(conn, literal(t, Date), literal(k, Integer)).label("d"))
                              for j, (t, k) in enumerate(part, start=i)])
            for j, d in conn.execute(sel):
                got[keys[j]] = d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))
    assert got == want
    # no overdue day within MIN_DEADLINE_DAYS of t: the refresh drops segments shorter than that
    assert min((d - t).days for (t, k), d in want.items()) > rules.MIN_DEADLINE_DAYS


@pytest.fixture
def spans_demo(engine):
    from data_access.demo import generate

    generate(engine, households=700, seed=11, as_of=TODAY)
    summary.refresh_engine(engine, today=TODAY)
    with engine.connect() as conn:
        assert summary.spans_stored(conn)
        assert conn.execute(select(func.count()).select_from(schema.overdue_spans)).scalar() > 0
    return engine


def _scopes(conn):
    first = lambda level: conn.execute(  # noqa: E731
        select(rules.T_REG.c.code).where(rules.T_REG.c.level == level).order_by(rules.T_REG.c.code)).scalars().first()
    # a unit with department-based helpers (interval 4, colleagues' visits count) and one without
    dept_unit = conn.execute(select(rules.T_HELP.c.unit_id).join(rules.T_UNIT, rules.T_UNIT.c.unit_id == rules.T_HELP.c.unit_id)
                             .where(rules.T_UNIT.c.level == "province", rules.T_HELP.c.department != "")
                             .order_by(rules.T_HELP.c.unit_id)).scalars().first()
    other = conn.execute(select(rules.T_UNIT.c.unit_id).where(rules.T_UNIT.c.level == "county")
                         .order_by(rules.T_UNIT.c.unit_id)).scalars().first()
    assert dept_unit and other
    county = first("county")
    return [Scope(), Scope(region=first("city")), Scope(region=county), Scope(region=first("township")),
            Scope(region=first("village")), Scope(unit=dept_unit), Scope(unit=other), Scope(region=county, unit=other)]


def _dates(conn):
    """Random days between the stored month-ends, and the boundaries taken from the ledger and the spans."""
    rng = random.Random(15)
    stored = set(summary.default_dates(TODAY))
    dates = set()
    while len(dates) < 3:
        d = TODAY - dt.timedelta(days=rng.randint(1, 700))
        if d not in stored:
            dates.add(d)
    s, p, v = schema.overdue_spans, rules.T_PAIR, rules.T_VIS

    def pick(q, n=1):
        vals = [x if isinstance(x, dt.date) else dt.date.fromisoformat(str(x)) for x in conn.execute(q).scalars()]
        return rng.sample(vals, min(n, len(vals)))

    past = dt.date(2025, 1, 1)
    for d in pick(select(s.c.overdue_from).where(s.c.overdue_from.between(past, TODAY)).distinct()):
        dates |= {d, d - dt.timedelta(days=1)}  # the deadline day itself, and the last day on time
    for d in pick(select(s.c.overdue_to).where(s.c.overdue_to.between(past, TODAY)).distinct()):
        dates |= {d, d - dt.timedelta(days=1)}  # a visit (or the end) closes the span, its last overdue day
    dates |= set(pick(select(p.c.end_date).where(p.c.end_date.between(past, TODAY)).distinct()))  # ends on D
    dates |= set(pick(select(p.c.start_date).where(p.c.start_date.between(past, TODAY)).distinct()))  # starts on D
    dates |= {d + dt.timedelta(days=1) for d in rng.sample(sorted(stored - {TODAY}), 1)}  # right after a stored one
    dates |= set(pick(select(v.c.visit_date).where(v.c.mode == "in_home", v.c.visit_date.between(past, TODAY))
                      .distinct()))  # a visit on D
    return sorted(d for d in dates if d not in stored)


def _answers(engine, d, scopes, unit, live=False):
    out = {}
    for i, sc in enumerate(scopes):
        out[("overdue", sc)] = pb.overdue(engine, d, sc, detail=True)
        if i in (0, 2, 3, 6):  # the province, a county, a township, a unit
            for fn in (m.cadence, m.coverage, m.cap):
                out[(fn.__name__, sc)] = fn(engine, d, "county", sc, summary=not live)
    out["overdue_top"] = pb.overdue(engine, d, limit=5)
    for by in ("city", "unit"):
        for fn in (m.cadence, m.coverage, m.cap):
            out[(fn.__name__, by)] = fn(engine, d, by, summary=not live)
    out["units"] = views.unit_helpers(engine, d, d.year - 1, Scope(unit=unit))
    return out


def test_spans_equal_live_on_random_and_boundary_dates(spans_demo):
    engine = spans_demo
    with engine.connect() as conn:
        scopes = _scopes(conn)
        dates = _dates(conn)
    assert len(dates) >= 9
    unit = scopes[5].unit
    from_spans = {d: _answers(engine, d, scopes, unit) for d in dates}
    # the reference: the live SQL (no spans stored for the current rules)
    with engine.begin() as conn:
        conn.execute(schema.summary_snapshots.delete().where(schema.summary_snapshots.c.kind == "spans"))
        assert not summary.spans_stored(conn)
    overdue_seen = 0
    for d in dates:
        live = _answers(engine, d, scopes, unit, live=True)
        for key, want in live.items():
            assert from_spans[d][key].equals(want), (d, key)
        overdue_seen += len(live[("overdue", Scope())])
    assert overdue_seen > 0


def test_readers_use_the_spans(spans_demo):
    """The non-stored dates really read the spans: move one span's start by a day and that day changes."""
    engine = spans_demo
    with engine.connect() as conn:
        s = schema.overdue_spans
        stored = set(summary.default_dates(TODAY))
        row = conn.execute(select(s.c.pairing_id, s.c.overdue_from).where(
            s.c.overdue_from.between(dt.date(2025, 6, 1), TODAY), s.c.overdue_to != rules.SPAN_OPEN)
            .order_by(s.c.pairing_id, s.c.overdue_from)).all()
    pid, d = next((p, x) for p, x in row if (x if isinstance(x, dt.date) else dt.date.fromisoformat(str(x)))
                  not in stored)
    d = d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))
    assert pid in set(pb.overdue(engine, d)["pairing_id"])
    before = int(m.total_row(m.cadence(engine, d, "province"), "cadence")["overdue"])
    with engine.begin() as conn:
        conn.execute(update(schema.overdue_spans).where(s.c.pairing_id == pid, s.c.overdue_from == d)
                     .values(overdue_from=d + dt.timedelta(days=1)))
    assert pid not in set(pb.overdue(engine, d)["pairing_id"])
    assert int(m.total_row(m.cadence(engine, d, "province"), "cadence")["overdue"]) == before - 1
    # summary=False is the live SQL, untouched by the spans
    assert int(m.total_row(m.cadence(engine, d, "province", summary=False), "cadence")["overdue"]) == before
