"""The rules: what each metric of ../shared/RULES.md *is*, as SQL (SQLAlchemy Core, the same expressions on
SQLite and PostgreSQL) — the building blocks (active pairing, in-scope household, reference date, deadline) and
each metric's fact rows (one row per household, helper or pairing with village_code, unit_id and the metric's
fields). Nothing here reads stored summaries or chooses between stored and live: that is summary.py (the store)
and metrics.py (the query). No rule is defined anywhere else.
"""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from . import schema
from .dates import months_before
from .schema import IN_SCOPE_STATUSES, LEVEL_RANK, REPLACEMENT_REASONS
from .scope import Scope

REGION_DIMS = ("province", "city", "county", "township", "village")
DIMS = REGION_DIMS + ("unit",)
CAP = 5  # 第五条: 1名帮扶责任人最多帮扶不超过5个贫困户
INTERVAL_MONTHS = 2  # 第十二条(二)
DEPARTMENT_INTERVAL_MONTHS = 4


T_REG = schema.regions
T_UNIT = schema.units
T_HELP = schema.helpers
T_HH = schema.households
T_PAIR = schema.pairings
T_VIS = schema.visits
T_RATE = schema.ratings
T_ASSIGN = schema.assignments


# --------------------------------------------------------------------------------------------
# Shared building blocks: one definition each
# --------------------------------------------------------------------------------------------


def active_on(pairing, d: dt.date) -> ColumnElement:
    """RULES.md Time: start_date <= D and (end_date empty or end_date > D)."""
    return and_(pairing.c.start_date <= d, or_(pairing.c.end_date.is_(None), pairing.c.end_date > d))


def active_in_year(pairing, year: int) -> ColumnElement:
    """RULES.md M4: active on at least one day of the year."""
    return and_(
        pairing.c.start_date <= dt.date(year, 12, 31),
        or_(pairing.c.end_date.is_(None), pairing.c.end_date > dt.date(year, 1, 1)),
    )


def in_scope(household) -> ColumnElement:
    """第二条: not_lifted and lifted_with_policy households; exited ones count nowhere."""
    return household.c.status.in_(IN_SCOPE_STATUSES)


def department_based(helper, unit) -> ColumnElement:
    """第六条/第十二条(二): a province-level unit's helper with a department pairs by department."""
    return and_(unit.c.level == "province", func.coalesce(helper.c.department, "") != "")


def group_key(region, by: str) -> ColumnElement:
    """The region a row is counted under at level `by`: the ancestor-or-self at that level, or,
    where the chain has none (a unit sitting above the level), the nearest one above it."""
    cols = [region.c.province_code, region.c.city_code, region.c.county_code,
            region.c.township_code, region.c.village_code]
    upto = cols[: LEVEL_RANK[by] + 1]
    if len(upto) == 1:
        return upto[0]
    return func.coalesce(*reversed(upto))


_LEVELS: dict[tuple[str, str], tuple[str, float]] = {}
LEVEL_CACHE_S = 60.0


def region_level(conn: Connection, code: str | None) -> str | None:
    """The level of a region code (None when unknown). Known codes are remembered for a minute per
    database: a code's level is fixed by the national code scheme and asked on every call."""
    if not code:
        return None
    key = (str(conn.engine.url), code)
    hit = _LEVELS.get(key)
    now = time.monotonic()
    if hit and now - hit[1] < LEVEL_CACHE_S:
        return hit[0]
    level = conn.execute(select(T_REG.c.level).where(T_REG.c.code == code)).scalar()
    if level is not None:
        _LEVELS[key] = (level, now)
    return level


def _region_filter(conn: Connection, region, code: str | None) -> ColumnElement:
    """Rows whose region lies under (or is) `code`."""
    if not code:
        return true()
    level = region_level(conn, code)
    if level is None:
        return false()
    return region.c[f"{level}_code"] == code


def household_helpers_on(dates: list[dt.date], households=None):
    """Per household with a pairing around the dates, for dates[i]: ``any_<i>`` (1 when it has an
    active pairing on that date) and ``cadre_<i>`` (1 when one of its active helpers is a cadre).
    ``households``: a select of household ids to keep only theirs."""
    p = T_PAIR.alias("hp_p")
    h = T_HELP.alias("hp_h")
    cols = []
    for i, d in enumerate(dates):
        act = active_on(p, d)
        cols += [func.max(case((act, 1), else_=0)).label(f"any_{i}"),
                 func.max(case((and_(act, h.c.category == "cadre"), 1), else_=0)).label(f"cadre_{i}")]
    return (
        select(p.c.household_id.label("household_id"), *cols)
        .select_from(p.join(h, h.c.helper_id == p.c.helper_id))
        .where(active_any(p, dates), true() if households is None else p.c.household_id.in_(households))
        .group_by(p.c.household_id)
        .subquery("hp")
    )


def covered_on(hp, i: int) -> ColumnElement:
    """M1 covered on dates[i] (hp: household_helpers_on, outer-joined: no row = not covered)."""
    return hp.c[f"any_{i}"] == 1


def weak_on(hh, hp, i: int) -> ColumnElement:
    """M1 weak pairing: a covered not_lifted household whose active helpers are all non-cadre."""
    return and_(hh.c.status == "not_lifted", covered_on(hp, i), hp.c[f"cadre_{i}"] == 0)


