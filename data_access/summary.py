"""Precomputed metric summaries: the metrics' own fact rows, summed and stored for the summary dates
(today, and the month-ends before it) and per rating year, so that a page reads a handful of rows
instead of scanning pairings and visits.

Every stored kind has a *base grain* — what one summed row stands for — and roll-ups of that base to
coarser grains, so that a question is answered from the coarsest rows that can answer it exactly:

- household-based kinds (coverage, cadence, photos, gaps) are stored per village and rolled up to
  county, city and province (the household's region at that level, ``rules.group_key``);
- helper-based kinds (cap, replacements, ratings) are stored per unit and rolled up to the unit's
  region at county, city and province level (the unit's own region where it sits above the level:
  exactly how ``metrics._aggregate`` groups them, so the 省直/市直 rows come out the same);
- unit-scoped kinds (coverage_assigned per unit x village, cadence_unit per unit x county) are also
  summed per unit ("unit_all") for the unit rankings.

Besides the counts, the refresh stores for its *today* the per-pairing cadence facts
(``pairing_status``) and per-helper loads (``helper_status``) the problem lists read, the gap
distribution ("gaps") and, per calendar month, the in-home visits and photos ("photos").

The figures are those of the live path by construction: a summary row is the sum of the very fact
rows (rules._*_rows) the live path aggregates, and both paths are aggregated by the same
metrics._aggregate. tests/test_summary.py checks the two agree on every grouping and scope. A metric declared
in the registry with fact rows of its own (registry.generic) is stored the same way for every summary date.

This is the store layer: it reads rules.py and registry.py, never the query above it (metrics.py, which reads
the rows stored here); besides writing, it answers what is stored (stored_rows, stored_before, spans_on).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Iterable

from sqlalchemy import Column, Date, Integer, MetaData, String, Table, and_, case, func, literal, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ColumnElement
from sqlalchemy.types import NullType

from . import registry, rules, schema
from . import settings
from .scope import ALL, Scope
from .dates import last_month_ends, month_end, previous_month_end
from .schema import (LEVEL_RANK, helper_status, metric_summary, overdue_spans, pairing_status, rating_missing, ratings,
                     summary_snapshots, uncovered_status)

log = logging.getLogger("bangfu.summary")

# The version of the rules (RULES.md as implemented by rules.py) that stored summaries were computed with.
# Raise it whenever a change can alter a stored figure: readers then use only rows of the current version
# (older ones count as not stored, so pages compute live), and `bangfu db upgrade`, `bangfu refresh` and the
# running service (ensure_current) recompute every stored date.
#   1: first stamped version (photo months cut at each stored date, issue 11 item 5)
RULES_VERSION = 1
REGION_ROLLUPS = ("province", "city", "county")  # coarsest first

# kind -> (metric whose fields it stores, basis of its base rows, base grain, roll-up grains)
KINDS = {
    "coverage": ("coverage", "village", "village", REGION_ROLLUPS),
    "coverage_assigned": ("coverage", "village", "unit_village", ("unit_all",)),
    "cadence": ("cadence", "village", "village", REGION_ROLLUPS),
    "cadence_unit": ("cadence", "village", "unit_county", ("unit_all",)),
    "cap": ("cap", "unit", "unit", REGION_ROLLUPS),
    "replacements": ("replacements", "unit", "unit", REGION_ROLLUPS),
    "ratings": ("ratings", "unit", "unit", REGION_ROLLUPS),
    "photos": ("photos", "village", "village", REGION_ROLLUPS),
    "gaps": ("gaps", "village", "village", REGION_ROLLUPS),
}
DAY_KINDS = ("coverage", "coverage_assigned", "cadence", "cadence_unit", "cap", "replacements")
SLOTS = ("n1", "n2", "n3", "n4")
GAP_FIELDS = ["on_time", "overdue"]
# gap distribution: days since the reference date in 15-day buckets, 180 days and more in the last
GAP_BIN, GAP_CAP = 15, 180


def gap_bucket(gap_days) -> ColumnElement:
    """The gap distribution's bucket of a gap in days: 15-day buckets, 180 days and more in the last."""
    return case((gap_days >= GAP_CAP, GAP_CAP // GAP_BIN), else_=gap_days // GAP_BIN)


def kind_spec(kind: str) -> tuple:
    """KINDS[kind], or for a metric declared in the registry with its own fact rows (registry.generic): its
    rows summed per village or per unit, rolled up to county, city and province."""
    if kind in KINDS:
        return KINDS[kind]
    metric = registry.metric(kind)
    if metric.rows is None:
        raise ValueError(f"metric '{kind}' is not stored")
    return kind, metric.basis, "village" if metric.basis == "village" else "unit", REGION_ROLLUPS


def day_kinds() -> tuple[str, ...]:
    """The kinds stored for every summary date: the six rules' and the registry's generic metrics'."""
    return DAY_KINDS + tuple(m.name for m in registry.generic())


def fields_of(kind: str) -> list[str]:
    metric = kind_spec(kind)[0]
    return GAP_FIELDS if metric == "gaps" else registry.fields(metric)


# ------------------------------------------------------------------------------------------ reading


def _region_level(conn: Connection, code: str | None) -> str | None:
    if not code:
        return None
    return rules.region_level(conn, code) or "unknown"


def choose(conn: Connection, metric_kind: str, by: str, scope: Scope) -> tuple[str, str] | None:
    """(stored kind, grain) whose rows answer (metric, grouping, scope) exactly; None when only the
    live path can."""
    level = _region_level(conn, scope.region)
    if level == "unknown":
        return None
    kind = metric_kind
    if metric_kind == "cadence" and (scope.unit or by == "unit"):
        if by not in ("province", "city", "county", "unit") or level not in (None, *REGION_ROLLUPS):
            return None
        kind = "cadence_unit"
    _, _, base, rollups = kind_spec(kind)
    if base in ("unit_village", "unit_county"):
        return kind, ("unit_all" if by == "unit" and not scope.region else base)
    if scope.unit or by == "unit":
        return kind, base
    need = max(LEVEL_RANK[by], LEVEL_RANK.get(level, 0))
    for g in rollups:
        if LEVEL_RANK[g] >= need:
            return kind, g
    return kind, base


def stored_dates(conn: Connection, kind: str, dates: Iterable[dt.date]) -> set[dt.date]:
    dates = list(dates)
    q = select(summary_snapshots.c.as_of).where(summary_snapshots.c.kind == kind, summary_snapshots.c.as_of.in_(dates),
                                                summary_snapshots.c.rules_version == RULES_VERSION)
    return {d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for (d,) in conn.execute(q)}


def available(conn: Connection, kind: str, as_of: dt.date) -> bool:
    return bool(stored_dates(conn, kind, [as_of]))


# --- a date between stored ones: the stored date before it, corrected by what changed in between (metrics.py)
# Coverage and load change only where a pairing starts or ends: a household's (a helper's) fact row on D equals
# its row on the stored date S < D unless one of its pairings has start_date or end_date in (S, D]. So the
# fact rows of D are S's stored base rows, minus S's rows of those households (helpers), plus their rows on D.
DELTA_MAX_DAYS = 62


def stored_before(conn: Connection, kind: str, as_of: dt.date) -> dt.date | None:
    """The latest date before as_of (at most DELTA_MAX_DAYS) whose ``kind`` summary is stored for the current
    rules, or None."""
    ss = schema.summary_snapshots
    d = conn.execute(select(func.max(ss.c.as_of)).where(
        ss.c.kind == kind, ss.c.as_of < as_of, ss.c.as_of >= as_of - dt.timedelta(days=DELTA_MAX_DAYS),
        ss.c.rules_version == RULES_VERSION)).scalar()
    return None if d is None else d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))


