"""The metric queries: each metric of ../shared/RULES.md for a date, a grouping and a Scope, as a pandas
DataFrame. A query reads the stored summary rows that answer it exactly (summary.py) and otherwise the live
fact rows of its rule (rules.py); both are summed by the same ``_aggregate``. Pages, reports and the command
line call these; what a metric *is* lives in rules.py, which fields it has in registry.py.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import String, func, literal, select, union_all
from sqlalchemy.engine import Connection

from . import summary as store
from . import registry
from .rules import (DIMS, T_REG, T_UNIT, _cap_rows, _cadence_rows, _coverage_rows, _helper_loads, _photo_rows,
                    _ratings_rows, _replacement_rows, changed_between, group_key, household_coverage_on)
from .schema import LEVEL_RANK
from .scope import ALL, Conn, Scope


def _finish(conn: Connection, raw_rows, metric: str, by: str) -> pd.DataFrame:
    """Name the groups, drop the empty ones, sort by code, make every field an int.
    raw_rows: (code, name, level, field, ...) tuples from the database (name and level of the group's
    unit or region; level None for a unit)."""
    fields = registry.fields(metric)
    if metric == "ratings":  # a group is listed when any field is non-zero
        keep = [r for r in raw_rows if r[0] is not None and any(r[3:])]
    else:  # … when what is counted (the primary field) is
        at = 3 + fields.index(registry.primary(metric))
        keep = [r for r in raw_rows if r[0] is not None and (r[at] or 0) > 0]
    keep.sort(key=lambda r: r[0])
    data = {"code": [r[0] for r in keep], "name": [_group_name(r[0], r[1], r[2], by) for r in keep]}
    for i, f in enumerate(fields):
        data[f] = pd.Series([int(r[3 + i] or 0) for r in keep], dtype="int64")
    return pd.DataFrame(data, columns=["code", "name", *fields])


def _group_name(code: str, name: str | None, level: str | None, by: str) -> str:
    """A unit's or region's name, or "省直" / "某某市直" for a region row above the asked level."""
    if by == "unit":
        return name if name is not None else code
    if name is None:
        return code
    if LEVEL_RANK.get(level, 99) < LEVEL_RANK[by]:
        return "省直" if level == "province" else f"{name}直"
    return name


def total_row(df: pd.DataFrame, metric: str) -> dict:
    row = {"code": None, "name": "合计"}
    for f in registry.fields(metric):
        row[f] = int(df[f].sum()) if len(df) else 0
    return row


def _check_by(by: str, allowed=DIMS) -> None:
    if by not in allowed:
        raise ValueError(f"unknown grouping '{by}'; expected one of {', '.join(allowed)}")


def _delta_rows(base, now, then, fields: list[str]):
    """base rows + now rows - then rows (all with village_code, unit_id and the fields)."""
    return union_all(
        select(base.c.village_code, base.c.unit_id, *[base.c[f] for f in fields]),
        select(now.c.village_code, now.c.unit_id, *[now.c[f] for f in fields]),
        select(then.c.village_code, then.c.unit_id, *[(-then.c[f]).label(f) for f in fields]))


def _coverage_delta_rows(conn: Connection, as_of: dt.date, scope: Scope, stored: dt.date):
    """M1 (region mode) fact rows of as_of from the stored village rows of ``stored`` (an earlier date)."""
    base = store._select_rows(conn, "coverage", "village", [stored], scope).subquery("base")
    changed = changed_between("household_id", stored, as_of)
    now, then = (_coverage_rows_of(conn, d, scope, changed).subquery(n) for d, n in ((as_of, "now"), (stored, "then")))
    return _delta_rows(base, now, then, registry.fields("coverage"))


def _coverage_rows_of(conn: Connection, as_of: dt.date, scope: Scope, households):
    rows = household_coverage_on(conn, [as_of], scope, households).subquery("hc")
    return select(rows.c.village_code, literal(None, String).label("unit_id"), literal(1).label("households"),
                  rows.c.covered_0.label("covered"), rows.c.weak_0.label("weak"))


def _cap_delta_rows(conn: Connection, as_of: dt.date, scope: Scope, stored: dt.date):
    """M2 fact rows of as_of from the stored unit rows of ``stored`` (an earlier date)."""
    base = store._select_rows(conn, "cap", "unit", [stored], scope).subquery("base")
    changed = changed_between("helper_id", stored, as_of)
    now, then = (_cap_rows(conn, d, scope, _helper_loads(d, changed)).subquery(n)
                 for d, n in ((as_of, "now"), (stored, "then")))
    return _delta_rows(base, now, then, registry.fields("cap"))


def coverage(bind, as_of: dt.date, by: str = "county", scope: Scope = ALL, summary: bool = True) -> pd.DataFrame:
    """M1. By region: households of the region. By unit (or with a unit scope): assigned-village
    coverage — households in the unit's villages assigned on the date, covered by that unit's helpers."""
    _check_by(by)
    assigned = by == "unit" or bool(scope.unit)
    kind = "coverage_assigned" if assigned else "coverage"
    with Conn(bind) as conn:
        def live():
            stored = None if assigned or not summary else store.stored_before(conn, "coverage", as_of)
            if stored is not None:
                return _coverage_delta_rows(conn, as_of, scope, stored)
            return _coverage_rows(conn, as_of, scope, assigned)

        rows, basis = _rows_or_summary(conn, kind, as_of, scope, summary, live, by, "village")
        return _aggregate(conn, rows, "coverage", by, basis)


def cap(bind, as_of: dt.date, by: str = "county", scope: Scope = ALL, summary: bool = True) -> pd.DataFrame:
    """M2, grouped by the helper's sending unit or that unit's region."""
    _check_by(by)
    with Conn(bind) as conn:
        def live():
            stored = store.stored_before(conn, "cap", as_of) if summary else None
            if stored is not None:
                return _cap_delta_rows(conn, as_of, scope, stored)
            return _cap_rows(conn, as_of, scope)

        rows, basis = _rows_or_summary(conn, "cap", as_of, scope, summary, live, by, "unit")
        return _aggregate(conn, rows, "cap", by, basis)


def cadence(bind, as_of: dt.date, by: str = "county", scope: Scope = ALL, summary: bool = True) -> pd.DataFrame:
    """M3: active in-scope pairings and the overdue ones, by household region or helper unit."""
    _check_by(by)
    with Conn(bind) as conn:
        # not stored: from the overdue spans when the refresh wrote them (summary=False: the live SQL, the
        # reference implementation)
        rows, basis = _rows_or_summary(conn, "cadence", as_of, scope, summary,
                                       lambda: store.cadence_span_rows(conn, as_of, scope)
                                       if summary and store.spans_stored(conn) else _cadence_rows(conn, as_of, scope),
                                       by, "village")
        return _aggregate(conn, rows, "cadence", by, basis)


def ratings(bind, year: int, by: str = "county", scope: Scope = ALL, summary: bool = True) -> pd.DataFrame:
    """M4 for year Y: helpers per grade, and helpers paired during Y with no rating for Y."""
    _check_by(by)
    with Conn(bind) as conn:
        rows, basis = _rows_or_summary(conn, "ratings", dt.date(year, 12, 31), scope, summary,
                                       lambda: _ratings_rows(conn, year, scope), by, "unit")
        return _aggregate(conn, rows, "ratings", by, basis)


def replacements(bind, as_of: dt.date, by: str = "county", scope: Scope = ALL, summary: bool = True) -> pd.DataFrame:
    """M5: replacements ended on or before the date, and those without county approval."""
    _check_by(by)
    with Conn(bind) as conn:
        rows, basis = _rows_or_summary(conn, "replacements", as_of, scope, summary,
                                       lambda: _replacement_rows(conn, as_of, scope), by, "unit")
        return _aggregate(conn, rows, "replacements", by, basis)


def photos(bind, start: dt.date, end: dt.date, by: str = "county", scope: Scope = ALL, summary: bool = True) -> pd.DataFrame:
    """M6: in-home visits dated start..end (inclusive) and those with a photo uploaded.
    By household region, or by the visiting helper's unit. The months of the period that are stored
    (summary kind "photos": a calendar month up to a summary date) are read; the rest is counted live."""
    _check_by(by)
    with Conn(bind) as conn:
        parts, live_ranges = [], [(start, end)]
        if summary and by != "unit" and not scope.unit:
            parts, live_ranges = store.photo_pieces(conn, start, end, by, scope)
        for a, b in live_ranges or ([] if parts else [(start, end)]):
            live = _photo_rows(conn, a, b, scope).subquery(f"live_{len(parts)}")
            parts.append(select(live.c.village_code, live.c.unit_id, live.c.in_home_visits, live.c.with_photo))
        rows = parts[0] if len(parts) == 1 else parts[0].union_all(*parts[1:])
        return _aggregate(conn, rows.subquery("rows"), "photos", by, "village")


def _aggregate(conn: Connection, rows, metric: str, by: str, basis: str) -> pd.DataFrame:
    """Sum a metric's fields over fact rows (columns village_code, unit_id and the fields), grouped
    by the household's region (basis "village"), the helper unit's region (basis "unit"), or the unit."""
    fields = registry.fields(metric)
    if by == "unit":
        src, key = rows, rows.c.unit_id
    elif basis == "village":
        gr = T_REG.alias("gr")
        src, key = rows.join(gr, gr.c.code == rows.c.village_code), group_key(gr, by)
    else:
        gu, gur = T_UNIT.alias("gu"), T_REG.alias("gur")
        src = rows.join(gu, gu.c.unit_id == rows.c.unit_id).join(gur, gur.c.code == gu.c.region_code)
        key = group_key(gur, by)
    g = select(key.label("code"), *[func.sum(rows.c[f]).label(f) for f in fields]).select_from(src).group_by(key)
    g = g.subquery("g")
    # the groups' names in the same query
    if by == "unit":
        nu = T_UNIT.alias("nu")
        q = select(g.c.code, nu.c.name, literal(None, String), *[g.c[f] for f in fields]).select_from(
            g.outerjoin(nu, nu.c.unit_id == g.c.code))
    else:
        nr = T_REG.alias("nr")
        q = select(g.c.code, nr.c.name, nr.c.level, *[g.c[f] for f in fields]).select_from(
            g.outerjoin(nr, nr.c.code == g.c.code))
    return _finish(conn, conn.execute(q).all(), metric, by)


def _rows_or_summary(conn: Connection, kind: str, as_of: dt.date, scope: Scope, use_summary: bool, live,
                     by: str, basis: str):
    """(rows, basis): the stored summary rows that answer (kind, grouping, scope, date) exactly when
    they exist, else the live fact rows. Stored roll-ups are keyed by the region they were summed
    under, so they are grouped like household-based rows (basis "village")."""
    if use_summary:
        stored = store.stored_rows(conn, kind, by, scope, [as_of])
        if stored is not None:
            return stored
    return live().subquery("rows"), basis


METRICS = {
    "coverage": coverage,
    "cap": cap,
    "cadence": cadence,
    "replacements": replacements,
}


def declared(bind, metric: str, as_of: dt.date, by: str = "county", scope: Scope = ALL,
             summary: bool = True) -> pd.DataFrame:
    """A registry metric without a function of its own (registry.generic): its declared fact rows, or the rows
    the refresh stored from them, summed like every other metric's."""
    spec = registry.metric(metric)
    if spec.rows is None:
        raise ValueError(f"metric '{metric}' has no declared fact rows")
    _check_by(by)
    with Conn(bind) as conn:
        rows, basis = _rows_or_summary(conn, metric, as_of, scope, summary, lambda: spec.rows(conn, as_of, scope), by,
                                       spec.basis)
        return _aggregate(conn, rows, metric, by, basis)


def compute(bind, metric: str, by: str, as_of: dt.date, scope: Scope = ALL, year: int | None = None,
            summary: bool = False) -> pd.DataFrame:
    """Any registry metric by name (the CLI, reports, ui.data.metric): the ratings year defaults to the year before
    as_of's."""
    if metric == "ratings":
        return ratings(bind, year if year is not None else as_of.year - 1, by, scope, summary=summary)
    if metric in METRICS:
        return METRICS[metric](bind, as_of, by, scope, summary=summary)
    return declared(bind, metric, as_of, by, scope, summary=summary)

