"""Problem lists (uncovered households, helpers over the cap, overdue pairings, unapproved
replacements) and the 12-month trend, built on the definitions in ``metrics``.

Each list returns the contract fields first (CONTRACT.md "Problem lists"), sorted by the first
field; ``detail=True`` adds names and places for the pages, masked unless ``unmasked=True``.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import case, func, select

from . import metrics as m
from . import rules
from . import schema, summary
from .dates import last_month_ends
from .scope import ALL, Conn, Scope
from .privacy import mask_frame

CONTRACT_FIELDS = {
    "uncovered": ["household_id", "village_code"],
    "cap": ["helper_id", "unit_id", "load"],
    "overdue": ["pairing_id", "helper_id", "household_id", "last_visit", "gap_days", "interval_months"],
    "unapproved": ["pairing_id", "helper_id", "end_date", "end_reason"],
}

# Chinese column titles for pages and exports
TITLES = {
    "household_id": "户编号", "village_code": "村代码", "head_name": "户主姓名", "id_number": "身份证号",
    "status": "状态", "village": "村", "township": "乡镇", "county": "县（市、区）", "city": "市",
    "helper_id": "帮扶责任人编号", "helper_name": "帮扶责任人", "unit_id": "单位编号", "unit_name": "派出单位",
    "department": "处室", "category": "类别", "phone": "联系电话", "load": "帮扶户数",
    "pairing_id": "结对编号", "last_visit": "最近入户走访", "gap_days": "间隔天数", "interval_months": "规定间隔（月）",
    "start_date": "结对开始", "end_date": "结束日期", "end_reason": "结束原因", "approved": "已批准",
}
STATUS_ZH = {"not_lifted": "未脱贫", "lifted_with_policy": "已脱贫享受政策", "exited": "已退出"}
CATEGORY_ZH = {"cadre": "干部职工", "village_committee": "村两委干部", "rich_leader": "致富带头人"}
END_REASON_ZH = {"illness": "患病", "transfer": "调离", "discipline": "处分", "household_exited": "户退出", "other": "其他"}
PERSONAL = {"head_name": "name", "helper_name": "name", "id_number": "id", "phone": "phone"}


def _finish_list(df: pd.DataFrame, kind: str, detail: bool, unmasked: bool, keep_order: bool = False) -> pd.DataFrame:
    first = CONTRACT_FIELDS[kind][0]
    if not keep_order:
        df = df.sort_values(first, kind="stable")
    df = df.reset_index(drop=True)
    if not detail:
        return df[CONTRACT_FIELDS[kind]]
    return mask_frame(df, PERSONAL, unmasked)


def _place_join(base, village_code_col):
    """Join the village region and its ancestors for naming; returns (join, {level: name column})."""
    vr = rules.T_REG.alias("pv")
    tr, cr, ci = rules.T_REG.alias("pt"), rules.T_REG.alias("pc"), rules.T_REG.alias("pci")
    j = (
        base.join(vr, vr.c.code == village_code_col)
        .outerjoin(tr, tr.c.code == vr.c.township_code)
        .outerjoin(cr, cr.c.code == vr.c.county_code)
        .outerjoin(ci, ci.c.code == vr.c.city_code)
    )
    return j, {"village": vr.c.name, "township": tr.c.name, "county": cr.c.name, "city": ci.c.name}


def uncovered(bind, as_of: dt.date, scope: Scope = ALL, detail: bool = False, unmasked: bool = False,
              limit: int | None = None) -> pd.DataFrame:
    """In-scope households with no active pairing on the date (M1). With a unit scope: those in the
    villages assigned to the unit on the date. ``limit``: only the first rows by household id."""
    with Conn(bind) as conn:
        hh, r = rules.T_HH.alias("hh"), rules.T_REG.alias("r")
        stored = summary.status_date(conn, as_of)
        if stored:  # the stored uncovered households of the date (a few per cent of them): any scope is cut in SQL
            us = schema.uncovered_status.alias("us")
            # placed by the stored village code (the household's), so that a region picks its rows before any
            # household is read
            village = us.c.village_code
            base = us.join(r, r.c.code == village).join(hh, hh.c.household_id == us.c.household_id)
            conds = [us.c.as_of == as_of]
        else:
            village = hh.c.village_code
            base = hh.join(r, r.c.code == village)
            conds = [rules.uncovered_cond(hh, as_of)]
        conds.append(rules._region_filter(conn, r, scope.region))
        if scope.unit:
            au = rules._assigned_villages(as_of, scope.unit)
            conds.append(village.in_(select(au.c.village_code)))
        cols = [hh.c.household_id, village.label("village_code")]
        names = []
        if detail:
            base, places = _place_join(base, village)
            cols += [hh.c.head_name, hh.c.id_number, hh.c.status, places["village"].label("village"),
                     places["township"].label("township"), places["county"].label("county"),
                     places["city"].label("city")]
            names = ["head_name", "id_number", "status", "village", "township", "county", "city"]
        q = select(*cols).select_from(base).where(*conds)
        # the first rows in household order: from the stored rows always; live, province- or city-wide (the
        # database stops early), while a county, township, village or unit is checked whole and cut below
        wide = stored or (not scope.unit and summary._region_level(conn, scope.region) in (None, "province", "city"))
        if limit is not None and wide:
            q = q.order_by(hh.c.household_id).limit(limit)
        rows = conn.execute(q).all()
        df = pd.DataFrame([tuple(x) for x in rows], columns=["household_id", "village_code", *names])
        if detail:
            df["status"] = df["status"].map(STATUS_ZH)
        df = _finish_list(df, "uncovered", detail, unmasked)
        return df if limit is None else df.head(limit)


def cap_violators(bind, as_of: dt.date, scope: Scope = ALL, detail: bool = False, unmasked: bool = False,
                  min_load: int = rules.CAP + 1, limit: int | None = None) -> pd.DataFrame:
    """Helpers whose load on the date exceeds the cap (M2). ``min_load=1`` lists every loaded helper.
    ``limit``: only the first rows by load (highest first), then helper id. Loads are read from the
    stored helper status when the date has one."""
    with Conn(bind) as conn:
        loads = helper_loads(conn, as_of)
        h, u, ur = rules.T_HELP.alias("h"), rules.T_UNIT.alias("u"), rules.T_REG.alias("ur")
        cols = [h.c.helper_id, h.c.unit_id, loads.c.load]
        names = []
        if detail:
            cols += [h.c.name.label("helper_name"), u.c.name.label("unit_name"), h.c.department,
                     h.c.category, h.c.phone]
            names = ["helper_name", "unit_name", "department", "category", "phone"]
        q = (
            select(*cols)
            .select_from(
                loads.join(h, h.c.helper_id == loads.c.helper_id)
                .join(u, u.c.unit_id == h.c.unit_id)
                .join(ur, ur.c.code == u.c.region_code)
            )
            .where(loads.c.load >= min_load, *rules._helper_scope(conn, h, u, ur, scope))
        )
        if limit is not None:
            q = q.order_by(loads.c.load.desc(), h.c.helper_id).limit(limit)
        df = pd.DataFrame([tuple(x) for x in conn.execute(q).all()], columns=["helper_id", "unit_id", "load", *names])
        df["load"] = df["load"].astype("int64")
        if detail:
            df["category"] = df["category"].map(CATEGORY_ZH)
        return _finish_list(df, "cap", detail, unmasked, keep_order=limit is not None)


def helper_loads(conn, as_of: dt.date, helpers=None):
    """load(helper, D) (M2) as a subquery (helper_id, load) of the helpers with a load: read from the
    stored helper status when the date has one. ``helpers``: a select of helper ids to keep."""
    if summary.status_date(conn, as_of):
        hs = schema.helper_status.alias("hs")
        q = select(hs.c.helper_id, hs.c.load).where(hs.c.as_of == as_of)
        if helpers is not None:
            q = q.where(hs.c.helper_id.in_(helpers))
        return q.subquery("loads")
    return rules._helper_loads(as_of, helpers)


def pairing_gaps(conn, as_of: dt.date, scope: Scope, overdue_only: bool = False):
    """Every active in-scope pairing on the date with its gap (M3) as a subquery: pairing_id,
    helper_id, household_id, unit_id, village_code, start_date, last_visit, gap_days,
    interval_months, is_overdue (0/1). Read from the stored pairing status when the date has one.
    ``overdue_only``: the overdue ones may come alone (then, on a date without a stored status, they are read
    from the stored overdue spans when the refresh wrote them)."""
    if overdue_only and not summary.status_date(conn, as_of) and summary.spans_stored(conn):
        return summary.spans_on(conn, as_of, scope).subquery("gaps")
    if summary.status_date(conn, as_of):
        st = schema.pairing_status.alias("st")
        q = select(st.c.pairing_id, st.c.helper_id, st.c.household_id, st.c.unit_id, st.c.village_code,
                   st.c.start_date, st.c.last_visit, st.c.gap_days, st.c.interval_months,
                   st.c.overdue.label("is_overdue")).where(st.c.as_of == as_of)
        if scope.unit:
            q = q.where(st.c.unit_id == scope.unit)
        if scope.region:
            r = rules.T_REG.alias("gr_scope")
            q = q.join_from(st, r, r.c.code == st.c.village_code).where(rules._region_filter(conn, r, scope.region))
        return q.subquery("gaps")
    ap, ref, cutoff = rules._pairing_status(conn, as_of, scope)
    return select(ap.c.pairing_id, ap.c.helper_id, ap.c.household_id, ap.c.unit_id, ap.c.village_code,
                  ap.c.start_date, ap.c.last_visit, rules.days_between(conn, as_of, ref).label("gap_days"),
                  ap.c.interval_months, case((ref < cutoff, 1), else_=0).label("is_overdue")).subquery("gaps")


def overdue(bind, as_of: dt.date, scope: Scope = ALL, detail: bool = False, unmasked: bool = False,
            include_all: bool = False, limit: int | None = None) -> pd.DataFrame:
    """Active in-scope pairings overdue for an in-home visit on the date (M3).
    ``include_all=True`` returns every active pairing with its gap. ``limit``: only the first rows by
    gap (longest first), then pairing id."""
    with Conn(bind) as conn:
        ap = pairing_gaps(conn, as_of, scope, overdue_only=not include_all)
        base = ap
        cols = [ap.c.pairing_id, ap.c.helper_id, ap.c.household_id, ap.c.last_visit, ap.c.gap_days,
                ap.c.interval_months, ap.c.is_overdue]
        names = []
        if detail:
            h, u, hh = rules.T_HELP.alias("dh"), rules.T_UNIT.alias("du"), rules.T_HH.alias("dhh")
            base = base.join(h, h.c.helper_id == ap.c.helper_id).join(u, u.c.unit_id == h.c.unit_id).join(
                hh, hh.c.household_id == ap.c.household_id)
            base, places = _place_join(base, ap.c.village_code)
            cols += [h.c.name.label("helper_name"), u.c.name.label("unit_name"), h.c.unit_id, hh.c.head_name,
                     places["village"].label("village"), places["county"].label("county"), ap.c.start_date]
            names = ["helper_name", "unit_name", "unit_id", "head_name", "village", "county", "start_date"]
        q = select(*cols).select_from(base)
        if not include_all:
            q = q.where(ap.c.is_overdue == 1)
        if limit is not None:
            q = q.order_by(ap.c.gap_days.desc(), ap.c.pairing_id).limit(limit)
        rows = conn.execute(q).all()
        df = pd.DataFrame(
            [tuple(x) for x in rows],
            columns=["pairing_id", "helper_id", "household_id", "last_visit", "gap_days", "interval_months",
                     "is_overdue", *names],
        )
        for c in ("gap_days", "interval_months"):
            df[c] = df[c].astype("int64")
        df["is_overdue"] = df["is_overdue"].astype(bool)
        df["last_visit"] = [None if pd.isna(x) else (x if isinstance(x, dt.date) else pd.Timestamp(x).date())
                            for x in df["last_visit"]]
        if not include_all:
            df = df.drop(columns=["is_overdue"])
        return _finish_list(df, "overdue", detail or include_all, unmasked, keep_order=limit is not None)


def gap_histogram(bind, as_of: dt.date, scope: Scope = ALL) -> pd.DataFrame:
    """Active in-scope pairings by days since their reference date (M3) in 15-day buckets, 180 days
    and more in the last: columns start (first day of the bucket), on_time, overdue."""
    with Conn(bind) as conn:
        counts = summary.gap_counts(conn, as_of, scope)
        if counts is None:
            g = pairing_gaps(conn, as_of, scope)
            bucket = summary.gap_bucket(g.c.gap_days)
            q = select(bucket, func.sum(1 - g.c.is_overdue), func.sum(g.c.is_overdue)).group_by(bucket)
            counts = [(int(b), int(a or 0), int(o or 0)) for b, a, o in conn.execute(q)]
    n = summary.GAP_CAP // summary.GAP_BIN + 1
    by_bucket = {b: (a, o) for b, a, o in counts}
    return pd.DataFrame({
        "start": [b * summary.GAP_BIN for b in range(n)],
        "on_time": pd.Series([by_bucket.get(b, (0, 0))[0] for b in range(n)], dtype="int64"),
        "overdue": pd.Series([by_bucket.get(b, (0, 0))[1] for b in range(n)], dtype="int64"),
    })


def unapproved(bind, as_of: dt.date, scope: Scope = ALL, detail: bool = False, unmasked: bool = False,
               limit: int | None = None) -> pd.DataFrame:
    """Replacements ended on or before the date without county approval (M5)."""
    with Conn(bind) as conn:
        p, hh = rules.T_PAIR.alias("p"), rules.T_HH.alias("hh")
        h, u, ur = rules.T_HELP.alias("h"), rules.T_UNIT.alias("u"), rules.T_REG.alias("ur")
        cols = [p.c.pairing_id, p.c.helper_id, p.c.end_date, p.c.end_reason]
        names = []
        if detail:
            cols += [p.c.household_id, h.c.name.label("helper_name"), h.c.unit_id, u.c.name.label("unit_name"),
                     hh.c.head_name, p.c.start_date]
            names = ["household_id", "helper_name", "unit_id", "unit_name", "head_name", "start_date"]
        q = (
            select(*cols)
            .select_from(
                p.join(hh, hh.c.household_id == p.c.household_id)
                .join(h, h.c.helper_id == p.c.helper_id)
                .join(u, u.c.unit_id == h.c.unit_id)
                .join(ur, ur.c.code == u.c.region_code)
            )
            .where(rules._replacement_cond(p, as_of), rules._unapproved_cond(p), rules.in_scope(hh),
                   *rules._helper_scope(conn, h, u, ur, scope))
        )
        if limit is not None:
            q = q.order_by(p.c.pairing_id).limit(limit)
        df = pd.DataFrame([tuple(x) for x in conn.execute(q).all()],
                          columns=["pairing_id", "helper_id", "end_date", "end_reason", *names])
        if detail:
            df["end_reason"] = df["end_reason"].map(END_REASON_ZH)
        return _finish_list(df, "unapproved", detail, unmasked)


PROBLEMS = {"uncovered": uncovered, "cap": cap_violators, "overdue": overdue, "unapproved": unapproved}


def trend(bind, as_of: dt.date, scope: Scope = ALL, months: int = 12, known: dict | None = None) -> pd.DataFrame:
    """Coverage rate and cadence compliance at each of the last `months` month-ends (the as-of
    date standing for its own month). Stored dates are read in one query per metric; the others
    are computed live, except those in ``known``: {date: (coverage total row, cadence total row)}
    the caller already has."""
    out = []
    dates = last_month_ends(as_of, months)
    with Conn(bind) as conn:
        cov_s = summary.totals_by_date(conn, "coverage_assigned" if scope.unit else "coverage", scope, dates)
        cad_s = summary.totals_by_date(conn, "cadence", scope, dates)
        for d, (cov, cad) in (known or {}).items():
            cov_s.setdefault(d, cov)
            cad_s.setdefault(d, cad)
        for d in dates:
            cov = cov_s.get(d) or m.total_row(m.coverage(conn, d, "province", scope), "coverage")
            cad = cad_s.get(d) or m.total_row(m.cadence(conn, d, "province", scope), "cadence")
            out.append(
                {
                    "date": d,
                    "households": cov["households"],
                    "covered": cov["covered"],
                    "coverage_rate": cov["covered"] / cov["households"] if cov["households"] else None,
                    "active_pairings": cad["active_pairings"],
                    "overdue": cad["overdue"],
                    "compliance": 1 - cad["overdue"] / cad["active_pairings"] if cad["active_pairings"] else None,
                }
            )
    return pd.DataFrame(out)