def spans_on(conn: Connection, as_of: dt.date, scope: Scope, helpers=None):
    """The overdue pairings of a date read from the stored spans: a select of pairing_id, helper_id,
    household_id, unit_id, village_code, start_date, last_visit, gap_days, interval_months, is_overdue (1),
    within the scope (the household's region, the helper's unit) and, given ``helpers`` (a select of
    helper ids), only theirs."""
    parts = []
    for open_ in (False, True):  # two index ranges: closed pieces starting in (D - rules.SPAN_CHUNK, D], open spans
        s = schema.overdue_spans.alias("os_open" if open_ else "os")
        q = select(s.c.pairing_id, s.c.helper_id, s.c.household_id, s.c.unit_id, s.c.village_code, s.c.start_date,
                   s.c.last_visit, rules.days_between(conn, as_of, s.c.ref_date).label("gap_days"), s.c.interval_months,
                   literal(1).label("is_overdue"))
        if open_:
            q = q.where(s.c.overdue_to == rules.SPAN_OPEN, s.c.overdue_from <= as_of)
        else:
            q = q.where(s.c.overdue_from > as_of - dt.timedelta(days=rules.SPAN_CHUNK), s.c.overdue_from <= as_of,
                        s.c.overdue_to > as_of, s.c.overdue_to != rules.SPAN_OPEN)
        if scope.unit:
            q = q.where(s.c.unit_id == scope.unit)
        if scope.region:
            r = rules.T_REG.alias("os_open_r" if open_ else "os_r")
            q = q.join_from(s, r, r.c.code == s.c.village_code).where(rules._region_filter(conn, r, scope.region))
        if helpers is not None:
            q = q.where(s.c.helper_id.in_(helpers))
        parts.append(q)
    return parts[0].union_all(parts[1])


def spans_stored(conn: Connection) -> bool:
    """Are overdue spans of the current ledger and rules stored (a refresh wrote them)?"""
    ss = schema.summary_snapshots
    return conn.execute(select(ss.c.as_of).where(ss.c.kind == "spans", ss.c.rules_version == RULES_VERSION)
                        .limit(1)).first() is not None


def cadence_span_rows(conn: Connection, as_of: dt.date, scope: Scope):
    """M3 fact rows from the stored spans: one row per active in-scope pairing (active_pairings=1,
    overdue=0) and one per overdue span containing the date (active_pairings=0, overdue=1). A pairing has
    at most one span on a day, and only while it is active, so the sums are those of ``_cadence_rows``."""
    a = rules.active_pairing_rows(conn, as_of, scope).subquery("act")
    o = spans_on(conn, as_of, scope).subquery("ovd")
    return select(a.c.village_code, a.c.unit_id, literal(1).label("active_pairings"), literal(0).label("overdue")
                  ).union_all(select(o.c.village_code, o.c.unit_id, literal(0), literal(1)))



def _select_rows(conn: Connection, kind: str, grain: str, dates: list[dt.date], scope: Scope, with_date: bool = False,
                 with_bucket: bool = False):
    """The stored rows of (kind, grain) on the dates as a fact-row select (village_code, unit_id and
    the kind's fields), filtered to the scope the way the live rows are."""
    s = metric_summary.alias("s")
    cols = [s.c.village_code, s.c.unit_id, *[s.c[slot].label(f) for slot, f in zip(SLOTS, fields_of(kind))]]
    if with_date:
        cols.insert(0, s.c.as_of)
    if with_bucket:
        cols.insert(0, s.c.bucket)
    q = select(*cols).where(s.c.kind == kind, s.c.grain == grain,
                            s.c.as_of.in_(dates) if len(dates) > 1 else s.c.as_of == dates[0])
    if scope.unit:
        q = q.where(s.c.unit_id == scope.unit)
    if scope.region:
        if grain == "unit":  # helper-based base rows: the unit's region
            u, ur = rules.T_UNIT.alias("su"), rules.T_REG.alias("sur")
            q = q.join_from(s, u, u.c.unit_id == s.c.unit_id).join(ur, ur.c.code == u.c.region_code).where(
                rules._region_filter(conn, ur, scope.region))
        else:  # a village, county, city or province code (a roll-up's group)
            r = rules.T_REG.alias("sr")
            q = q.join_from(s, r, r.c.code == s.c.village_code).where(rules._region_filter(conn, r, scope.region))
    return q