def _assigned_villages(d: dt.date, unit_id: str | None = None):
    a = T_ASSIGN.alias("av")
    q = select(a.c.unit_id, a.c.village_code).where(
        a.c.start_date <= d, or_(a.c.end_date.is_(None), a.c.end_date > d)
    )
    if unit_id:
        q = q.where(a.c.unit_id == unit_id)
    return q.distinct().subquery("au")


# --------------------------------------------------------------------------------------------
# M1 coverage
# --------------------------------------------------------------------------------------------


def _coverage_rows(conn: Connection, as_of: dt.date, scope: Scope, assigned: bool):
    """M1 fact rows. Region mode: one row per in-scope household (village_code; households=1,
    covered, weak). Assigned mode (第七条): one row per (unit, in-scope household of a village assigned
    to the unit on the date), covered/weak counting only pairings with that unit's helpers."""
    if assigned:
        rows = assigned_coverage_on(conn, [as_of], scope).subquery("ac")
        return select(rows.c.village_code, rows.c.unit_id, rows.c.on_0.label("households"),
                      rows.c.covered_0.label("covered"), rows.c.weak_0.label("weak")).where(rows.c.on_0 == 1)
    rows = household_coverage_on(conn, [as_of], scope).subquery("hc")
    return select(rows.c.village_code, literal(None, String).label("unit_id"), literal(1).label("households"),
                  rows.c.covered_0.label("covered"), rows.c.weak_0.label("weak"))


def assigned_coverage_on(conn: Connection, dates: list[dt.date], scope: Scope):
    """M1 in assigned mode (第七条) for several dates in one pass: one row per (unit, in-scope household of
    a village assigned to the unit on some day around the dates) with, for dates[i], ``on_<i>`` (the
    village is assigned to the unit on that day), ``covered_<i>`` (the household has an active pairing
    with a helper of that unit) and ``weak_<i>`` (covered so, and a weak pairing: ``weak_on``). A date's
    fact rows are the rows with on_<i> = 1."""
    hh, r = T_HH.alias("hh"), T_REG.alias("r")
    a = T_ASSIGN.alias("av")
    au = select(a.c.unit_id, a.c.village_code,
                *[func.max(case((active_on(a, d), 1), else_=0)).label(f"on_{i}") for i, d in enumerate(dates)])
    au = au.where(active_any(a, dates), *([a.c.unit_id == scope.unit] if scope.unit else []))
    au = au.group_by(a.c.unit_id, a.c.village_code).subquery("au")
    # only the households of assigned villages can count: look up no other household's pairings
    ah = T_HH.alias("ah")
    theirs = select(ah.c.household_id).where(ah.c.village_code.in_(select(au.c.village_code)))
    hp = household_helpers_on(dates, theirs)
    # (household, unit) with, per date, an active pairing with one of the unit's helpers
    p, h = T_PAIR.alias("up_p"), T_HELP.alias("up_h")
    hu = (
        select(p.c.household_id, h.c.unit_id,
               *[func.max(case((active_on(p, d), 1), else_=0)).label(f"by_{i}") for i, d in enumerate(dates)])
        .select_from(p.join(h, h.c.helper_id == p.c.helper_id))
        .where(active_any(p, dates), p.c.household_id.in_(theirs))
        .group_by(p.c.household_id, h.c.unit_id)
        .subquery("hu")
    )
    cols = []
    for i in range(len(dates)):
        by_unit = and_(au.c[f"on_{i}"] == 1, hu.c[f"by_{i}"] == 1)
        cols += [au.c[f"on_{i}"],
                 case((by_unit, 1), else_=0).label(f"covered_{i}"),
                 case((and_(by_unit, weak_on(hh, hp, i)), 1), else_=0).label(f"weak_{i}")]
    return (
        select(hh.c.village_code.label("village_code"), au.c.unit_id.label("unit_id"), *cols)
        .select_from(
            au.join(hh, hh.c.village_code == au.c.village_code)
            .join(r, r.c.code == hh.c.village_code)
            .outerjoin(hu, and_(hu.c.household_id == hh.c.household_id, hu.c.unit_id == au.c.unit_id))
            .outerjoin(hp, hp.c.household_id == hh.c.household_id)
        )
        .where(in_scope(hh), _region_filter(conn, r, scope.region))
    )


def uncovered_cond(hh, as_of: dt.date) -> ColumnElement:
    """M1's uncovered household (a row of ``hh``): in scope, with no active pairing on the date."""
    p = T_PAIR.alias("up")
    has_pairing = select(p.c.household_id).where(p.c.household_id == hh.c.household_id, active_on(p, as_of)).exists()
    return and_(in_scope(hh), ~has_pairing)


def uncovered_rows(as_of: dt.date):
    """The uncovered households of the date as a select (household_id, village_code): what the refresh
    stores for the uncovered list."""
    hh = T_HH.alias("uh")
    return select(hh.c.household_id, hh.c.village_code).where(uncovered_cond(hh, as_of))


