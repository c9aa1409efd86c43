"""Precomputed metric summaries: the metrics' own fact rows, summed and stored for the summary dates
(today, and the month-ends before it) and per rating year, so that a page reads a handful of rows
instead of scanning pairings and visits.

Every stored kind has a *base grain* — what one summed row stands for — and roll-ups of that base to
coarser grains, so that a question is answered from the coarsest rows that can answer it exactly:

- household-based kinds (coverage, cadence, photos, gaps) are stored per village and rolled up to
  county, city and province (the household's region at that level, ``metrics.group_key``);
- helper-based kinds (cap, replacements, ratings) are stored per unit and rolled up to the unit's
  region at county, city and province level (the unit's own region where it sits above the level:
  exactly how ``metrics._aggregate`` groups them, so the 省直/市直 rows come out the same);
- unit-scoped kinds (coverage_assigned per unit x village, cadence_unit per unit x county) are also
  summed per unit ("unit_all") for the unit rankings.

Besides the counts, the refresh stores for its *today* the per-pairing cadence facts
(``pairing_status``) and per-helper loads (``helper_status``) the problem lists read, the gap
distribution ("gaps") and, per calendar month, the in-home visits and photos ("photos").

The figures are those of the live path by construction: a summary row is the sum of the very fact
rows (metrics._*_rows) the live path aggregates, and both paths are aggregated by the same
metrics._aggregate. tests/test_summary.py checks the two agree on every grouping and scope.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import Column, Date, Integer, MetaData, String, Table, and_, case, func, literal, select, text
from sqlalchemy.engine import Connection, Engine

from . import metrics as m
from .dates import last_month_ends, month_end
from .schema import LEVEL_RANK, helper_status, metric_summary, pairing_status, ratings, summary_snapshots

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
FIELDS = dict(m.METRIC_FIELDS, gaps=["on_time", "overdue"])
# gap distribution: days since the reference date in 15-day buckets, 180 days and more in the last
GAP_BIN, GAP_CAP = 15, 180


def fields_of(kind: str) -> list[str]:
    return FIELDS[KINDS[kind][0]]


# ------------------------------------------------------------------------------------------ reading


def _region_level(conn: Connection, code: str | None) -> str | None:
    if not code:
        return None
    return conn.execute(select(m.T_REG.c.level).where(m.T_REG.c.code == code)).scalar() or "unknown"


def choose(conn: Connection, metric_kind: str, by: str, scope: m.Scope) -> tuple[str, str] | None:
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
    _, _, base, rollups = KINDS[kind]
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
    q = select(summary_snapshots.c.as_of).where(summary_snapshots.c.kind == kind, summary_snapshots.c.as_of.in_(dates))
    return {d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for (d,) in conn.execute(q)}


def available(conn: Connection, kind: str, as_of: dt.date) -> bool:
    return bool(stored_dates(conn, kind, [as_of]))


def _select_rows(conn: Connection, kind: str, grain: str, dates: list[dt.date], scope: m.Scope, with_date: bool = False,
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
            u, ur = m.T_UNIT.alias("su"), m.T_REG.alias("sur")
            q = q.join_from(s, u, u.c.unit_id == s.c.unit_id).join(ur, ur.c.code == u.c.region_code).where(
                m._region_filter(conn, ur, scope.region))
        else:  # a village, county, city or province code (a roll-up's group)
            r = m.T_REG.alias("sr")
            q = q.join_from(s, r, r.c.code == s.c.village_code).where(m._region_filter(conn, r, scope.region))
    return q


def stored_rows(conn: Connection, metric_kind: str, by: str, scope: m.Scope, dates: list[dt.date]):
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


def totals_by_date(conn: Connection, metric_kind: str, scope: m.Scope, dates: list[dt.date]) -> dict[dt.date, dict]:
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


def photo_pieces(conn: Connection, start: dt.date, end: dt.date, by: str, scope: m.Scope):
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


def gap_counts(conn: Connection, as_of: dt.date, scope: m.Scope):
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
    """Today and the 23 month-ends before it: the trend of any as-of date in the last year, and the
    tiles' month-on-month deltas, read stored figures."""
    return last_month_ends(today, 24)


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
    grain = KINDS[kind][2]
    src, unit, place = rows, rows.c.unit_id, rows.c.village_code
    if grain == "village":
        unit = literal(None, String)
    elif grain == "unit":
        place = literal(None, String)
    elif grain == "unit_county":
        gr = m.T_REG.alias("gr")
        src = rows.join(gr, gr.c.code == rows.c.village_code)
        place = m.group_key(gr, "county")
    bucket = rows.c[bucket_col] if bucket_col else None
    group = [c for c, keep in ((unit, grain != "village"), (place, grain != "unit")) if keep]
    if bucket is not None:
        group.append(bucket)
    _insert(conn, kind, grain, literal(as_of, Date), (unit, place, [func.sum(rows.c[f]) for f in fields]), group, src,
            bucket)