def stored_rows(conn: Connection, metric_kind: str, by: str, scope: Scope, dates: list[dt.date]):
    """(rows subquery, basis) from the summaries for (metric, grouping, scope) on the dates, or None
    when a date is not stored or the question is finer than the stored grains."""
    pick = choose(conn, metric_kind, by, scope)
    if pick is None:
        return None
    kind, grain = pick
    if stored_dates(conn, kind, dates) != set(dates):
        return None
    basis = "unit" if grain == "unit" else "village"
    if grain == "unit_all" or (grain in ("unit_village", "unit_county") and by == "unit"):
        basis = "unit"
    return _select_rows(conn, kind, grain, list(dates), scope).subquery("rows"), basis


def totals_by_date(conn: Connection, metric_kind: str, scope: Scope, dates: list[dt.date]) -> dict[dt.date, dict]:
    """Province-level totals of a metric on each stored date (one query for all of them): the
    trend's points. Dates without a stored summary are left out."""
    pick = choose(conn, metric_kind, "province", scope)
    if pick is None:
        return {}
    kind, grain = pick
    have = sorted(stored_dates(conn, kind, dates))
    if not have:
        return {}
    fields = fields_of(kind)
    rows = _select_rows(conn, kind, grain, have, scope, with_date=True).subquery("rows")
    q = select(rows.c.as_of, *[func.sum(rows.c[f]) for f in fields]).group_by(rows.c.as_of)
    out = {d: {f: 0 for f in fields} for d in have}
    for r in conn.execute(q):
        d = r[0] if isinstance(r[0], dt.date) else dt.date.fromisoformat(str(r[0]))
        out[d] = {f: int(x or 0) for f, x in zip(fields, r[1:])}
    return out


def photo_pieces(conn: Connection, start: dt.date, end: dt.date, by: str, scope: Scope):
    """Split start..end into calendar-month pieces answered by the stored "photos" summaries (a month
    from its first day up to a stored date) and the day ranges left for the live count.
    Returns (selects of stored fact rows, [(first, last) live ranges])."""
    pick = choose(conn, "photos", by, scope)
    if start > end or pick is None:
        return [], [(start, end)]
    kind, grain = pick
    pieces = []
    cur = start
    while cur <= end:
        last = min(end, month_end(cur.year, cur.month))
        pieces.append((cur, last))
        cur = last + dt.timedelta(days=1)
    candidates = [b for a, b in pieces if a.day == 1]
    have = stored_dates(conn, kind, candidates) if candidates else set()
    stored, live = [], []
    for a, b in pieces:
        if a.day == 1 and b in have:
            stored.append(b)
        elif live and live[-1][1] + dt.timedelta(days=1) == a:
            live[-1] = (live[-1][0], b)
        else:
            live.append((a, b))
    selects = [_select_rows(conn, kind, grain, stored, scope)] if stored else []
    return selects, live


def gap_counts(conn: Connection, as_of: dt.date, scope: Scope):
    """The stored gap distribution for (date, scope): DataFrame rows (bucket, on_time, overdue), or
    None when it is not stored or the scope is finer than the stored grains."""
    pick = None if scope.unit else choose(conn, "gaps", "province", scope)  # stored without the unit
    if pick is None or not available(conn, "gaps", as_of):
        return None
    kind, grain = pick
    rows = _select_rows(conn, kind, grain, [as_of], scope, with_bucket=True).subquery("rows")
    q = select(rows.c.bucket, func.sum(rows.c.on_time), func.sum(rows.c.overdue)).group_by(rows.c.bucket)
    return [(int(b), int(a or 0), int(o or 0)) for b, a, o in conn.execute(q)]


def status_date(conn: Connection, as_of: dt.date) -> bool:
    """Is the per-pairing / per-helper status stored for this date?"""
    return available(conn, "status", as_of)


# ------------------------------------------------------------------------------------------ writing


def default_dates(today: dt.date) -> list[dt.date]:
    """Today and the 23 month-ends before it: the tiles, month-on-month deltas and 12-month trend of
    today and of any as-of date in the last year read stored figures for every month-end."""
    return last_month_ends(today, 24)


def status_days_of(today: dt.date) -> tuple[dt.date, dt.date]:
    """The dates besides today whose per-pairing / per-helper status the refresh stores: the last month-end
    (every monthly meeting's date) and the last year-end (the ratings page's check date)."""
    return previous_month_end(today), dt.date(today.year - 1, 12, 31)


def default_years(conn: Connection, today: dt.date) -> list[int]:
    years = {y for (y,) in conn.execute(select(ratings.c.year).distinct())}
    years |= {today.year - 2, today.year - 1, today.year}
    return sorted(years)


def _insert(conn: Connection, kind: str, grain: str, as_of, sel_cols, group, src, bucket=None) -> None:
    """INSERT INTO metric_summary SELECT kind, grain, as_of, unit, place, bucket, sums … GROUP BY …"""
    unit, place, sums = sel_cols
    sums = list(sums) + [literal(0)] * (len(SLOTS) - len(sums))
    b = bucket if bucket is not None else literal(None, Integer)
    sel = select(literal(kind, String), literal(grain, String), as_of, unit, place, b, *sums).select_from(src)
    if group:
        sel = sel.group_by(*group)
    conn.execute(metric_summary.insert().from_select(
        ["kind", "grain", "as_of", "unit_id", "village_code", "bucket", *SLOTS], sel))


def _store_base(conn: Connection, kind: str, as_of: dt.date, rows_select, bucket_col: str | None = None) -> None:
    """Sum fact rows (village_code, unit_id, fields…) into the kind's base grain."""
    fields = fields_of(kind)
    rows = rows_select.subquery("rows")
    grain = kind_spec(kind)[2]
    src, unit, place = rows, rows.c.unit_id, rows.c.village_code
    if grain == "village":
        unit = literal(None, String)
    elif grain == "unit":
        place = literal(None, String)
    elif grain == "unit_county":
        gr = rules.T_REG.alias("gr")
        src = rows.join(gr, gr.c.code == rows.c.village_code)
        place = rules.group_key(gr, "county")
    bucket = rows.c[bucket_col] if bucket_col else None
    group = [c for c, keep in ((unit, grain != "village"), (place, grain != "unit")) if keep]
    if bucket is not None:
        group.append(bucket)
    _insert(conn, kind, grain, literal(as_of, Date), (unit, place, [func.sum(rows.c[f]) for f in fields]), group, src,
            bucket)