def household_coverage_on(conn: Connection, dates: list[dt.date], scope: Scope, households=None):
    """M1 (region mode) for several dates in one pass: one row per in-scope household (village_code)
    with covered_<i> and weak_<i> (0/1) for dates[i]. ``households``: a select of household ids to keep."""
    hh = T_HH.alias("hh")
    r = T_REG.alias("r")
    hp = household_helpers_on(dates, households)
    cols = []
    for i in range(len(dates)):
        cols += [case((covered_on(hp, i), 1), else_=0).label(f"covered_{i}"),
                 case((weak_on(hh, hp, i), 1), else_=0).label(f"weak_{i}")]
    return (
        select(hh.c.village_code.label("village_code"), *cols)
        .select_from(hh.join(r, r.c.code == hh.c.village_code).outerjoin(hp, hp.c.household_id == hh.c.household_id))
        .where(in_scope(hh), _region_filter(conn, r, scope.region),
               true() if households is None else hh.c.household_id.in_(households))
    )


# --- a date between stored ones (metrics.py, summary.stored_before) ---------------------------------------------
# Coverage and load change only where a pairing starts or ends: a household's (a helper's) fact row on D equals
# its row on the stored date S < D unless one of its pairings has start_date or end_date in (S, D].


def changed_between(col: str, since: dt.date, until: dt.date):
    """The household (col="household_id") or helper ids ("helper_id") with a pairing that starts or ends in
    (since, until]: the only ones whose active pairings differ between the two days."""
    p = T_PAIR.alias("chg")
    return select(p.c[col]).where(or_(and_(p.c.start_date > since, p.c.start_date <= until),
                                      and_(p.c.end_date > since, p.c.end_date <= until)))


# --------------------------------------------------------------------------------------------
# M2 pairing cap
# --------------------------------------------------------------------------------------------


def _helper_loads(as_of: dt.date, helpers=None):
    """load(helper, D): distinct in-scope households actively paired with the helper (only the
    helpers in the ``helpers`` select when given)."""
    loads = helper_loads_on([as_of], helpers)
    return select(loads.c.helper_id, loads.c.load_0.label("load")).where(loads.c.load_0 > 0).subquery("loads")


def helper_loads_on(dates: list[dt.date], helpers=None):
    """load(helper, D) for several dates in one pass over the pairings: helper_id, load_<i> for
    dates[i] (helpers paired on none of the dates left out). Distinct households: the pairings are
    first reduced to one row per (helper, household)."""
    p = T_PAIR.alias("lp")
    hh = T_HH.alias("lh")
    pairs = (
        select(p.c.helper_id.label("helper_id"),
               *[func.max(case((active_on(p, d), 1), else_=0)).label(f"a_{i}") for i, d in enumerate(dates)])
        .select_from(p.join(hh, hh.c.household_id == p.c.household_id))
        .where(active_any(p, dates), in_scope(hh))
        .group_by(p.c.helper_id, p.c.household_id)
    )
    if helpers is not None:
        pairs = pairs.where(p.c.helper_id.in_(helpers))
    pairs = pairs.subquery("helper_households")
    return (
        select(pairs.c.helper_id, *[func.sum(pairs.c[f"a_{i}"]).label(f"load_{i}") for i in range(len(dates))])
        .group_by(pairs.c.helper_id)
        .subquery("loads")
    )


def active_any(pairing, dates: list[dt.date]) -> ColumnElement:
    """Active on some day between the first and the last of the dates (a superset of "active on one of
    them": each date's own test decides)."""
    return and_(pairing.c.start_date <= max(dates),
                or_(pairing.c.end_date.is_(None), pairing.c.end_date > min(dates)))


def _helper_scope(conn: Connection, h, u, ur, scope: Scope) -> list[ColumnElement]:
    conds = [_region_filter(conn, ur, scope.region)]
    if scope.unit:
        conds.append(h.c.unit_id == scope.unit)
    return conds


def _pairing_scope(conn: Connection, base, p, hh, h, scope: Scope, helpers, region_alias: str):
    """(base, conditions) keeping a pairing query (pairings p joined to their households hh and helpers h in
    ``base``) to the scope — the household's region (joined as ``region_alias``), the helper's unit — and, given
    ``helpers`` (a select of helper ids), to their pairings."""
    conds = []
    if scope.region:
        r = T_REG.alias(region_alias)
        base = base.join(r, r.c.code == hh.c.village_code)
        conds.append(_region_filter(conn, r, scope.region))
    if scope.unit:
        conds.append(h.c.unit_id == scope.unit)
    if helpers is not None:
        conds.append(p.c.helper_id.in_(helpers))
    return base, conds


def _helper_group_key(u, ur, by: str) -> ColumnElement:
    return u.c.unit_id if by == "unit" else group_key(ur, by)


def _cap_rows(conn: Connection, as_of: dt.date, scope: Scope, loads=None):
    """M2 fact rows: one per helper with load >= 1 (unit_id; helpers=1, violators, excess).
    ``loads``: the helpers' loads on the date (helper_id, load) when already computed."""
    loads = _helper_loads(as_of) if loads is None else loads
    h, u, ur = T_HELP.alias("h"), T_UNIT.alias("u"), T_REG.alias("ur")
    over = loads.c.load > CAP
    return (
        select(
            literal(None, String).label("village_code"),
            h.c.unit_id.label("unit_id"),
            literal(1).label("helpers"),
            case((over, 1), else_=0).label("violators"),
            case((over, loads.c.load - CAP), else_=0).label("excess"),
        )
        .select_from(
            loads.join(h, h.c.helper_id == loads.c.helper_id)
            .join(u, u.c.unit_id == h.c.unit_id)
            .join(ur, ur.c.code == u.c.region_code)
        )
        .where(*_helper_scope(conn, h, u, ur, scope))
    )


