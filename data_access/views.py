"""Lists for the dashboard pages that the metric engine does not already provide: the region tree
for the filter bar and drill-down, one sending unit's helpers, one helper's households and visits,
missing ratings and helpers rated excellent despite problems.

Every rule comes from ``metrics`` / ``problems`` (RULES.md has one implementation); this module only
joins their results with names. Personal data is masked with ``privacy.mask_frame`` unless the caller
passes ``unmasked=True`` (pages never do). No streamlit here: the package is shared with the CLI.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Integer, case, func, inspect, literal, or_, select, text, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import metrics as m
from . import rules
from . import problems as pb
from . import schema, summary
from .db import BangfuError, safe_url, short_error
from .scope import ALL, Conn, Scope
from .privacy import mask_frame
from .schema import LEVEL_RANK, LEVELS

LEVEL_ZH = {"province": "省", "city": "市", "county": "县（市、区）", "township": "乡镇", "village": "村"}
UNIT_LEVEL_ZH = {"province": "省直", "city": "市直", "county": "县直", "township": "乡镇"}
GRADE_ZH = {"excellent": "优秀", "qualified": "合格", "unqualified": "不合格"}
MODE_ZH = {"in_home": "入户走访", "phone": "电话", "sms": "短信", "wechat": "微信"}

# Chinese column titles for the lists built here (on top of problems.TITLES)
TITLES = {
    **pb.TITLES,
    "level": "级别", "region_code": "所属区划代码", "region_name": "所属区划", "helpers": "帮扶责任人数",
    "last_home_visit": "本人最近入户走访", "overdue": "逾期结对数", "active_pairings": "在帮结对数",
    "grade": "考核等次", "active": "在帮", "visit_date": "走访日期", "mode": "走访方式", "photo_uploaded": "上传照片",
    "visit_id": "走访编号", "is_overdue": "逾期", "problems": "问题", "checked_on": "核查日期", "year": "年度",
    "position": "职务",
}
PERSONAL = {"helper_name": "name", "head_name": "name", "phone": "phone", "id_number": "id"}


# --------------------------------------------------------------------------------------------
# Database state (for the app's start-up check)
# --------------------------------------------------------------------------------------------


def database_status(engine: Engine) -> str:
    """'no_schema' (tables missing), 'blank' (no ledger rows at all), 'empty' (some ledger rows but no
    households) or 'ok'. Raises BangfuError with one plain sentence when the database cannot be reached."""
    try:
        names = set(inspect(engine).get_table_names())
        if not all(t.name in names for t in schema.metadata.sorted_tables):
            return "no_schema"
        with engine.connect() as conn:
            if conn.execute(select(schema.households.c.household_id).limit(1)).first():
                return "ok"
            for t in schema.LEDGER_TABLES.values():
                if conn.execute(select(func.count()).select_from(t)).scalar():
                    return "empty"
        return "blank"
    except SQLAlchemyError as exc:
        raise BangfuError(f"无法连接数据库 {safe_url(str(engine.url))}：{short_error(exc)}") from exc


# --------------------------------------------------------------------------------------------
# Regions and units: filter bar and drill-down
# --------------------------------------------------------------------------------------------


def child_level(level: str | None) -> str | None:
    """The drill level below a region level (None below villages); None/'' means the province."""
    if not level:
        return "city"
    rank = LEVEL_RANK.get(level)
    if rank is None or rank + 1 >= len(LEVELS):
        return None
    return LEVELS[rank + 1]


def region_info(bind, code: str | None) -> dict | None:
    """code, name, level, parent_code and the ancestor-or-self code at every level; None if unknown."""
    if not code:
        return None
    r = schema.regions
    with Conn(bind) as conn:
        row = conn.execute(select(r).where(r.c.code == str(code).strip())).mappings().first()
    return dict(row) if row else None


def region_path(bind, code: str | None) -> list[dict]:
    """The region and its ancestors, province first: [{code, name, level}, ...]."""
    info = region_info(bind, code)
    if not info:
        return []
    codes = [info[f"{lvl}_code"] for lvl in LEVELS if info.get(f"{lvl}_code")]
    r = schema.regions
    with Conn(bind) as conn:
        rows = {x.code: x for x in conn.execute(select(r.c.code, r.c.name, r.c.level).where(r.c.code.in_(codes)))}
    return [{"code": c, "name": rows[c].name, "level": rows[c].level} for c in codes if c in rows]


def list_regions(bind, parent_code: str | None = None, level: str | None = None) -> pd.DataFrame:
    """Regions (code, name, level) with the given parent and/or level, sorted by code."""
    r = schema.regions
    q = select(r.c.code, r.c.name, r.c.level)
    if parent_code:
        q = q.where(r.c.parent_code == parent_code)
    if level:
        q = q.where(r.c.level == level)
    with Conn(bind) as conn:
        rows = conn.execute(q.order_by(r.c.code)).all()
    return pd.DataFrame([tuple(x) for x in rows], columns=["code", "name", "level"])


def list_units(bind, region: str | None = None) -> pd.DataFrame:
    """Sending units (unit_id, name, level, region_code, region_name) whose region lies under
    `region` (all units without one), sorted by unit_id."""
    u, ur = schema.units.alias("u"), schema.regions.alias("ur")
    with Conn(bind) as conn:
        q = (
            select(u.c.unit_id, u.c.name, u.c.level, u.c.region_code, ur.c.name.label("region_name"))
            .select_from(u.join(ur, ur.c.code == u.c.region_code))
            .where(rules._region_filter(conn, ur, region))
            .order_by(u.c.unit_id)
        )
        rows = conn.execute(q).all()
    return pd.DataFrame([tuple(x) for x in rows], columns=["unit_id", "name", "level", "region_code", "region_name"])


def unit_options(bind, region: str | None = None) -> pd.DataFrame:
    """unit_id and name of the sending units ``list_units`` gives, for a select box: without a region
    read from the units table alone (in its primary key order), without the join to the regions."""
    if region:
        return list_units(bind, region)[["unit_id", "name"]]
    u = schema.units
    with Conn(bind) as conn:
        rows = conn.execute(select(u.c.unit_id, u.c.name).order_by(u.c.unit_id)).all()
    return pd.DataFrame([tuple(x) for x in rows], columns=["unit_id", "name"])


def unit_info(bind, unit_id: str | None) -> dict | None:
    if not unit_id:
        return None
    u, ur = schema.units.alias("u"), schema.regions.alias("ur")
    q = (
        select(u.c.unit_id, u.c.name, u.c.level, u.c.region_code, ur.c.name.label("region_name"))
        .select_from(u.outerjoin(ur, ur.c.code == u.c.region_code))
        .where(u.c.unit_id == str(unit_id).strip())
    )
    with Conn(bind) as conn:
        row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def _helper_unit_seat(conn, helper_id: str):
    """(unit_id, region row of the unit's seat) of a helper; (None, None) when unknown."""
    h, u, ur = schema.helpers.alias("sh"), schema.units.alias("su"), schema.regions.alias("sur")
    row = conn.execute(
        select(h.c.unit_id, ur).select_from(h.outerjoin(u, u.c.unit_id == h.c.unit_id)
                                           .outerjoin(ur, ur.c.code == u.c.region_code))
        .where(h.c.helper_id == helper_id)
    ).mappings().first()
    if row is None:
        return None, None
    return row["unit_id"], (row if row["code"] is not None else None)


def _helper_access(conn, helper_id: str, scope: Scope) -> tuple[str, str | None]:
    """How much of one helper's pairings and visits a scope may see: ("all", None) when the helper's
    unit is seated under the scope's region (and is the scope's unit, if any); ("region", level) for a
    region scope otherwise — only rows with households under the region; ("none", None) for an unknown
    helper, an unknown region or a unit scope of another unit."""
    if scope == ALL:
        return "all", None
    unit_id, seat = _helper_unit_seat(conn, helper_id)
    if unit_id is None or (scope.unit and unit_id != scope.unit):
        return "none", None
    if not scope.region:
        return "all", None
    level = conn.execute(select(schema.regions.c.level).where(schema.regions.c.code == scope.region)).scalar()
    if level is None:
        return "none", None
    if seat is not None and seat.get(f"{level}_code") == scope.region:
        return "all", None
    return "region", level


def _helper_household_filter(conn, helper_id: str, scope: Scope, region_alias):
    """``_helper_access`` as a condition on the household's region (``region_alias``, joined on the
    household's village)."""
    from sqlalchemy import false, true

    access, level = _helper_access(conn, helper_id, scope)
    if access == "all":
        return true()
    if access == "none":
        return false()
    return region_alias.c[f"{level}_code"] == scope.region


def helper_visible(bind, helper_id: str | None, scope: Scope = ALL) -> bool:
    """Whether a helper's page may be opened within a scope: the helper exists and its unit is seated
    under the scope (and is the scope's unit, if any), or — for a region scope — the helper has a
    pairing with a household under the region (what the region's overdue list shows)."""
    if not helper_id:
        return False
    helper_id = str(helper_id).strip()
    with Conn(bind) as conn:
        if conn.execute(select(schema.helpers.c.helper_id).where(schema.helpers.c.helper_id == helper_id)).first() is None:
            return False
        access, level = _helper_access(conn, helper_id, scope)
        if access != "region":
            return access == "all"
        p, hh, r = schema.pairings.alias("vp"), schema.households.alias("vh"), schema.regions.alias("vr")
        q = (
            select(p.c.pairing_id)
            .select_from(p.join(hh, hh.c.household_id == p.c.household_id).join(r, r.c.code == hh.c.village_code))
            .where(p.c.helper_id == helper_id, r.c[f"{level}_code"] == scope.region)
            .limit(1)
        )
        return conn.execute(q).first() is not None


def helper_info(bind, helper_id: str | None, unmasked: bool = False, scope: Scope = ALL) -> dict | None:
    """One helper with unit name; name and phone masked. None when unknown, or not visible within
    ``scope`` (``helper_visible``)."""
    if not helper_id:
        return None
    if scope != ALL and not helper_visible(bind, helper_id, scope):
        return None
    h, u = schema.helpers.alias("h"), schema.units.alias("u")
    q = (
        select(h.c.helper_id, h.c.name.label("helper_name"), h.c.unit_id, u.c.name.label("unit_name"),
               h.c.department, h.c.category, h.c.position, h.c.phone)
        .select_from(h.outerjoin(u, u.c.unit_id == h.c.unit_id))
        .where(h.c.helper_id == str(helper_id).strip())
    )
    with Conn(bind) as conn:
        row = conn.execute(q).mappings().first()
    if not row:
        return None
    df = mask_frame(pd.DataFrame([dict(row)]), PERSONAL, unmasked)
    out = df.iloc[0].to_dict()
    out["category"] = pb.CATEGORY_ZH.get(out["category"], out["category"])
    return out


def rating_years(bind) -> list[int]:
    """Years that have at least one rating, newest first.

    A loose index scan over ix_ratings_year (a recursive query that jumps from one year to the next
    lower one): one index probe per year instead of reading every rating."""
    r, nr = schema.ratings.alias("ry"), schema.ratings.alias("ry_next")
    years = select(func.max(r.c.year).label("year")).cte("years", recursive=True)
    lower = select(func.max(nr.c.year)).where(nr.c.year < years.c.year).scalar_subquery()
    years = years.union_all(select(lower.label("year")).select_from(years).where(years.c.year.is_not(None)))
    with Conn(bind) as conn:
        rows = conn.execute(select(years.c.year).where(years.c.year.is_not(None))).scalars().all()
    return sorted((int(y) for y in rows), reverse=True)


# --------------------------------------------------------------------------------------------
# One sending unit, one helper
# --------------------------------------------------------------------------------------------


def _no_jit(conn) -> None:
    """PostgreSQL: no JIT compilation for the rest of the current transaction. The per-pairing lists
    below are single queries whose estimated cost (an index probe per pairing) is far above
    jit_above_cost, and compiling them took longer than running them (province-wide at 1M households:
    15 s of JIT compilation in an 18 s run). Only this transaction: the connection is back to the
    server's setting once it ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL jit = off"))


def _pairing_status_of(conn, as_of: dt.date, scope: Scope, helpers):
    """``rules._pairing_status`` holding only the pairings of ``helpers`` (a select of helper ids).

    Where the building block would take last(p) from one aggregate pass over every visit (a province-
    or city-wide question on PostgreSQL), that pass is limited to the visits of the households these
    pairings are with (``rules.own_last_visits(as_of, households)``), which is all that last(p) of
    these pairings reads, a department colleague's visits included."""
    own_last = None
    if rules._wide(conn, scope):
        p = rules.T_PAIR.alias("wp")
        own_last = rules.own_last_visits(
            as_of, select(p.c.household_id).where(p.c.helper_id.in_(helpers), rules.active_on(p, as_of)))
    return rules._pairing_status(conn, as_of, scope, own_last, helpers=helpers)


def _pairing_gaps_of(conn, as_of: dt.date, scope: Scope, helpers):
    """``problems.pairing_gaps`` (helper_id, is_overdue 0/1) holding only the pairings of ``helpers``:
    the stored pairing status of the date when there is one, else ``_pairing_status_of``."""
    if summary.status_date(conn, as_of):
        g = pb.pairing_gaps(conn, as_of, scope)  # stored rows: a plain select, filtered where it reads them
        return select(g.c.helper_id, g.c.is_overdue).where(g.c.helper_id.in_(helpers)).subquery("gaps")
    if summary.spans_stored(conn):  # the active pairings (no visit read) and those of them in an overdue span
        a = rules.active_pairing_rows(conn, as_of, scope, helpers).subquery("act")
        o = summary.spans_on(conn, as_of, scope, helpers).subquery("ovd")
        return (select(a.c.helper_id, case((o.c.pairing_id.is_(None), 0), else_=1).label("is_overdue"))
                .select_from(a.outerjoin(o, o.c.pairing_id == a.c.pairing_id)).subquery("gaps"))
    ps, ref, cutoff = _pairing_status_of(conn, as_of, scope, helpers)
    return select(ps.c.helper_id, case((ref < cutoff, 1), else_=0).label("is_overdue")).subquery("gaps")


def _scope_helpers(conn, scope: Scope):
    """The helper ids a helper-based list of the scope shows (``rules._helper_scope``), as a select."""
    h, u, ur = rules.T_HELP.alias("sh"), rules.T_UNIT.alias("su"), rules.T_REG.alias("sur")
    return (
        select(h.c.helper_id)
        .select_from(h.join(u, u.c.unit_id == h.c.unit_id).join(ur, ur.c.code == u.c.region_code))
        .where(*rules._helper_scope(conn, h, u, ur, scope))
    )


def _last_own_home_visit(helper_id, as_of: dt.date):
    """The latest in-home visit the helper made up to the date: one probe of the index on visits
    (helper_id, mode, visit_date) per helper."""
    v = schema.visits.alias("ov")
    return (
        select(func.max(v.c.visit_date))
        .where(v.c.helper_id == helper_id, v.c.mode == "in_home", v.c.visit_date <= as_of)
        .scalar_subquery()
    )


def unit_helpers(bind, as_of: dt.date, year: int, scope: Scope, unmasked: bool = False) -> pd.DataFrame:
    """The helpers of the scope (normally one sending unit): load on the date (M2), their own latest
    in-home visit, active and overdue pairings (M3) and the rating for `year`.

    Pairings are counted as on the overdue list (problems.overdue) of the unit, or, for a region
    scope, of the region (pairings with households under it). Everything is restricted to the scope's
    helpers before grouping and before any visit is looked up."""
    with Conn(bind) as conn:
        _no_jit(conn)
        h, u, ur = rules.T_HELP.alias("h"), rules.T_UNIT.alias("u"), rules.T_REG.alias("ur")
        shown = _scope_helpers(conn, scope)
        loads = pb.helper_loads(conn, as_of, helpers=shown)
        gaps = _pairing_gaps_of(conn, as_of, Scope(unit=scope.unit) if scope.unit else scope, shown)
        counts = (
            select(gaps.c.helper_id, func.count().label("active_pairings"),
                   func.sum(gaps.c.is_overdue).label("overdue"))
            .group_by(gaps.c.helper_id)
            .subquery("counts")
        )
        rt = rules.T_RATE.alias("rt")
        q = (
            select(h.c.helper_id, h.c.name.label("helper_name"), h.c.unit_id, u.c.name.label("unit_name"),
                   h.c.department, h.c.category, h.c.phone, func.coalesce(loads.c.load, 0).label("load"),
                   _last_own_home_visit(h.c.helper_id, as_of).label("last_home_visit"), rt.c.grade,
                   func.coalesce(counts.c.active_pairings, 0), func.coalesce(counts.c.overdue, 0))
            .select_from(
                h.join(u, u.c.unit_id == h.c.unit_id)
                .join(ur, ur.c.code == u.c.region_code)
                .outerjoin(loads, loads.c.helper_id == h.c.helper_id)
                .outerjoin(counts, counts.c.helper_id == h.c.helper_id)
                .outerjoin(rt, (rt.c.helper_id == h.c.helper_id) & (rt.c.year == year))
            )
            .where(*rules._helper_scope(conn, h, u, ur, scope))
        )
        rows = conn.execute(q).all()
    df = pd.DataFrame([tuple(x) for x in rows], columns=[
        "helper_id", "helper_name", "unit_id", "unit_name", "department", "category", "phone", "load",
        "last_home_visit", "grade", "active_pairings", "overdue"])
    for c in ("active_pairings", "overdue", "load"):
        df[c] = df[c].astype("int64")
    df["category"] = df["category"].map(pb.CATEGORY_ZH)
    df["grade"] = df["grade"].map(GRADE_ZH)
    df["last_home_visit"] = [_as_date(x) for x in df["last_home_visit"]]
    df = df.sort_values(["load", "helper_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return mask_frame(df, PERSONAL, unmasked)


def helper_pairings(bind, as_of: dt.date, helper_id: str, unmasked: bool = False, scope: Scope = ALL) -> pd.DataFrame:
    """Every pairing of one helper that started on or before the date: household, place, period,
    whether active on the date and, for active in-scope ones, the last visit, gap and overdue flag (M3).
    Within a ``scope``, only what ``_helper_household_filter`` lets it see."""
    with Conn(bind) as conn:
        p, hh = rules.T_PAIR.alias("p"), rules.T_HH.alias("hh")
        sr = rules.T_REG.alias("psr")
        base, places = pb._place_join(
            p.join(hh, hh.c.household_id == p.c.household_id).join(sr, sr.c.code == hh.c.village_code),
            hh.c.village_code)
        q = (
            select(p.c.pairing_id, p.c.household_id, hh.c.head_name, hh.c.status,
                   places["village"].label("village"), places["township"].label("township"),
                   places["county"].label("county"), p.c.start_date, p.c.end_date, p.c.end_reason, p.c.approved,
                   rules.active_on(p, as_of).label("active"))
            .select_from(base)
            .where(p.c.helper_id == helper_id, p.c.start_date <= as_of,
                   _helper_household_filter(conn, helper_id, scope, sr))
        )
        rows = conn.execute(q).all()
        df = pd.DataFrame([tuple(x) for x in rows], columns=[
            "pairing_id", "household_id", "head_name", "status", "village", "township", "county", "start_date",
            "end_date", "end_reason", "approved", "active"])
        unit = conn.execute(select(rules.T_HELP.c.unit_id).where(rules.T_HELP.c.helper_id == helper_id)).scalar()
        status = pb.overdue(conn, as_of, Scope(unit=unit), include_all=True) if unit else None
    if status is not None and len(status):
        status = status[status["helper_id"] == helper_id][["pairing_id", "last_visit", "gap_days", "interval_months",
                                                            "is_overdue"]]
        df = df.merge(status, how="left", on="pairing_id")
    else:
        for c in ("last_visit", "gap_days", "interval_months", "is_overdue"):
            df[c] = None
    df["active"] = df["active"].astype(bool)
    df["status"] = df["status"].map(pb.STATUS_ZH)
    df["end_reason"] = df["end_reason"].map(pb.END_REASON_ZH)
    for c in ("start_date", "end_date", "last_visit"):
        df[c] = [_as_date(x) for x in df[c]]
    df["gap_days"] = df["gap_days"].astype("Int64")
    df["interval_months"] = df["interval_months"].astype("Int64")
    df["is_overdue"] = df["is_overdue"].astype("boolean")
    df = df.sort_values(["active", "start_date", "pairing_id"], ascending=[False, False, True],
                        kind="stable").reset_index(drop=True)
    return mask_frame(df, PERSONAL, unmasked)


def helper_visits(bind, helper_id: str, start: dt.date | None = None, end: dt.date | None = None,
                  unmasked: bool = False, scope: Scope = ALL) -> pd.DataFrame:
    """Contacts one helper made (any mode) dated start..end inclusive, oldest first. Within a ``scope``,
    only what ``_helper_household_filter`` lets it see."""
    v, hh = rules.T_VIS.alias("v"), rules.T_HH.alias("hh")
    sr = rules.T_REG.alias("vsr")
    q = (
        select(v.c.visit_id, v.c.visit_date, v.c.household_id, hh.c.head_name, v.c.mode, v.c.photo_uploaded)
        .select_from(v.outerjoin(hh, hh.c.household_id == v.c.household_id)
                     .outerjoin(sr, sr.c.code == hh.c.village_code))
        .where(v.c.helper_id == helper_id)
    )
    if start:
        q = q.where(v.c.visit_date >= start)
    if end:
        q = q.where(v.c.visit_date <= end)
    with Conn(bind) as conn:
        q = q.where(_helper_household_filter(conn, helper_id, scope, sr))
        rows = conn.execute(q.order_by(v.c.visit_date, v.c.visit_id)).all()
    df = pd.DataFrame([tuple(x) for x in rows],
                      columns=["visit_id", "visit_date", "household_id", "head_name", "mode", "photo_uploaded"])
    df["visit_date"] = [_as_date(x) for x in df["visit_date"]]
    df["mode"] = df["mode"].map(MODE_ZH)
    df["photo_uploaded"] = df["photo_uploaded"].astype("boolean")
    return mask_frame(df, PERSONAL, unmasked)


# --------------------------------------------------------------------------------------------
# Ratings
# --------------------------------------------------------------------------------------------


def missing_ratings(bind, year: int, scope: Scope = ALL, unmasked: bool = False, limit: int | None = None) -> pd.DataFrame:
    """M4 "missing": helpers paired with an in-scope household on some day of the year, without a
    rating for it — the rows behind metrics.ratings(...)['missing'] (its fact rows, or their stored copy
    for a refreshed rating year)."""
    with Conn(bind) as conn:
        h, u, ur = rules.T_HELP.alias("h"), rules.T_UNIT.alias("u"), rules.T_REG.alias("ur")
        if summary.available(conn, "ratings", dt.date(year, 12, 31)):  # stored with the year's ratings
            rm = schema.rating_missing.alias("rm")
            missing = [h.c.helper_id.in_(select(rm.c.helper_id).where(rm.c.year == year))]
        else:  # the metric's own fact rows (what the refresh stores): one definition of "missing"
            facts = rules._ratings_rows(conn, year, scope).subquery("facts")
            missing = [h.c.helper_id.in_(select(facts.c.helper_id).where(facts.c.missing == 1))]
        q = (
            select(h.c.helper_id, h.c.name.label("helper_name"), h.c.unit_id, u.c.name.label("unit_name"),
                   h.c.department, h.c.category, h.c.phone)
            .select_from(h.join(u, u.c.unit_id == h.c.unit_id).join(ur, ur.c.code == u.c.region_code))
            .where(*rules._helper_scope(conn, h, u, ur, scope), *missing)
        )
        if limit is not None:  # the first rows by helper id
            q = q.order_by(h.c.helper_id).limit(limit)
        rows = conn.execute(q).all()
    df = pd.DataFrame([tuple(x) for x in rows],
                      columns=["helper_id", "helper_name", "unit_id", "unit_name", "department", "category", "phone"])
    df["category"] = df["category"].map(pb.CATEGORY_ZH)
    df = df.sort_values("helper_id", kind="stable").reset_index(drop=True)
    return mask_frame(df, PERSONAL, unmasked)


def rating_check_date(year: int, as_of: dt.date) -> dt.date:
    """The day on which an excellent rating for `year` is checked against the rules: the last day
    of that year, or the as-of date when that is earlier."""
    return min(dt.date(year, 12, 31), as_of)


def excellent_with_problems(bind, year: int, as_of: dt.date, scope: Scope = ALL,
                            unmasked: bool = False, limit: int | None = None) -> pd.DataFrame:
    """Helpers rated excellent for `year` who, on rating_check_date(year, as_of), had overdue pairings
    (problems.overdue) or were over the cap (problems.cap_violators), each within the scope as those
    lists take it: overdue pairings of households under the scope's region (and of the scope's unit),
    loads of helpers whose unit is seated under it (and is the scope's unit).

    Loads and pairing status are computed for the excellent helpers only, in one query."""
    d = rating_check_date(year, as_of)
    with Conn(bind) as conn:
        _no_jit(conn)
        rt = rules.T_RATE.alias("xr")
        excellent = select(rt.c.helper_id).where(rt.c.year == year, rt.c.grade == "excellent")
        if scope == ALL and summary.status_date(conn, d):
            # province-wide on a status date: the stored loads and overdue pairings of every helper
            # (helper_status: the same loads and the sum of the same pairing status as below)
            hs, h, u = schema.helper_status.alias("hs"), rules.T_HELP.alias("h"), rules.T_UNIT.alias("u")
            q = (select(h.c.helper_id, h.c.name, h.c.unit_id, u.c.name, h.c.department, h.c.category, h.c.phone,
                        hs.c.load, hs.c.overdue)
                 .select_from(hs.join(h, h.c.helper_id == hs.c.helper_id).join(u, u.c.unit_id == h.c.unit_id))
                 .where(hs.c.as_of == d, hs.c.helper_id.in_(excellent), or_(hs.c.load > rules.CAP, hs.c.overdue > 0)))
            if limit is not None:  # the first rows by helper id
                q = q.order_by(h.c.helper_id).limit(limit)
            return _excellent_frame(conn.execute(q).all(), d, unmasked)
        # M2: the load of each excellent helper whose unit is in the scope (problems.cap_violators)
        xh, xu, xur = rules.T_HELP.alias("xh"), rules.T_UNIT.alias("xu"), rules.T_REG.alias("xur")
        excellent_here = (
            select(xh.c.helper_id)
            .select_from(xh.join(xu, xu.c.unit_id == xh.c.unit_id).join(xur, xur.c.code == xu.c.region_code))
            .where(xh.c.helper_id.in_(excellent), *rules._helper_scope(conn, xh, xu, xur, scope))
        )
        loads = pb.helper_loads(conn, d, helpers=excellent_here)
        # M3: their overdue pairings in the scope (problems.overdue)
        gaps = _pairing_gaps_of(conn, d, scope, excellent)
        facts = union_all(
            select(loads.c.helper_id, loads.c.load, literal(None, Integer).label("overdue")),
            select(gaps.c.helper_id, literal(None, Integer), gaps.c.is_overdue).where(gaps.c.is_overdue == 1),
        ).subquery("facts")
        flagged = (
            select(facts.c.helper_id, func.max(facts.c.load).label("load"), func.sum(facts.c.overdue).label("overdue"))
            .group_by(facts.c.helper_id)
            .having(or_(func.sum(facts.c.overdue) > 0, func.max(facts.c.load) > rules.CAP))
            .subquery("flagged")
        )
        h, u = rules.T_HELP.alias("h"), rules.T_UNIT.alias("u")
        q = select(h.c.helper_id, h.c.name, h.c.unit_id, u.c.name, h.c.department, h.c.category, h.c.phone,
                   flagged.c.load, flagged.c.overdue).select_from(
            flagged.join(h, h.c.helper_id == flagged.c.helper_id).join(u, u.c.unit_id == h.c.unit_id))
        if limit is not None:
            q = q.order_by(h.c.helper_id).limit(limit)
        info = conn.execute(q).all()
    return _excellent_frame(info, d, unmasked)


def _excellent_frame(info, d: dt.date, unmasked: bool) -> pd.DataFrame:
    """The rows (helper_id, name, unit_id, unit_name, department, category, phone, load, overdue) as the
    excellent-with-problems list."""
    rows = []
    for helper_id, name, unit_id, unit_name, department, category, phone, load, n_over in info:
        n_over = int(n_over or 0)
        load = int(load or 0)
        problems = []
        if load > rules.CAP:
            problems.append(f"超上限（帮扶{load}户）")
        if n_over:
            problems.append(f"{n_over}个结对走访逾期")
        rows.append({"helper_id": helper_id, "helper_name": name, "unit_id": unit_id, "unit_name": unit_name,
                     "department": department, "category": pb.CATEGORY_ZH.get(category, category), "phone": phone,
                     "load": load, "overdue": n_over, "problems": "；".join(problems), "checked_on": d})
    df = pd.DataFrame(rows, columns=["helper_id", "helper_name", "unit_id", "unit_name", "department", "category",
                                     "phone", "load", "overdue", "problems", "checked_on"])
    df = df.sort_values("helper_id", kind="stable").reset_index(drop=True)
    return mask_frame(df, PERSONAL, unmasked)


def _as_date(x):
    if x is None or (not isinstance(x, dt.date) and pd.isna(x)):
        return None
    if isinstance(x, dt.datetime):
        return x.date()
    if isinstance(x, dt.date):
        return x
    return pd.Timestamp(x).date()