def _store_rollups(conn: Connection, kind: str, dates: list[dt.date] | None = None) -> None:
    """Sum the base rows of a kind (on the given dates, or all stored) into each roll-up grain:
    one statement per grain for all the dates."""
    _, basis, base, rollups = kind_spec(kind)
    s = metric_summary.alias("b")
    sums = [func.sum(s.c[slot]) for slot in SLOTS]
    where = [s.c.kind == kind, s.c.grain == base]
    if dates is not None:
        where.append(s.c.as_of.in_(dates))
    for g in rollups:
        if g == "unit_all":
            src, unit, key = s, s.c.unit_id, literal(None, String)
            group = [s.c.as_of, s.c.unit_id, s.c.bucket]
        elif basis == "unit":
            u, ur = rules.T_UNIT.alias("ru"), rules.T_REG.alias("rur")
            src = s.join(u, u.c.unit_id == s.c.unit_id).join(ur, ur.c.code == u.c.region_code)
            unit, key = literal(None, String), rules.group_key(ur, g)
            group = [s.c.as_of, key, s.c.bucket]
        else:
            gr = rules.T_REG.alias("rgr")
            src = s.join(gr, gr.c.code == s.c.village_code)
            unit, key = literal(None, String), rules.group_key(gr, g)
            group = [s.c.as_of, key, s.c.bucket]
        sel = (
            select(literal(kind, String), literal(g, String), s.c.as_of, unit, key, s.c.bucket, *sums)
            .select_from(src).where(*where).group_by(*group)
            # a date's rows together on disk: a page reading one date's 6,000 unit rows touches few pages
            .order_by(s.c.as_of)
        )
        conn.execute(metric_summary.insert().from_select(
            ["kind", "grain", "as_of", "unit_id", "village_code", "bucket", *SLOTS], sel))


def _mark(conn: Connection, kind: str, as_of: dt.date, stamp: str) -> None:
    conn.execute(summary_snapshots.insert().values(kind=kind, as_of=as_of, refreshed_at=stamp,
                                                   rules_version=RULES_VERSION))


def _store(conn: Connection, kind: str, as_of: dt.date, rows_select, stamp: str, bucket_col: str | None = None) -> None:
    """Store the base rows of (kind, date); the roll-ups follow for all dates at once (_store_rollups)."""
    _store_base(conn, kind, as_of, rows_select, bucket_col)
    _mark(conn, kind, as_of, stamp)


def _temp(conn: Connection, name: str, sel) -> Table:
    """A temporary table holding the rows of a select (dropped at the end of the refresh)."""
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    cols = [Column(c.name, Integer if isinstance(c.type, NullType) else c.type) for c in sel.selected_columns]
    t = Table(name, MetaData(), *cols, prefixes=["TEMPORARY"])
    t.create(conn)
    conn.execute(t.insert().from_select([c.name for c in sel.selected_columns], sel))
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {name}"))
    return t


def _last_visit_table(conn: Connection, dates: list[dt.date]) -> Table:
    """The latest in-home visit on or before each date per (household, helper), made in one pass over
    the visits (column last_<i> for dates[i])."""
    v = rules.T_VIS.alias("v")
    sel = (
        select(v.c.household_id, v.c.helper_id,
               *[func.max(v.c.visit_date).filter(v.c.visit_date <= d).label(f"last_{i}") for i, d in enumerate(dates)])
        .where(v.c.mode == "in_home", v.c.visit_date <= max(dates))
        .group_by(v.c.household_id, v.c.helper_id)
    )
    t = _temp(conn, "tmp_last_visit", sel)
    if conn.dialect.name != "postgresql":
        conn.execute(text("CREATE INDEX tmp_last_visit_ix ON tmp_last_visit (household_id, helper_id)"))
    return t