# --------------------------------------------------------------------------------------------
# M3 visit cadence
# --------------------------------------------------------------------------------------------


def days_between(conn: Connection, later: dt.date, col) -> ColumnElement:
    """later - col in whole days, on either database."""
    if conn.dialect.name == "postgresql":
        return literal(later) - col
    return func.cast(func.julianday(literal(later.isoformat())) - func.julianday(col), Integer)


def own_last_visits(as_of: dt.date, households=None):
    """last in-home visit on or before as_of per (household, helper): one aggregate pass over the visits
    (optionally only of the households in a subquery)."""
    v = T_VIS.alias("ov")
    q = select(v.c.household_id, v.c.helper_id, func.max(v.c.visit_date).label("last")).where(
        v.c.mode == "in_home", v.c.visit_date <= as_of)
    if households is not None:
        q = q.where(v.c.household_id.in_(households))
    # a CTE: read by the pairings' join and by the departments' aggregate, computed once
    return q.group_by(v.c.household_id, v.c.helper_id).cte("own_last").prefix_with("MATERIALIZED")


def _wide(conn: Connection, scope: Scope) -> bool:
    """Is the aggregate formulation of last(p) the faster one? On PostgreSQL for province- and
    city-wide questions; a narrow scope (a county or below, a unit) probes the index per pairing."""
    if conn.dialect.name != "postgresql" or scope.unit:
        return False
    if not scope.region:
        return True
    level = conn.execute(select(T_REG.c.level).where(T_REG.c.code == scope.region)).scalar()
    return level in ("province", "city")


def pairing_dates(conn: Connection, dates: list[dt.date], scope: Scope, own_last=None, helpers=None):
    """M3 inputs for several dates in one pass: one row per pairing active around the dates with an
    in-scope household (pairing_id, helper_id, household_id, start_date, end_date, unit_id,
    interval_months, village_code) and, for dates[i], ``last_<i>``: last(p) on that date, the latest
    in-home visit on or before it by the pairing's helper or, for a department-based pairing, by any
    helper of the same unit and department. Which of the rows are active on dates[i] and overdue is
    decided by ``active_on`` and ``overdue_on``.

    last(p) is read from ``own_last`` (a selectable of household_id, helper_id, last_<i>: the latest
    in-home visit on or before dates[i] per household and helper) when given or, for one date, when
    the question is province- or city-wide on PostgreSQL (one aggregate pass over the visits);
    otherwise (one date) it is looked up per pairing through the index on visits (household, helper,
    mode, date). ``helpers``: a select of helper ids to keep only their pairings."""
    p = T_PAIR.alias("p")
    hh = T_HH.alias("hh")
    h = T_HELP.alias("h")
    u = T_UNIT.alias("u")
    dept = department_based(h, u)
    base = (
        p.join(hh, hh.c.household_id == p.c.household_id)
        .join(h, h.c.helper_id == p.c.helper_id)
        .join(u, u.c.unit_id == h.c.unit_id)
    )
    base, scoped = _pairing_scope(conn, base, p, hh, h, scope, helpers, "hr")
    conds = [active_any(p, dates), in_scope(hh), *scoped]
    if own_last is None and len(dates) == 1 and helpers is None and _wide(conn, scope):
        ol = own_last_visits(dates[0])
        own_last = select(ol.c.household_id, ol.c.helper_id, ol.c.last.label("last_0")).subquery("own_last_0")
    if own_last is not None:
        n = len(dates)
        # the department's last visit: the latest own-last of any helper of the same unit and department
        dh, du = T_HELP.alias("dh"), T_UNIT.alias("du")
        dept_last = (
            select(own_last.c.household_id, dh.c.unit_id, dh.c.department,
                   *[func.max(own_last.c[f"last_{i}"]).label(f"last_{i}") for i in range(n)])
            .select_from(own_last.join(dh, dh.c.helper_id == own_last.c.helper_id).join(du, du.c.unit_id == dh.c.unit_id))
            .where(department_based(dh, du))
            .group_by(own_last.c.household_id, dh.c.unit_id, dh.c.department)
            .subquery("dept_last")
        )
        base = base.outerjoin(
            own_last, and_(own_last.c.household_id == p.c.household_id, own_last.c.helper_id == p.c.helper_id)
        ).outerjoin(
            dept_last,
            and_(dept_last.c.household_id == p.c.household_id, dept_last.c.unit_id == h.c.unit_id,
                 dept_last.c.department == h.c.department),
        )
        lasts = [case((dept, dept_last.c[f"last_{i}"]), else_=own_last.c[f"last_{i}"]) for i in range(n)]
    else:
        if len(dates) != 1:
            raise ValueError("several dates need own_last")
        v, vh = T_VIS.alias("v"), T_HELP.alias("vh")
        in_home_by = and_(v.c.household_id == p.c.household_id, v.c.mode == "in_home", v.c.visit_date <= dates[0])
        own = select(func.max(v.c.visit_date)).where(in_home_by, v.c.helper_id == p.c.helper_id).scalar_subquery()
        dept_sub = (
            select(func.max(v.c.visit_date))
            .select_from(v.join(vh, vh.c.helper_id == v.c.helper_id))
            .where(in_home_by, vh.c.unit_id == h.c.unit_id, vh.c.department == h.c.department)
            .scalar_subquery()
        )
        lasts = [case((dept, dept_sub), else_=own)]
    return (
        select(
            p.c.pairing_id,
            p.c.helper_id,
            p.c.household_id,
            p.c.start_date,
            p.c.end_date,
            h.c.unit_id,
            case((dept, DEPARTMENT_INTERVAL_MONTHS), else_=INTERVAL_MONTHS).label("interval_months"),
            hh.c.village_code.label("village_code"),
            *[last.label(f"last_{i}") for i, last in enumerate(lasts)],
        )
        .select_from(base)
        .where(*conds)
    )


