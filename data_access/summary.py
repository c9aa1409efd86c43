"""Precomputed metric summaries: the metrics' own fact rows, summed per (unit, village), stored for
today and the last month-ends (and per rating year), so that a page reads a few thousand summary
rows instead of scanning pairings and visits.

The figures are those of the live path by construction: a summary row is the sum of the very fact
rows (metrics._*_rows) the live path aggregates, and both paths are aggregated by the same
metrics._aggregate. tests/test_summary.py checks the two agree on every grouping and scope.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import Date, String, func, literal, select
from sqlalchemy.engine import Connection, Engine

from . import metrics as m
from .dates import last_month_ends
from .schema import metric_summary, ratings, summary_snapshots

# kind -> (metric whose fields it stores, grouping basis, grain, fact-row builder). The grain is what a
# stored row stands for: "village" (household's village, no unit), "unit_village", "unit_county"
# (helper's unit x household's county) or "unit" (helper-based metrics).
DAY_KINDS = {
    "coverage": ("coverage", "village", "village", lambda conn, d: m._coverage_rows(conn, d, m.ALL, assigned=False)),
    "coverage_assigned": ("coverage", "village", "unit_village",
                          lambda conn, d: m._coverage_rows(conn, d, m.ALL, assigned=True)),
    "cadence": ("cadence", "village", "village", lambda conn, d: m._cadence_rows(conn, d, m.ALL)),
    "cadence_unit": ("cadence", "village", "unit_county", lambda conn, d: m._cadence_rows(conn, d, m.ALL)),
    "cap": ("cap", "unit", "unit", lambda conn, d: m._cap_rows(conn, d, m.ALL)),
    "replacements": ("replacements", "unit", "unit", lambda conn, d: m._replacement_rows(conn, d, m.ALL)),
}
YEAR_KIND = "ratings"
KIND_METRIC = {k: v[0] for k, v in DAY_KINDS.items()} | {YEAR_KIND: "ratings"}
KIND_BASIS = {k: v[1] for k, v in DAY_KINDS.items()} | {YEAR_KIND: "unit"}
KIND_GRAIN = {k: v[2] for k, v in DAY_KINDS.items()} | {YEAR_KIND: "unit"}
SLOTS = ("n1", "n2", "n3", "n4")
COARSE_REGION_LEVELS = ("province", "city", "county")


def stored_kind(conn: Connection, metric_kind: str, by: str, scope: m.Scope) -> str | None:
    """Which stored kind can answer (metric, grouping, scope) exactly; None when only the live path can.
    Household-based metrics are stored per village without the unit, and (cadence) per unit and
    county, which answers unit groupings and unit scopes down to county level."""
    if metric_kind == "cadence":
        if not scope.unit and by != "unit":
            return "cadence"
        if by in ("province", "city", "county", "unit") and _region_level(conn, scope.region) in (None, *COARSE_REGION_LEVELS):
            return "cadence_unit"
        return None
    return metric_kind


def _region_level(conn: Connection, code: str | None) -> str | None:
    if not code:
        return None
    return conn.execute(select(m.T_REG.c.level).where(m.T_REG.c.code == code)).scalar() or "unknown"


def default_dates(today: dt.date) -> list[dt.date]:
    """Today and the 11 month-ends before it: what the overview's tiles, deltas and trend ask for."""
    return last_month_ends(today, 12)


def default_years(conn: Connection, today: dt.date) -> list[int]:
    years = {y for (y,) in conn.execute(select(ratings.c.year).distinct())}
    years |= {today.year - 2, today.year - 1, today.year}
    return sorted(years)