def _store_rollups(conn: Connection, kind: str, as_of: dt.date) -> None:
    """Sum the base rows of (kind, date) into each roll-up grain."""
    _, basis, base, rollups = KINDS[kind]
    s = metric_summary.alias("b")
    sums = [func.sum(s.c[slot]) for slot in SLOTS]
    for g in rollups:
        if g == "unit_all":
            src, unit, key = s, s.c.unit_id, literal(None, String)
            group = [s.c.unit_id, s.c.bucket]
        elif basis == "unit":
            u, ur = m.T_UNIT.alias("ru"), m.T_REG.alias("rur")
            src = s.join(u, u.c.unit_id == s.c.unit_id).join(ur, ur.c.code == u.c.region_code)
            unit, key = literal(None, String), m.group_key(ur, g)
            group = [key, s.c.bucket]
        else:
            gr = m.T_REG.alias("rgr")
            src = s.join(gr, gr.c.code == s.c.village_code)
            unit, key = literal(None, String), m.group_key(gr, g)
            group = [key, s.c.bucket]
        sel = (
            select(literal(kind, String), literal(g, String), literal(as_of, Date), unit, key, s.c.bucket, *sums)
            .select_from(src).where(s.c.kind == kind, s.c.grain == base, s.c.as_of == as_of).group_by(*group)
        )
        conn.execute(metric_summary.insert().from_select(
            ["kind", "grain", "as_of", "unit_id", "village_code", "bucket", *SLOTS], sel))


def _mark(conn: Connection, kind: str, as_of: dt.date, stamp: str) -> None:
    conn.execute(summary_snapshots.insert().values(kind=kind, as_of=as_of, refreshed_at=stamp))


def _store(conn: Connection, kind: str, as_of: dt.date, rows_select, stamp: str, bucket_col: str | None = None) -> None:
    _store_base(conn, kind, as_of, rows_select, bucket_col)
    _store_rollups(conn, kind, as_of)
    _mark(conn, kind, as_of, stamp)


def _store_cadence(conn: Connection, as_of: dt.date, facts, stamp: str) -> None:
    """Both cadence kinds from one evaluation of the fact rows: summed per unit x village first (a
    working grain, deleted again), then into each kind's base grain and roll-ups."""
    fields = fields_of("cadence")
    rows = facts.subquery("rows")
    _insert(conn, "cadence", "unit_village", literal(as_of, Date),
            (rows.c.unit_id, rows.c.village_code, [func.sum(rows.c[f]) for f in fields]),
            [rows.c.unit_id, rows.c.village_code], rows)
    w = metric_summary.alias("w")
    work = select(w.c.village_code, w.c.unit_id, *[w.c[slot].label(f) for slot, f in zip(SLOTS, fields)]).where(
        w.c.kind == "cadence", w.c.grain == "unit_village", w.c.as_of == as_of)
    for kind in ("cadence", "cadence_unit"):
        _store(conn, kind, as_of, work, stamp)
    conn.execute(metric_summary.delete().where(metric_summary.c.kind == "cadence",
                                               metric_summary.c.grain == "unit_village",
                                               metric_summary.c.as_of == as_of))


def _last_visit_table(conn: Connection, dates: list[dt.date]) -> Table:
    """A temporary table of the latest in-home visit on or before each date per (household, helper),
    made in one pass over the visits (column l<i> for dates[i])."""
    md = MetaData()
    cols = [Column("household_id", String(40)), Column("helper_id", String(40))]
    cols += [Column(f"l{i}", Date) for i in range(len(dates))]
    t = Table("tmp_last_visit", md, *cols, prefixes=["TEMPORARY"])
    conn.execute(text("DROP TABLE IF EXISTS tmp_last_visit"))
    t.create(conn)
    v = m.T_VIS.alias("v")
    aggs = [func.max(v.c.visit_date).filter(v.c.visit_date <= d) for d in dates]
    sel = (
        select(v.c.household_id, v.c.helper_id, *aggs)
        .where(v.c.mode == "in_home", v.c.visit_date <= max(dates))
        .group_by(v.c.household_id, v.c.helper_id)
    )
    conn.execute(t.insert().from_select([c.name for c in cols], sel))
    if conn.dialect.name == "postgresql":
        conn.execute(text("ANALYZE tmp_last_visit"))
    else:
        conn.execute(text("CREATE INDEX tmp_last_visit_ix ON tmp_last_visit (household_id, helper_id)"))
    return t