def reference_date(last, start) -> ColumnElement:
    """ref(p): the later of last(p) and the pairing's start (the clock starts at pairing)."""
    return case((or_(last.is_(None), last < start), start), else_=last)


def cutoff_on(ps, d: dt.date) -> ColumnElement:
    """months_before(D, k) for the pairing's interval k."""
    return case(
        (ps.c.interval_months == DEPARTMENT_INTERVAL_MONTHS, literal(months_before(d, DEPARTMENT_INTERVAL_MONTHS))),
        else_=literal(months_before(d, INTERVAL_MONTHS)),
    )


def overdue_on(ps, i: int, d: dt.date) -> ColumnElement:
    """p is overdue on D when ref(p) < months_before(D, k)."""
    return reference_date(ps.c[f"last_{i}"], ps.c.start_date) < cutoff_on(ps, d)


def _pairing_status(conn: Connection, as_of: dt.date, scope: Scope, own_last=None, helpers=None):
    """One row per active in-scope pairing on as_of with its last in-home visit by its visitors
    (``last_visit``), plus the reference-date and cut-off expressions over that row.
    Shared by the counts, the overdue list and the stored pairing status. ``own_last``: a subquery of
    household_id, helper_id, last (see ``pairing_dates``)."""
    if own_last is not None:
        own_last = select(own_last.c.household_id, own_last.c.helper_id, own_last.c.last.label("last_0")).subquery(
            "own_last_0")
    rows = pairing_dates(conn, [as_of], scope, own_last, helpers).subquery("pd")
    p = rows
    ps = (
        select(rows.c.pairing_id, rows.c.helper_id, rows.c.household_id, rows.c.start_date, rows.c.unit_id,
               rows.c.interval_months, rows.c.village_code, rows.c.last_0.label("last_visit"))
        .where(active_on(p, as_of))
        # materialised so that last_visit is looked up once per pairing, not once per reference to it
        .cte("ps").prefix_with("MATERIALIZED")
    )
    return ps, reference_date(ps.c.last_visit, ps.c.start_date), cutoff_on(ps, as_of)


# --- M3 as spans: the overdue stretches of every pairing, for any date ------------------------------------
# ref(p) on D is a step function of D: the pairing's start, then each in-home visit by one of its visitors.
# While ref(p) = t, p is overdue on the days D with t < months_before(D, k) — from overdue_deadline(t, k) on,
# since months_before is non-decreasing in D — until ref(p) moves on (the next visit) or the pairing ends.
# The refresh stores those stretches (schema.overdue_spans); the overdue pairings of a date D are the spans
# with overdue_from <= D < overdue_to, exactly those for which overdue_on holds (tests/test_spans.py).
SPAN_OPEN = dt.date(9999, 12, 31)  # overdue_to of a span still open at the ledger's end
# A closed span is stored in pieces of at most SPAN_CHUNK days, so that the spans containing D are found by
# an index range over overdue_from in (D - SPAN_CHUNK, D] (plus the open spans with overdue_from <= D):
# a read of about the day's overdue pairings whatever the date, not of every span that ended after it.
SPAN_CHUNK = 61
MIN_DEADLINE_DAYS = 58  # overdue_deadline(t, k) - t > 58 days for k >= 2 (tests/test_spans.py)


def days_diff(conn: Connection, later, earlier) -> ColumnElement:
    """later - earlier in whole days, two date columns, on either database."""
    if conn.dialect.name == "postgresql":
        return later - earlier
    return func.cast(func.julianday(later) - func.julianday(earlier), Integer)


def add_days(conn: Connection, col, n) -> ColumnElement:
    """A date column plus n days (n an integer expression), on either database."""
    if conn.dialect.name == "postgresql":
        return col + n
    return func.date(col, literal("+") + func.cast(n, String) + literal(" days"), type_=schema.Date)