def _store(conn: Connection, kind: str, as_of: dt.date, rows_select, stamp: str) -> None:
    metric = KIND_METRIC[kind]
    fields = m.METRIC_FIELDS[metric]
    rows = rows_select.subquery("rows")
    grain = KIND_GRAIN[kind]
    src = rows
    unit = rows.c.unit_id
    place = rows.c.village_code
    if grain == "village":
        unit = literal(None, String)
    elif grain == "unit_county":
        gr = m.T_REG.alias("gr")
        src = rows.join(gr, gr.c.code == rows.c.village_code)
        place = m.group_key(gr, "county")
    group = [place] if grain == "village" else [unit, place]
    sums = [func.sum(rows.c[f]) for f in fields] + [literal(0)] * (len(SLOTS) - len(fields))
    sel = select(literal(kind, String), literal(as_of, Date), unit, place, *sums).select_from(src).group_by(*group)
    conn.execute(
        metric_summary.insert().from_select(["kind", "as_of", "unit_id", "village_code", *SLOTS], sel)
    )
    conn.execute(summary_snapshots.insert().values(kind=kind, as_of=as_of, refreshed_at=stamp))


def clear(conn: Connection) -> None:
    conn.execute(summary_snapshots.delete())
    conn.execute(metric_summary.delete())


def refresh(conn: Connection, today: dt.date | None = None, dates: Iterable[dt.date] | None = None,
            years: Iterable[int] | None = None) -> dict[str, int]:
    """Recompute every summary inside the caller's transaction. Returns counts of what was stored."""
    today = today or dt.date.today()
    dates = sorted(set(dates if dates is not None else default_dates(today)))
    years = sorted(set(years if years is not None else default_years(conn, today)))
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    clear(conn)
    for d in dates:
        for kind, (_, _, _, build) in DAY_KINDS.items():
            _store(conn, kind, d, build(conn, d), stamp)
    for y in years:
        _store(conn, YEAR_KIND, dt.date(y, 12, 31), m._ratings_rows(conn, y, m.ALL), stamp)
    if conn.dialect.name == "postgresql":
        from sqlalchemy import text

        conn.execute(text("ANALYZE metric_summary"))
    n = conn.execute(select(func.count()).select_from(metric_summary)).scalar()
    return {"dates": len(dates), "years": len(years), "rows": int(n)}


def refresh_engine(engine: Engine, **kw) -> dict[str, int]:
    with engine.begin() as conn:
        return refresh(conn, **kw)


def available(conn: Connection, kind: str, as_of: dt.date) -> bool:
    q = select(summary_snapshots.c.kind).where(summary_snapshots.c.kind == kind, summary_snapshots.c.as_of == as_of)
    return conn.execute(q).first() is not None


def summary_rows(conn: Connection, kind: str, as_of: dt.date, scope: m.Scope):
    """The stored rows of (kind, date) as a fact-row subquery (village_code, unit_id and the metric's
    fields), filtered to the scope the way the live rows are; None when no summary is stored."""
    if not available(conn, kind, as_of):
        return None
    s = metric_summary.alias("s")
    fields = m.METRIC_FIELDS[KIND_METRIC[kind]]
    q = select(
        s.c.village_code, s.c.unit_id, *[s.c[slot].label(f) for slot, f in zip(SLOTS, fields)]
    ).where(s.c.kind == kind, s.c.as_of == as_of)
    if scope.unit:
        q = q.where(s.c.unit_id == scope.unit)
    if scope.region:
        if KIND_BASIS[kind] == "village":
            r = m.T_REG.alias("sr")
            q = q.join_from(s, r, r.c.code == s.c.village_code).where(m._region_filter(conn, r, scope.region))
        else:
            u, ur = m.T_UNIT.alias("su"), m.T_REG.alias("sur")
            q = q.join_from(s, u, u.c.unit_id == s.c.unit_id).join(ur, ur.c.code == u.c.region_code).where(
                m._region_filter(conn, ur, scope.region))
    return q.subquery("rows")


def status(engine: Engine) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(
            select(summary_snapshots.c.kind, func.min(summary_snapshots.c.as_of), func.max(summary_snapshots.c.as_of),
                   func.count(), func.max(summary_snapshots.c.refreshed_at)).group_by(summary_snapshots.c.kind)
        ).all()
    return {k: {"first": a, "last": b, "dates": n, "refreshed_at": t} for k, a, b, n, t in rows}