def _store_coverage_replacements(conn: Connection, dates: list[dt.date], stamp: str) -> None:
    """Coverage (region and assigned-village mode) and replacements of every date from one pass each
    (rules.household_coverage_on, rules.assigned_coverage_on, rules.replacements_on) summed per
    village / unit × village / unit into temporary tables."""
    t0 = time.perf_counter()
    hc = rules.household_coverage_on(conn, dates, ALL).subquery("hc")
    sums = [func.count().label("households")]
    for i in range(len(dates)):
        sums += [func.sum(hc.c[f"covered_{i}"]).label(f"covered_{i}"), func.sum(hc.c[f"weak_{i}"]).label(f"weak_{i}")]
    cov = _temp(conn, "tmp_coverage", select(hc.c.village_code, *sums).group_by(hc.c.village_code))
    log.info("coverage of every household on %d dates: %.1f s", len(dates), time.perf_counter() - t0)
    t0 = time.perf_counter()
    rp = rules.replacements_on(conn, dates, ALL).subquery("rp")
    sums = []
    for i in range(len(dates)):
        sums += [func.sum(rp.c[f"replacements_{i}"]).label(f"replacements_{i}"),
                 func.sum(rp.c[f"unapproved_{i}"]).label(f"unapproved_{i}")]
    rep = _temp(conn, "tmp_replacements", select(rp.c.unit_id, *sums).group_by(rp.c.unit_id))
    log.info("replacements on %d dates: %.1f s", len(dates), time.perf_counter() - t0)
    t0 = time.perf_counter()
    ac = rules.assigned_coverage_on(conn, dates, ALL).subquery("ac")
    sums = []
    for i in range(len(dates)):
        sums += [func.sum(ac.c[f"{f}_{i}"]).label(f"{f}_{i}") for f in ("on", "covered", "weak")]
    asg = _temp(conn, "tmp_assigned", select(ac.c.unit_id, ac.c.village_code, *sums)
                .group_by(ac.c.unit_id, ac.c.village_code))
    log.info("assigned-village coverage on %d dates: %.1f s", len(dates), time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i, d in enumerate(dates):
        _store(conn, "coverage", d, select(cov.c.village_code, literal(None, String).label("unit_id"), cov.c.households,
                                           cov.c[f"covered_{i}"].label("covered"), cov.c[f"weak_{i}"].label("weak")),
               stamp)
        _store(conn, "replacements", d, select(literal(None, String).label("village_code"), rep.c.unit_id,
                                               rep.c[f"replacements_{i}"].label("replacements"),
                                               rep.c[f"unapproved_{i}"].label("unapproved"))
               .where(rep.c[f"replacements_{i}"] > 0), stamp)
        _store(conn, "coverage_assigned", d, select(asg.c.village_code, asg.c.unit_id,
                                                    asg.c[f"on_{i}"].label("households"),
                                                    asg.c[f"covered_{i}"].label("covered"),
                                                    asg.c[f"weak_{i}"].label("weak")).where(asg.c[f"on_{i}"] > 0),
               stamp)
    log.info("coverage and replacements of %d dates stored: %.1f s", len(dates), time.perf_counter() - t0)
    for name in ("tmp_coverage", "tmp_replacements", "tmp_assigned"):
        conn.execute(text(f"DROP TABLE {name}"))


def _store_days(conn: Connection, dates: list[dt.date], status_days: list[dt.date], stamp: str) -> None:
    """Cadence and cap of every date from one pass each: the pairings with each date's last visit
    (rules.pairing_dates) and every date's helper loads (rules.helper_loads_on) are computed once
    into temporary tables; each date's facts are then read from those. On the status_days also the
    per-pairing and per-helper status and the gap distribution."""
    t0 = time.perf_counter()
    lv = _last_visit_table(conn, dates)
    pd_ = _temp(conn, "tmp_pairing_dates", rules.pairing_dates(conn, dates, ALL, lv))
    log.info("pairings with the last visit on %d dates: %.1f s", len(dates), time.perf_counter() - t0)
    t0 = time.perf_counter()
    sums = []
    for i, d in enumerate(dates):
        act = rules.active_on(pd_, d)
        sums += [func.sum(case((act, 1), else_=0)).label(f"a_{i}"),
                 func.sum(case((and_(act, rules.overdue_on(pd_, i, d)), 1), else_=0)).label(f"o_{i}")]
    # the two base grains of the cadence kinds, for every date at once
    gr = rules.T_REG.alias("gr")
    county = rules.group_key(gr, "county")
    cad_v = _temp(conn, "tmp_cadence_village", select(pd_.c.village_code, *sums).group_by(pd_.c.village_code))
    cad_u = _temp(conn, "tmp_cadence_unit", select(pd_.c.unit_id, county.label("village_code"), *sums)
                  .select_from(pd_.join(gr, gr.c.code == pd_.c.village_code)).group_by(pd_.c.unit_id, county))
    loads = _temp(conn, "tmp_loads", rules.helper_loads_on(dates).element)
    log.info("cadence and loads grouped: %.1f s", time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i, d in enumerate(dates):
        for kind, cad in (("cadence", cad_v), ("cadence_unit", cad_u)):
            unit = cad.c.unit_id if "unit_id" in cad.c else literal(None, String).label("unit_id")
            facts = select(cad.c.village_code, unit, cad.c[f"a_{i}"].label("active_pairings"),
                           cad.c[f"o_{i}"].label("overdue")).where(cad.c[f"a_{i}"] > 0)
            _store(conn, kind, d, facts, stamp)
        day_loads = select(loads.c.helper_id, loads.c[f"load_{i}"].label("load")).where(
            loads.c[f"load_{i}"] > 0).subquery("day_loads")
        _store(conn, "cap", d, rules._cap_rows(conn, d, ALL, day_loads), stamp)
    log.info("cadence and cap of %d dates stored: %.1f s", len(dates), time.perf_counter() - t0)
    for status_day in status_days:
        t0 = time.perf_counter()
        i = dates.index(status_day)
        ref = rules.reference_date(pd_.c[f"last_{i}"], pd_.c.start_date)
        cols = ["as_of", "pairing_id", "helper_id", "household_id", "unit_id", "village_code", "start_date",
                "last_visit", "gap_days", "interval_months", "overdue"]
        sel = select(literal(status_day, Date), pd_.c.pairing_id, pd_.c.helper_id, pd_.c.household_id, pd_.c.unit_id,
                     pd_.c.village_code, pd_.c.start_date, pd_.c[f"last_{i}"], rules.days_between(conn, status_day, ref),
                     pd_.c.interval_months, case((rules.overdue_on(pd_, i, status_day), 1), else_=0)
                     ).where(rules.active_on(pd_, status_day))
        conn.execute(pairing_status.insert().from_select(cols, sel))
        log.info("pairing status of %s: %.1f s", status_day, time.perf_counter() - t0)
        # the gap distribution and each helper's overdue pairings: the same rows, read from the temporary
        # table they were made from (not from the freshly written, unanalysed pairing_status)
        st = select(*[c.label(n) for c, n in zip(sel.selected_columns, cols)]).where(rules.active_on(pd_, status_day))
        st = st.subquery("st")
        bucket = gap_bucket(st.c.gap_days)
        gaps = select(st.c.village_code, st.c.unit_id, bucket.label("bucket"),
                      (1 - st.c.overdue).label("on_time"), st.c.overdue.label("overdue"))
        _store(conn, "gaps", status_day, gaps, stamp, bucket_col="bucket")
        log.info("gaps of %s: %.1f s", status_day, time.perf_counter() - t0)
        h = rules.T_HELP.alias("sh")
        # a helper with an overdue pairing has a load (both count the active pairings with in-scope households)
        over = (select(st.c.helper_id, func.sum(st.c.overdue).label("overdue"))
                .group_by(st.c.helper_id).subquery("over"))
        conn.execute(helper_status.insert().from_select(
            ["as_of", "helper_id", "unit_id", "load", "overdue"],
            select(literal(status_day, Date), loads.c.helper_id, h.c.unit_id, loads.c[f"load_{i}"],
                   func.coalesce(over.c.overdue, 0))
            .select_from(loads.join(h, h.c.helper_id == loads.c.helper_id)
                         .outerjoin(over, over.c.helper_id == loads.c.helper_id))
            .where(loads.c[f"load_{i}"] > 0)))
        log.info("gaps and helper status of %s: %.1f s", status_day, time.perf_counter() - t0)
        un = rules.uncovered_rows(status_day).subquery("un")
        conn.execute(uncovered_status.insert().from_select(
            ["as_of", "household_id", "village_code"],
            select(literal(status_day, Date), un.c.household_id, un.c.village_code)))
        _mark(conn, "status", status_day, stamp)
        log.info("status of %s stored: %.1f s", status_day, time.perf_counter() - t0)
    for name in ("tmp_last_visit", "tmp_pairing_dates", "tmp_cadence_village", "tmp_cadence_unit", "tmp_loads"):
        conn.execute(text(f"DROP TABLE {name}"))


def _month_key(conn: Connection, col):
    """'YYYY-MM' of a date column on either database."""
    if conn.dialect.name == "postgresql":
        return func.to_char(col, "YYYY-MM", type_=String)
    return func.substr(col, 1, 7, type_=String)


def _store_photos(conn: Connection, dates: list[dt.date], stamp: str) -> None:
    """Per summary date S, the in-home visits and photos of S's calendar month up to S: one pass over
    the visits of the months, grouped by month, *segment* and village (rules._photo_rows' facts).
    A visit's segment is the first summary date on or after it, so that when two summary dates fall in
    one month the earlier one counts only the visits up to itself: S sums its month's segments <= S."""
    dates = sorted(dates)
    first = min(d.replace(day=1) for d in dates)
    rows = rules._photo_rows(conn, first, max(dates), ALL).subquery("pr")
    month = _month_key(conn, rows.c.visit_date)
    segment = case(*[(rows.c.visit_date <= d, literal(i)) for i, d in enumerate(dates)], else_=literal(len(dates)))
    pm = _temp(conn, "tmp_photo_months", select(
        month.label("month"), segment.label("segment"), rows.c.village_code,
        func.sum(rows.c.in_home_visits).label("in_home_visits"),
        func.sum(rows.c.with_photo).label("with_photo")).group_by(month, segment, rows.c.village_code))
    for i, d in enumerate(dates):
        part = (select(pm.c.village_code, func.sum(pm.c.in_home_visits).label("in_home_visits"),
                       func.sum(pm.c.with_photo).label("with_photo"))
                .where(pm.c.month == f"{d.year:04d}-{d.month:02d}", pm.c.segment <= i)
                .group_by(pm.c.village_code).subquery("part"))
        _store(conn, "photos", d, select(part.c.village_code, literal(None, String).label("unit_id"),
                                         part.c.in_home_visits, part.c.with_photo), stamp)
    conn.execute(text("DROP TABLE tmp_photo_months"))


def clear(conn: Connection, keep: Iterable[dt.date] = (), keep_status: Iterable[dt.date] | None = None) -> None:
    """Drop stored summaries and statuses (all, or all but those of the dates in keep; with ``keep_status``, the
    per-pairing / per-helper status and gap distribution only of those of its dates that are in keep)."""
    keep = list(keep)
    if not keep:
        for t in (summary_snapshots, metric_summary, pairing_status, helper_status, uncovered_status, rating_missing,
                  overdue_spans):
            conn.execute(t.delete())
        return
    # the rating years and the overdue spans (a function of the ledger alone) are refresh()'s to keep or redo
    conn.execute(summary_snapshots.delete().where(summary_snapshots.c.as_of.not_in(keep),
                                                  summary_snapshots.c.kind.not_in(("ratings", "spans"))))
    conn.execute(metric_summary.delete().where(metric_summary.c.as_of.not_in(keep), metric_summary.c.kind != "ratings"))
    status = [d for d in keep if keep_status is None or d in set(keep_status)]
    for t in (pairing_status, helper_status, uncovered_status):
        conn.execute(t.delete().where(t.c.as_of.not_in(status)))
    if len(status) < len(keep):  # a status is a million rows a day at province scale: not one per stored month-end
        conn.execute(summary_snapshots.delete().where(summary_snapshots.c.as_of.not_in(status),
                                                      summary_snapshots.c.kind.in_(("status", "gaps"))))
        conn.execute(metric_summary.delete().where(metric_summary.c.as_of.not_in(status), metric_summary.c.kind == "gaps"))


def _store_spans(conn: Connection, today: dt.date, stamp: str, households: Table | None = None,
                 since: dt.date | None = None) -> int:
    """The overdue spans of every pairing (rules.overdue_span_rows) in place of the stored ones: rows
    deleted and inserted in the caller's transaction (no DDL on the table the pages read). ``households``
    (a table of household_id) and ``since`` (no visit before it changed): only the spans of those households'
    pairings from each one's last reference date before ``since`` on (rules.span_t0; the earlier ones stand)."""
    t0 = time.perf_counter()
    pairs = rules.span_pairings()
    if households is not None:
        pairs = pairs.where(pairs.selected_columns.household_id.in_(select(households.c.household_id)))
    sp = _temp(conn, "tmp_span_pairs", pairs)
    if conn.dialect.name != "postgresql":
        conn.execute(text("CREATE INDEX tmp_span_pairs_ix ON tmp_span_pairs (pairing_id)"))
    first = None
    if households is None:
        conn.execute(overdue_spans.delete())
    else:
        first = _temp(conn, "tmp_span_t0", rules.span_t0(sp, since))
        if conn.dialect.name != "postgresql":
            conn.execute(text("CREATE INDEX tmp_span_t0_ix ON tmp_span_t0 (pairing_id)"))
        o = overdue_spans
        conn.execute(o.delete().where(select(first.c.pairing_id).where(
            first.c.pairing_id == o.c.pairing_id, o.c.ref_date >= first.c.t0).exists()))
    conn.execute(summary_snapshots.delete().where(summary_snapshots.c.kind == "spans"))
    seg = _temp(conn, "tmp_span_segments", rules.span_segments(conn, sp, first))
    if conn.dialect.name != "postgresql":
        conn.execute(text("CREATE INDEX tmp_span_segments_ix ON tmp_span_segments (pairing_id)"))
    log.info("pairing reference dates: %.1f s", time.perf_counter() - t0)
    whole = _temp(conn, "tmp_spans", rules.overdue_span_rows(conn, sp, seg))
    log.info("overdue spans found: %.1f s", time.perf_counter() - t0)
    longest = conn.execute(select(func.max(rules.days_diff(conn, whole.c.overdue_to, whole.c.overdue_from))).where(
        whole.c.overdue_to != rules.SPAN_OPEN)).scalar() or 0
    chunks = _temp(conn, "tmp_span_chunks", select(literal(0).label("i")))
    n = int(longest) // rules.SPAN_CHUNK + 1
    if n > 1:
        conn.execute(chunks.insert(), [{"i": i} for i in range(1, n)])
    rows = rules.span_pieces(conn, whole, chunks)
    conn.execute(overdue_spans.insert().from_select([c.name for c in rows.selected_columns], rows))
    _mark(conn, "spans", today, stamp)
    for name in ("tmp_span_pairs", "tmp_span_segments", "tmp_spans", "tmp_span_chunks") + (
            ("tmp_span_t0",) if first is not None else ()):
        conn.execute(text(f"DROP TABLE {name}"))
    n = conn.execute(select(func.count()).select_from(overdue_spans)).scalar()
    log.info("overdue spans (%d): %.1f s", n, time.perf_counter() - t0)
    return int(n)


def refresh(conn: Connection, today: dt.date | None = None, dates: Iterable[dt.date] | None = None,
            years: Iterable[int] | None = None, only_missing: bool = False, since: dt.date | None = None,
            households: Iterable[str] | None = None) -> dict[str, int]:
    """Recompute the summaries inside the caller's transaction. Returns counts of what was stored.

    only_missing=True (the daily `bangfu refresh`): keep the stored month-ends before today — the
    ledger changes only through an import, which refreshes everything in its own transaction — and
    the stored rating years, and compute today, the missing dates and the missing rating years.

    since + households (an import that wrote visits and nothing else, ledger.ImportResult.only_visits): a
    visit on day V changes no figure of a date before V, no rating year, and no overdue span but those of
    its household's pairings — so keep every stored date before ``since`` (with its status) and the rating
    years, and rebuild only the spans of the households with a visit on or after ``since`` and of
    ``households`` (those an updated visit was moved away from). Falls back to everything when the stored summaries
    are not current (an older rules version, today missing) or no spans are stored."""
    today = today or settings.today()
    if since is not None and (needs_refresh(conn, today) or not spans_stored(conn)):
        since = households = None
    dates = sorted(set(dates if dates is not None else default_dates(today)))
    years = sorted(set(years if years is not None else default_years(conn, today)))
    stamp = settings.now().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))  # the status indexes of a full refresh
        # planner statistics of the ledger: an import calls this in its own transaction, before autovacuum
        # could see the new rows (without them a 12 M-visit import's refresh took nested-loop plans)
        conn.execute(text("ANALYZE regions, units, helpers, households, pairings, visits, ratings, assignments"))
    keep = []
    if only_missing or since is not None:
        have = stored_dates(conn, "cadence", dates)
        keep = [d for d in dates if d in have
                and (d < since if since is not None else d < today and d == month_end(d.year, d.month))
                and all(available(conn, k, d) for k in (*day_kinds(), "photos"))
                and (d not in status_days_of(today) or status_date(conn, d))]  # and their status (below)
    log.info("ledger statistics: %.1f s", time.perf_counter() - t0)
    t0 = time.perf_counter()
    # the statuses kept: the last month-end's and the last year-end's (the refresh below stores them where missing)
    clear(conn, keep, keep_status=status_days_of(today))
    log.info("cleared (kept %d dates): %.1f s", len(keep), time.perf_counter() - t0)
    todo = [d for d in dates if d not in keep]
    if todo:
        t0 = time.perf_counter()
        _store_coverage_replacements(conn, todo, stamp)
        log.info("coverage and replacements on %d dates: %.1f s", len(todo), time.perf_counter() - t0)
        # the per-pairing / per-helper status (problem lists, gap distribution, loads): for today, the last
        # month-end (the date of every monthly meeting: its lists and histogram stored, not computed live) and
        # the last year-end (the ratings page checks the year's excellent helpers against it)
        last_month, year_end = status_days_of(max(todo))
        # No DDL on the tables the pages read (DROP/CREATE INDEX, TRUNCATE, ALTER): it would take an
        # ACCESS EXCLUSIVE lock that every reader waits on until this transaction commits. Rows are
        # deleted and inserted under MVCC (SQLite: WAL), so readers keep the previous snapshot until commit.
        status_days = [max(todo)] + [d for d in dict.fromkeys((last_month, year_end)) if d in todo]
        _store_days(conn, todo, status_days, stamp)
        for metric in registry.generic():  # a declared metric's fact rows, date by date
            t0 = time.perf_counter()
            for d in todo:
                _store(conn, metric.name, d, metric.rows(conn, d, ALL), stamp)
            log.info("%s on %d dates: %.1f s", metric.name, len(todo), time.perf_counter() - t0)
        t0 = time.perf_counter()
        _store_photos(conn, todo, stamp)
        log.info("photo months: %.1f s", time.perf_counter() - t0)
        t0 = time.perf_counter()
        for kind in (*day_kinds(), "photos", "gaps"):
            _store_rollups(conn, kind, todo)
        log.info("roll-ups: %.1f s", time.perf_counter() - t0)
    t0 = time.perf_counter()
    # the rating years: all of them, or (only_missing, since) those not stored — visits change no rating
    if only_missing or since is not None:
        years = [y for y in years if not available(conn, "ratings", dt.date(y, 12, 31))]
    year_ends = [dt.date(y, 12, 31) for y in years]
    for t in (metric_summary, summary_snapshots):
        conn.execute(t.delete().where(t.c.kind == "ratings", t.c.as_of.in_(year_ends)))
    conn.execute(rating_missing.delete().where(rating_missing.c.year.in_(years)))
    for y in years:
        rows = _temp(conn, "tmp_ratings", rules._ratings_rows(conn, y, ALL))
        _store(conn, "ratings", dt.date(y, 12, 31), select(rows), stamp)
        # the helpers behind the year's "missing" count (views.missing_ratings reads them)
        conn.execute(rating_missing.insert().from_select(
            ["year", "helper_id"], select(literal(y, Integer), rows.c.helper_id).where(rows.c.missing == 1)))
        conn.execute(text("DROP TABLE tmp_ratings"))
    if years:
        _store_rollups(conn, "ratings", year_ends)
    log.info("ratings of %d years: %.1f s", len(years), time.perf_counter() - t0)
    # the overdue spans: rebuilt unless kept (only_missing: the ledger has not changed since they were written)
    if since is not None:
        # the households with a visit on or after ``since`` (every inserted visit's), and those an updated visit
        # was moved away from (``households``)
        v = rules.T_VIS
        touched = _temp(conn, "tmp_touched_households",
                        select(v.c.household_id).where(v.c.visit_date >= since).distinct())
        ids = sorted(set(households or ()))
        for i in range(0, len(ids), 5000):
            conn.execute(touched.insert(), [{"household_id": h} for h in ids[i:i + 5000]])
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE tmp_touched_households"))
        _store_spans(conn, today, stamp, households=touched, since=since)
        conn.execute(text("DROP TABLE tmp_touched_households"))
    elif not (only_missing and spans_stored(conn)):
        _store_spans(conn, today, stamp)
    t0 = time.perf_counter()
    # planner statistics of the freshly written tables (SQLite, without them, probes the stored loads
    # through the date index once per helper)
    for t in ("metric_summary", "pairing_status", "helper_status", "uncovered_status", "rating_missing",
              "overdue_spans"):
        conn.execute(text(f"ANALYZE {t}"))
    n = conn.execute(select(func.count()).select_from(metric_summary)).scalar()
    log.info("summary statistics and count: %.1f s", time.perf_counter() - t0)
    return {"dates": len(todo), "kept": len(keep), "years": len(years), "rows": int(n)}