def overdue_deadline(conn: Connection, t, k) -> ColumnElement:
    """The first day D with months_before(D, k) > t (t a date column, k a month count column): with
    u = t + 1 day, the day u.day of u's month + k, or the 1st of the month after that when it has no such day
    (t = 2026-02-28, k = 2: 2026-05-01, because months_before(2026-04-30, 2) = 2026-02-28)."""
    if conn.dialect.name == "postgresql":
        u = t + literal(1)
        first = func.cast(func.date_trunc("month", u) + func.make_interval(0, k), schema.Date)
        same_day = first + (func.cast(func.extract("day", u), Integer) - literal(1))
        return func.least(same_day, func.cast(first + func.make_interval(0, 1), schema.Date), type_=schema.Date)
    u = func.date(t, "+1 day")
    first = func.date(u, "start of month", literal("+") + func.cast(k, String) + literal(" months"))
    same_day = func.date(first, literal("+") + func.cast(func.cast(func.strftime("%d", u), Integer) - 1, String)
                         + literal(" days"))
    return func.min(same_day, func.date(first, "+1 month"), type_=schema.Date)


def span_pairings():
    """Every pairing with an in-scope household and what its visitors and interval are: the input of the
    overdue spans (``pairing_dates``'s rows without the dates)."""
    p, hh, h, u = T_PAIR.alias("sp_p"), T_HH.alias("sp_hh"), T_HELP.alias("sp_h"), T_UNIT.alias("sp_u")
    dept = department_based(h, u)
    return (
        select(p.c.pairing_id, p.c.helper_id, p.c.household_id, p.c.start_date, p.c.end_date, h.c.unit_id,
               h.c.department, case((dept, 1), else_=0).label("dept"),
               case((dept, DEPARTMENT_INTERVAL_MONTHS), else_=INTERVAL_MONTHS).label("interval_months"),
               hh.c.village_code.label("village_code"))
        .select_from(p.join(hh, hh.c.household_id == p.c.household_id).join(h, h.c.helper_id == p.c.helper_id)
                     .join(u, u.c.unit_id == h.c.unit_id))
        .where(in_scope(hh))
    )


def span_t0(sp, since: dt.date):
    """Per pairing in ``sp`` the last reference date strictly before ``since`` (its start, or its visitors' latest
    in-home visit inside (start, end) before ``since``): the segments from there on are all a visit on or after
    ``since`` can change. A select of pairing_id, t0 (its start when it starts on or after ``since``)."""
    v, vh = T_VIS.alias("tv"), T_HELP.alias("tvh")
    inside = and_(v.c.mode == "in_home", v.c.visit_date > sp.c.start_date, v.c.visit_date < since,
                  or_(sp.c.end_date.is_(None), v.c.visit_date < sp.c.end_date))
    own = (select(func.max(v.c.visit_date)).where(v.c.household_id == sp.c.household_id,
                                                  v.c.helper_id == sp.c.helper_id, inside).scalar_subquery())
    dept = (select(func.max(v.c.visit_date)).select_from(v.join(vh, vh.c.helper_id == v.c.helper_id))
            .where(v.c.household_id == sp.c.household_id, vh.c.unit_id == sp.c.unit_id,
                   vh.c.department == sp.c.department, inside).scalar_subquery())
    last = case((sp.c.dept == 1, dept), else_=own)
    return select(sp.c.pairing_id, func.coalesce(last, sp.c.start_date).label("t0"))


def span_segments(conn: Connection, sp, t0=None):
    """The reference dates of the pairings in ``sp`` (a table of ``span_pairings`` rows): per pairing its
    start and the distinct in-home visit dates by its visitors strictly inside (start, end), each with the
    next one (next_t, LEAD): ref(p) = t on the days t <= D < next_t. A select of pairing_id, t, next_t.
    ``t0`` (a table of ``span_t0`` rows, one per pairing of ``sp``): only the reference dates from t0 on."""
    v, vh = T_VIS.alias("sv"), T_HELP.alias("svh")
    inside = and_(v.c.mode == "in_home", v.c.visit_date > sp.c.start_date,
                  or_(sp.c.end_date.is_(None), v.c.visit_date < sp.c.end_date))
    own = (select(sp.c.pairing_id, v.c.visit_date.label("t"))
           .select_from(sp.join(v, and_(v.c.household_id == sp.c.household_id, v.c.helper_id == sp.c.helper_id)))
           .where(sp.c.dept == 0, inside))
    dept = (select(sp.c.pairing_id, v.c.visit_date.label("t"))
            .select_from(sp.join(v, v.c.household_id == sp.c.household_id).join(vh, vh.c.helper_id == v.c.helper_id))
            .where(sp.c.dept == 1, vh.c.unit_id == sp.c.unit_id, vh.c.department == sp.c.department, inside))
    starts = select(sp.c.pairing_id, sp.c.start_date.label("t"))
    if t0 is not None:
        own = own.join_from(sp, t0, t0.c.pairing_id == sp.c.pairing_id).where(v.c.visit_date >= t0.c.t0)
        dept = dept.join_from(sp, t0, t0.c.pairing_id == sp.c.pairing_id).where(v.c.visit_date >= t0.c.t0)
        starts = starts.join_from(sp, t0, t0.c.pairing_id == sp.c.pairing_id).where(sp.c.start_date >= t0.c.t0)
    # UNION ALL: two visits on one day make a segment [t, t) that no span comes from (overdue_from > t)
    ev = starts.union_all(own, dept).subquery("ev")
    seg = select(ev.c.pairing_id, ev.c.t, func.lead(ev.c.t, type_=schema.Date).over(
        partition_by=ev.c.pairing_id, order_by=ev.c.t).label("next_t")).subquery("seg")
    # only the segments long enough to hold an overdue day: the deadline is at least two calendar months
    # (59 days) after t, so a segment whose next reference date comes sooner has no overdue day
    return select(seg).where(or_(seg.c.next_t.is_(None), seg.c.next_t > add_days(conn, seg.c.t, literal(MIN_DEADLINE_DAYS))))