def _own_last(t: Table, i: int):
    return select(t.c.household_id, t.c.helper_id, t.c[f"l{i}"].label("last")).where(
        t.c[f"l{i}"].is_not(None)).subquery("own_last")


def _store_status(conn: Connection, today: dt.date, own_last, stamp: str) -> None:
    """pairing_status / helper_status for today, then the cadence and gap summaries from them."""
    ps, ref, cutoff = m._pairing_status(conn, today, m.ALL, own_last)
    gap = m.days_between(conn, today, ref)
    sel = select(literal(today, Date), ps.c.pairing_id, ps.c.helper_id, ps.c.household_id, ps.c.unit_id,
                 ps.c.village_code, ps.c.start_date, ps.c.last_visit, gap, ps.c.interval_months,
                 case((ref < cutoff, 1), else_=0))
    conn.execute(pairing_status.insert().from_select(
        ["as_of", "pairing_id", "helper_id", "household_id", "unit_id", "village_code", "start_date", "last_visit",
         "gap_days", "interval_months", "overdue"], sel))
    st = pairing_status.alias("st")
    facts = select(st.c.village_code, st.c.unit_id, literal(1).label("active_pairings"),
                   st.c.overdue.label("overdue")).where(st.c.as_of == today)
    _store_cadence(conn, today, facts, stamp)
    bucket = case((st.c.gap_days >= GAP_CAP, GAP_CAP // GAP_BIN), else_=st.c.gap_days // GAP_BIN)
    gaps = select(st.c.village_code, st.c.unit_id, bucket.label("bucket"),
                  (1 - st.c.overdue).label("on_time"), st.c.overdue.label("overdue")).where(st.c.as_of == today)
    _store(conn, "gaps", today, gaps, stamp, bucket_col="bucket")
    loads = m._helper_loads(today)
    h = m.T_HELP.alias("sh")
    conn.execute(helper_status.insert().from_select(
        ["as_of", "helper_id", "unit_id", "load"],
        select(literal(today, Date), loads.c.helper_id, h.c.unit_id, loads.c.load)
        .select_from(loads.join(h, h.c.helper_id == loads.c.helper_id))))
    hs, hu, hr = helper_status.alias("hs"), m.T_UNIT.alias("hu"), m.T_REG.alias("hr")
    over = hs.c.load > m.CAP
    cap_facts = select(literal(None, String).label("village_code"), hs.c.unit_id, literal(1).label("helpers"),
                       case((over, 1), else_=0).label("violators"),
                       case((over, hs.c.load - m.CAP), else_=0).label("excess")).where(hs.c.as_of == today)
    _store(conn, "cap", today, cap_facts, stamp)
    _mark(conn, "status", today, stamp)


def _store_photos(conn: Connection, dates: list[dt.date], stamp: str) -> None:
    """Per summary date S, the in-home visits and photos of S's calendar month up to S (one pass)."""
    v, hh, hr, h = m.T_VIS.alias("v"), m.T_HH.alias("hh"), m.T_REG.alias("hr"), m.T_HELP.alias("h")
    firsts = {d: d.replace(day=1) for d in dates}
    month_of = case(*[(and_(v.c.visit_date >= firsts[d], v.c.visit_date <= d), literal(d, Date)) for d in dates],
                    else_=literal(None, Date))
    rows = (
        select(month_of.label("as_of"), hh.c.village_code, func.count().label("in_home_visits"),
               func.sum(case((v.c.photo_uploaded == m.true(), 1), else_=0)).label("with_photo"))
        .select_from(v.join(hh, hh.c.household_id == v.c.household_id).join(hr, hr.c.code == hh.c.village_code)
                     .join(h, h.c.helper_id == v.c.helper_id))
        .where(v.c.mode == "in_home", v.c.visit_date >= min(firsts.values()), v.c.visit_date <= max(dates),
               m.in_scope(hh), month_of.is_not(None))
        .group_by(month_of, hh.c.village_code)
        .subquery("pm")
    )
    _insert(conn, "photos", "village", rows.c.as_of,
            (literal(None, String), rows.c.village_code, [rows.c.in_home_visits, rows.c.with_photo]), None,
            rows, None)
    for d in dates:
        _store_rollups(conn, "photos", d)
        _mark(conn, "photos", d, stamp)


def clear(conn: Connection, keep: Iterable[dt.date] = ()) -> None:
    """Drop stored summaries (all, or all but the dates in keep) and the stored statuses."""
    keep = list(keep)
    if keep:
        conn.execute(summary_snapshots.delete().where(summary_snapshots.c.as_of.not_in(keep)))
        conn.execute(metric_summary.delete().where(metric_summary.c.as_of.not_in(keep)))
    else:
        conn.execute(summary_snapshots.delete())
        conn.execute(metric_summary.delete())
    conn.execute(summary_snapshots.delete().where(summary_snapshots.c.kind == "status"))
    conn.execute(pairing_status.delete())
    conn.execute(helper_status.delete())


def refresh(conn: Connection, today: dt.date | None = None, dates: Iterable[dt.date] | None = None,
            years: Iterable[int] | None = None, only_missing: bool = False) -> dict[str, int]:
    """Recompute the summaries inside the caller's transaction. Returns counts of what was stored.

    only_missing=True (the daily `bangfu refresh`): keep the stored month-ends before today — the
    ledger changes only through an import, which refreshes everything in its own transaction — and
    compute today, the missing dates and the rating years."""
    today = today or dt.date.today()
    dates = sorted(set(dates if dates is not None else default_dates(today)))
    years = sorted(set(years if years is not None else default_years(conn, today)))
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
    keep = []
    if only_missing:
        have = stored_dates(conn, "cadence", dates)
        keep = [d for d in dates if d in have and d < today and d == month_end(d.year, d.month)
                and all(available(conn, k, d) for k in (*DAY_KINDS, "photos"))]
    clear(conn, keep)
    todo = [d for d in dates if d not in keep]
    if todo:
        # PostgreSQL: every date's last in-home visits from one pass over the visits; SQLite: an index
        # probe per pairing (its nested loops make the per-date joins to the pass slower than probing)
        lv = _last_visit_table(conn, todo) if conn.dialect.name == "postgresql" else None
        for i, d in enumerate(todo):
            _store(conn, "coverage", d, m._coverage_rows(conn, d, m.ALL, assigned=False), stamp)
            _store(conn, "coverage_assigned", d, m._coverage_rows(conn, d, m.ALL, assigned=True), stamp)
            _store(conn, "replacements", d, m._replacement_rows(conn, d, m.ALL), stamp)
            own_last = _own_last(lv, i) if lv is not None else None
            if d == max(todo):
                _store_status(conn, d, own_last, stamp)
            else:
                _store_cadence(conn, d, m._cadence_rows(conn, d, m.ALL, own_last), stamp)
                _store(conn, "cap", d, m._cap_rows(conn, d, m.ALL), stamp)
        if lv is not None:
            conn.execute(text("DROP TABLE tmp_last_visit"))
        _store_photos(conn, todo, stamp)
    conn.execute(metric_summary.delete().where(metric_summary.c.kind == "ratings"))
    conn.execute(summary_snapshots.delete().where(summary_snapshots.c.kind == "ratings"))
    for y in years:
        _store(conn, "ratings", dt.date(y, 12, 31), m._ratings_rows(conn, y, m.ALL), stamp)
    if conn.dialect.name == "postgresql":
        for t in ("metric_summary", "pairing_status", "helper_status"):
            conn.execute(text(f"ANALYZE {t}"))
    n = conn.execute(select(func.count()).select_from(metric_summary)).scalar()
    return {"dates": len(todo), "kept": len(keep), "years": len(years), "rows": int(n)}


def refresh_engine(engine: Engine, **kw) -> dict[str, int]:
    with engine.begin() as conn:
        return refresh(conn, **kw)


def status(engine: Engine) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(
            select(summary_snapshots.c.kind, func.min(summary_snapshots.c.as_of), func.max(summary_snapshots.c.as_of),
                   func.count(), func.max(summary_snapshots.c.refreshed_at)).group_by(summary_snapshots.c.kind)
        ).all()
    return {k: {"first": a, "last": b, "dates": n, "refreshed_at": t} for k, a, b, n, t in rows}