STATUS_TABLES = ("metric_summary", "summary_snapshots", "pairing_status", "helper_status", "uncovered_status",
                 "rating_missing", "overdue_spans")


# one refresh at a time across processes and servers (PostgreSQL advisory lock key: "bangfu" in ASCII)
REFRESH_LOCK_KEY = 0x62616E676675


def lock_refresh(conn: Connection, wait: bool = True) -> bool:
    """Take the refresh lock for the caller's transaction: PostgreSQL's advisory transaction lock (released
    at commit or rollback), so that imports, `bangfu refresh` and every running dashboard process refresh
    one at a time. ``wait=False`` returns False at once when another holds it. SQLite serialises writers by
    its own database lock (see ensure_current for the try-lock between processes)."""
    if conn.dialect.name != "postgresql":
        return True
    fn = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    got = conn.execute(text(f"SELECT {fn}(:k)"), {"k": REFRESH_LOCK_KEY}).scalar()
    return True if wait else bool(got)


def refresh_engine(engine: Engine, **kw) -> dict[str, int]:
    with engine.begin() as conn:
        lock_refresh(conn)
        out = refresh(conn, **kw)
    tidy(engine)
    return out


def freshness(conn: Connection, as_of: dt.date) -> str | None:
    """When the stored figures of ``as_of`` were computed (ISO timestamp, Beijing time for stamps written
    since settings.now()), or None when that date is not stored for the current rules (pages compute live)."""
    q = select(summary_snapshots.c.refreshed_at).where(
        summary_snapshots.c.kind == "cadence", summary_snapshots.c.as_of == as_of,
        summary_snapshots.c.rules_version == RULES_VERSION)
    return conn.execute(q).scalar()