def overdue_span_rows(conn: Connection, sp, seg):
    """The overdue spans of the pairings in ``sp`` (a table of ``span_pairings`` rows) from their
    reference dates ``seg`` (a table of ``span_segments`` rows), as a select of the columns of
    schema.overdue_spans: while ref(p) = t, from overdue_deadline(t, k) until next_t or the pairing's end."""
    q = sp.alias("q")
    stop = case((seg.c.next_t.is_(None), func.coalesce(q.c.end_date, literal(SPAN_OPEN))),
                (q.c.end_date.is_(None), seg.c.next_t),
                (seg.c.next_t < q.c.end_date, seg.c.next_t), else_=q.c.end_date)
    begin = overdue_deadline(conn, seg.c.t, q.c.interval_months)
    s = (select(q.c.pairing_id, q.c.helper_id, q.c.household_id, q.c.unit_id, q.c.village_code, q.c.start_date,
                q.c.interval_months, q.c.dept, q.c.department, seg.c.t.label("ref_date"),
                begin.label("overdue_from"), stop.label("overdue_to"))
         .select_from(seg.join(q, q.c.pairing_id == seg.c.pairing_id))).subquery("spans")
    # last(p) on a span from the start: the latest visit by the visitors on or before the start day (looked
    # up for those spans only)
    lv, lvh = T_VIS.alias("lv"), T_HELP.alias("lvh")
    before = (select(func.max(lv.c.visit_date)).select_from(lv.join(lvh, lvh.c.helper_id == lv.c.helper_id))
              .where(lv.c.household_id == s.c.household_id, lv.c.mode == "in_home", lv.c.visit_date <= s.c.start_date,
                     or_(and_(s.c.dept == 0, lv.c.helper_id == s.c.helper_id),
                         and_(s.c.dept == 1, lvh.c.unit_id == s.c.unit_id, lvh.c.department == s.c.department)))
              .scalar_subquery())
    whole = (select(s.c.pairing_id, s.c.helper_id, s.c.household_id, s.c.unit_id, s.c.village_code, s.c.start_date,
                    s.c.interval_months, s.c.ref_date,
                    case((s.c.ref_date == s.c.start_date, before), else_=s.c.ref_date).label("last_visit"),
                    s.c.overdue_from, s.c.overdue_to)
             .where(s.c.overdue_from < s.c.overdue_to))
    return whole


def span_pieces(conn: Connection, spans, chunks):
    """The spans (a table of ``overdue_span_rows``) with each closed one cut into pieces of at most
    SPAN_CHUNK days; ``chunks``: a table of integers i = 0, 1, … (column i) long enough for the longest."""
    w, c = spans, chunks
    lo = add_days(conn, w.c.overdue_from, c.c.i * SPAN_CHUNK)
    hi = add_days(conn, w.c.overdue_from, (c.c.i + 1) * SPAN_CHUNK)
    cols = [w.c[n] for n in ("pairing_id", "helper_id", "household_id", "unit_id", "village_code", "start_date",
                             "interval_months", "ref_date", "last_visit")]
    closed = w.c.overdue_to != SPAN_OPEN
    long_ = days_diff(conn, w.c.overdue_to, w.c.overdue_from) > SPAN_CHUNK
    pieces = (select(*cols, lo.label("overdue_from"), case((hi < w.c.overdue_to, hi), else_=w.c.overdue_to)
                     .label("overdue_to"))
              .select_from(w.join(c, lo < w.c.overdue_to)).where(closed, long_))
    whole = select(*cols, w.c.overdue_from, w.c.overdue_to).where(or_(~closed, ~long_))
    return whole.union_all(pieces)


def active_pairing_rows(conn: Connection, as_of: dt.date, scope: Scope, helpers=None):
    """The active in-scope pairings of a date without their visits (pairing_id, helper_id, village_code,
    unit_id): ``pairing_dates``'s conditions, no last-visit lookup."""
    p, hh, h = T_PAIR.alias("ap_p"), T_HH.alias("ap_hh"), T_HELP.alias("ap_h")
    base = p.join(hh, hh.c.household_id == p.c.household_id).join(h, h.c.helper_id == p.c.helper_id)
    base, scoped = _pairing_scope(conn, base, p, hh, h, scope, helpers, "ap_r")
    conds = [active_on(p, as_of), in_scope(hh), *scoped]
    return select(p.c.pairing_id, p.c.helper_id, hh.c.village_code.label("village_code"),
                  h.c.unit_id.label("unit_id")).select_from(base).where(*conds)


def _cadence_rows(conn: Connection, as_of: dt.date, scope: Scope, own_last=None):
    """M3 fact rows: one per active in-scope pairing (household's village, helper's unit;
    active_pairings=1, overdue)."""
    ps, ref, cutoff = _pairing_status(conn, as_of, scope, own_last)
    return select(
        ps.c.village_code.label("village_code"),
        ps.c.unit_id.label("unit_id"),
        literal(1).label("active_pairings"),
        case((ref < cutoff, 1), else_=0).label("overdue"),
    ).select_from(ps)


# --------------------------------------------------------------------------------------------
# M4 ratings
# --------------------------------------------------------------------------------------------


def _ratings_rows(conn: Connection, year: int, scope: Scope):
    """M4 fact rows: one per helper rated for the year or paired during it (unit_id; a 1 in the
    grade's field, or in missing)."""
    h, u, ur = T_HELP.alias("h"), T_UNIT.alias("u"), T_REG.alias("ur")
    rt = T_RATE.alias("rt")
    p, hh = T_PAIR.alias("yp"), T_HH.alias("yh")
    paired = (
        select(p.c.helper_id)
        .select_from(p.join(hh, hh.c.household_id == p.c.household_id))
        .where(active_in_year(p, year), in_scope(hh))
        .distinct()
        .subquery("paired")
    )
    return (
        select(
            literal(None, String).label("village_code"),
            h.c.unit_id.label("unit_id"),
            h.c.helper_id.label("helper_id"),
            *[case((rt.c.grade == g, 1), else_=0).label(g) for g in schema.GRADES],
            case((and_(rt.c.grade.is_(None), paired.c.helper_id.is_not(None)), 1), else_=0).label("missing"),
        )
        .select_from(
            h.join(u, u.c.unit_id == h.c.unit_id)
            .join(ur, ur.c.code == u.c.region_code)
            .outerjoin(rt, and_(rt.c.helper_id == h.c.helper_id, rt.c.year == year))
            .outerjoin(paired, paired.c.helper_id == h.c.helper_id)
        )
        .where(or_(rt.c.grade.is_not(None), paired.c.helper_id.is_not(None)), *_helper_scope(conn, h, u, ur, scope))
    )


# --------------------------------------------------------------------------------------------
# M5 replacements, M6 photos
# --------------------------------------------------------------------------------------------


def _replacement_cond(p, as_of: dt.date) -> ColumnElement:
    return and_(p.c.end_date.is_not(None), p.c.end_date <= as_of, p.c.end_reason.in_(REPLACEMENT_REASONS))


def _unapproved_cond(p) -> ColumnElement:
    return or_(p.c.approved.is_(None), p.c.approved == false())


def _replacement_rows(conn: Connection, as_of: dt.date, scope: Scope):
    """M5 fact rows: one per replacement ended on or before the date (unit_id; replacements=1, unapproved)."""
    rows = replacements_on(conn, [as_of], scope).subquery("rp")
    return select(literal(None, String).label("village_code"), rows.c.unit_id, rows.c.replacements_0.label("replacements"),
                  rows.c.unapproved_0.label("unapproved")).where(rows.c.replacements_0 == 1)


def replacements_on(conn: Connection, dates: list[dt.date], scope: Scope):
    """M5 for several dates in one pass: one row per pairing of an in-scope household that is a
    replacement by the last date (unit_id), with replacements_<i> and unapproved_<i> (0/1) for dates[i]."""
    p, hh = T_PAIR.alias("p"), T_HH.alias("hh")
    h, u, ur = T_HELP.alias("h"), T_UNIT.alias("u"), T_REG.alias("ur")
    cols = []
    for i, d in enumerate(dates):
        cols += [case((_replacement_cond(p, d), 1), else_=0).label(f"replacements_{i}"),
                 case((and_(_replacement_cond(p, d), _unapproved_cond(p)), 1), else_=0).label(f"unapproved_{i}")]
    return (
        select(h.c.unit_id.label("unit_id"), *cols)
        .select_from(
            p.join(hh, hh.c.household_id == p.c.household_id)
            .join(h, h.c.helper_id == p.c.helper_id)
            .join(u, u.c.unit_id == h.c.unit_id)
            .join(ur, ur.c.code == u.c.region_code)
        )
        .where(_replacement_cond(p, max(dates)), in_scope(hh), *_helper_scope(conn, h, u, ur, scope))
    )


def _photo_rows(conn: Connection, start: dt.date, end: dt.date, scope: Scope):
    """M6 fact rows: one per in-home visit to an in-scope household dated start..end (with its date)."""
    v, hh, hr = T_VIS.alias("v"), T_HH.alias("hh"), T_REG.alias("hr")
    h = T_HELP.alias("h")
    q = (
        select(
            hh.c.village_code.label("village_code"),
            h.c.unit_id.label("unit_id"),
            literal(1).label("in_home_visits"),
            case((v.c.photo_uploaded == true(), 1), else_=0).label("with_photo"),
            v.c.visit_date,
        )
        .select_from(
            v.join(hh, hh.c.household_id == v.c.household_id)
            .join(hr, hr.c.code == hh.c.village_code)
            .join(h, h.c.helper_id == v.c.helper_id)
        )
        .where(v.c.mode == "in_home", v.c.visit_date >= start, v.c.visit_date <= end, in_scope(hh),
               _region_filter(conn, hr, scope.region))
    )
    if scope.unit:
        q = q.where(h.c.unit_id == scope.unit)
    return q