def needs_refresh(conn: Connection, today: dt.date) -> str | None:
    """What ensure_current would do: "rules" when stored summaries of an older RULES_VERSION exist (recompute
    everything), "today" when today's figures are not stored (the daily refresh), None when current."""
    stale = conn.execute(select(summary_snapshots.c.kind).where(
        summary_snapshots.c.rules_version != RULES_VERSION).limit(1)).first()
    if stale:
        return "rules"
    if not all(available(conn, k, today) for k in (*day_kinds(), "photos", "status")):
        return "today"
    return None


def _sqlite_try_lock(engine: Engine):
    """A non-blocking file lock beside a SQLite database file (None: in-memory or not lockable)."""
    import fcntl

    path = engine.url.database
    if not path or path == ":memory:":
        return None
    f = open(f"{path}.refresh-lock", "a")  # noqa: SIM115 - held until ensure_current releases it
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return False
    return f


def ensure_current(engine: Engine, today: dt.date | None = None) -> str | None:
    """Keep the stored summaries current by themselves: after midnight (Beijing) store the new day, after an
    upgrade that changed a rule recompute every stored date. Once across processes: PostgreSQL's advisory
    lock (a process that finds it taken leaves the work to the holder), a lock file beside a SQLite file.
    Returns what was done ("today", "rules"), "busy" when another process holds the lock, or None."""
    today = today or settings.today()
    with engine.connect() as conn:
        need = needs_refresh(conn, today)
    if need is None:
        return None
    flock = _sqlite_try_lock(engine) if engine.dialect.name == "sqlite" else None
    if flock is False:
        return "busy"
    try:
        with engine.begin() as conn:
            if not lock_refresh(conn, wait=False):
                return "busy"
            need = needs_refresh(conn, today)  # another process may have just done it
            if need is None:
                return None
            t0 = time.perf_counter()
            stats = refresh(conn, today=today, only_missing=need == "today")
            log.info("summaries brought current (%s) for %s: %s in %.1f s", need, today, stats, time.perf_counter() - t0)
        tidy(engine)
        return need
    finally:
        if flock:
            flock.close()


def tidy(engine: Engine) -> None:
    """PostgreSQL, after a refresh has committed: VACUUM the summary tables it rewrote, so that the pages
    read compact tables at once rather than after autovacuum's next round (a refresh replaces most rows)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in STATUS_TABLES:
            conn.execute(text(f"VACUUM (ANALYZE) {name}"))


def status(engine: Engine) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(
            select(summary_snapshots.c.kind, func.min(summary_snapshots.c.as_of), func.max(summary_snapshots.c.as_of),
                   func.count(), func.max(summary_snapshots.c.refreshed_at)).group_by(summary_snapshots.c.kind)
        ).all()
    return {k: {"first": a, "last": b, "dates": n, "refreshed_at": t} for k, a, b, n, t in rows}
