"""Supervision orders (督办, RULES.md M7): issue an order from a problem list, and judge its items from the ledger.

An order is issued on date I to one sending unit with a deadline T >= I. Its items are the rows of
``bangfu problems KIND --as-of I --unit U [--region R]`` (or a chosen part of them, from the dashboard); an
item's subject is the row's first field. On a date D >= I an item is

- ``rectified`` (已整改) when its subject is no longer in ``problems KIND --as-of D`` (whole province),
- else ``overdue`` (逾期未整改) when D > T,
- else ``open`` (整改中).

Status is never stored: ``item_status`` computes it in SQL for any date from the same building blocks as the
problem lists (``problems.pairing_gaps`` / ``problems.helper_loads`` read the stored status for stored dates,
the live path otherwise, restricted to the items' subjects), so a later import that rectifies a problem — or
brings it back — shows at once. The unit's written response (整改说明) never closes an item.

Writes (issue, respond) check the role of the user on the server, are audited in the same transaction, and go
to the primary database (the caller's engine).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets

import pandas as pd
from sqlalchemy import String, and_, case, func, literal, select, union_all
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from . import audit, problems, schema, settings
from . import metrics as m
from . import rules
from .db import BangfuError
from .scope import ALL, Conn, Scope

KINDS = ("overdue", "cap", "uncovered", "unapproved")
KIND_ZH = {"overdue": "走访逾期", "cap": "超出帮扶上限", "uncovered": "未结对覆盖", "unapproved": "调换未批准"}
SUBJECT_ZH = {"overdue": "结对", "cap": "帮扶责任人", "uncovered": "贫困户", "unapproved": "结对"}
STATUS = ("open", "overdue", "rectified")
STATUS_ZH = {"open": "整改中", "overdue": "逾期未整改", "rectified": "已整改"}
DEFAULT_DAYS = 30
ISSUER_ROLES = ("province", "city", "county")
MAX_NOTE = 2000
MAX_RESPONSE = 4000

O, I, R = schema.supervision_orders, schema.supervision_items, schema.supervision_responses


class SupervisionError(BangfuError):
    """A user mistake with an order (one plain sentence)."""


# ------------------------------------------------------------------------------------------------ rules


FIRST_FIELD = {k: problems.CONTRACT_FIELDS[k][0] for k in KINDS}  # an item's subject


def problem_rows_for(bind, kind: str, as_of: dt.date, scope: Scope) -> pd.DataFrame:
    """The rows an order for (kind, date, unit[, region]) would hold: ``problems KIND`` in that scope."""
    return _problem_rows(kind, bind, as_of, scope)


def _problem_rows(kind: str, bind, as_of: dt.date, scope: Scope) -> pd.DataFrame:
    if kind not in KINDS:
        raise SupervisionError(f"未知的问题类型 '{kind}'，应为 {'、'.join(KINDS)} 之一")
    return problems.PROBLEMS[kind](bind, as_of, scope)


def still_problems(conn: Connection, kind: str, as_of: dt.date, subjects) -> select:
    """The subjects (a select of one column) that are still in ``problems KIND --as-of as_of`` (whole
    province), as a select of (kind, subject). Restricted to the given subjects, so that a past date computes
    only their rows."""
    k = literal(kind, String(12)).label("kind")
    if kind == "overdue":
        helpers = select(rules.T_PAIR.c.helper_id).where(rules.T_PAIR.c.pairing_id.in_(subjects))
        if problems.summary.status_date(conn, as_of):
            g = problems.pairing_gaps(conn, as_of, ALL)
        else:
            ap, ref, cutoff = rules._pairing_status(conn, as_of, ALL, helpers=helpers)
            g = select(ap.c.pairing_id, case((ref < cutoff, 1), else_=0).label("is_overdue")).subquery("gaps")
        return select(k, g.c.pairing_id.label("subject")).where(g.c.is_overdue == 1, g.c.pairing_id.in_(subjects))
    if kind == "cap":
        loads = problems.helper_loads(conn, as_of, helpers=subjects)
        return select(k, loads.c.helper_id.label("subject")).where(loads.c.load > rules.CAP)
    if kind == "uncovered":
        hh = rules.T_HH.alias("shh")
        return select(k, hh.c.household_id.label("subject")).where(hh.c.household_id.in_(subjects),
                                                                   rules.uncovered_cond(hh, as_of))
    if kind == "unapproved":
        p, hh = rules.T_PAIR.alias("sp"), rules.T_HH.alias("sphh")
        return (select(k, p.c.pairing_id.label("subject"))
                .select_from(p.join(hh, hh.c.household_id == p.c.household_id))
                .where(p.c.pairing_id.in_(subjects), rules._replacement_cond(p, as_of), rules._unapproved_cond(p),
                       rules.in_scope(hh)))
    raise SupervisionError(f"未知的问题类型 '{kind}'")


def _order_place(conn: Connection):
    """(join from orders, region row of the order's place): the order's region, or its unit's seat."""
    u, r = rules.T_UNIT.alias("ou"), rules.T_REG.alias("orr")
    place = func.coalesce(O.c.region_code, u.c.region_code)
    return O.join(u, u.c.unit_id == O.c.unit_id, isouter=True).join(r, r.c.code == place, isouter=True), u, r


def _visible(conn: Connection, r, u, scope: Scope) -> list:
    """Orders a user of ``scope`` may see: a unit user those addressed to the unit; a region user those whose
    place (the order's region, or the unit's seat) lies in the region."""
    conds = []
    if scope.unit:
        conds.append(O.c.unit_id == scope.unit)
    if scope.region:
        conds.append(rules._region_filter(conn, r, scope.region))
    return conds


def item_status(bind, as_of: dt.date, scope: Scope = ALL, unit: str | None = None,
                order_id: str | None = None) -> pd.DataFrame:
    """Every item of the orders issued on or before ``as_of`` (visible in ``scope``), with its status on that
    date: order_id, kind, subject, unit_id, issued_on, deadline, status — sorted by (order_id, subject)."""
    with Conn(bind) as conn:
        base, u, r = _order_place(conn)
        conds = [O.c.issued_on <= as_of, *_visible(conn, r, u, scope)]
        if unit:
            conds.append(O.c.unit_id == unit)
        if order_id:
            conds.append(O.c.order_id == order_id)
        kinds = [k for (k,) in conn.execute(select(O.c.kind).select_from(base).where(*conds).distinct())]
        if not kinds:
            return pd.DataFrame(columns=["order_id", "kind", "subject", "unit_id", "issued_on", "deadline", "status"])
        parts = []
        for kind in sorted(kinds):
            subjects = (select(I.c.subject).select_from(I.join(O, O.c.order_id == I.c.order_id))
                        .where(O.c.kind == kind, O.c.issued_on <= as_of))
            if unit:
                subjects = subjects.where(O.c.unit_id == unit)
            if order_id:
                subjects = subjects.where(O.c.order_id == order_id)
            parts.append(still_problems(conn, kind, as_of, subjects))
        still = union_all(*parts).subquery("still")
        status = case((still.c.subject.is_(None), "rectified"),
                      (O.c.deadline < as_of, "overdue"), else_="open")
        q = (select(O.c.order_id, O.c.kind, I.c.subject, O.c.unit_id, O.c.issued_on, O.c.deadline, status.label("status"))
             .select_from(base.join(I, I.c.order_id == O.c.order_id)
                          .outerjoin(still, and_(still.c.kind == O.c.kind, still.c.subject == I.c.subject)))
             .where(*conds).order_by(O.c.order_id, I.c.subject))
        rows = conn.execute(q).all()
    df = pd.DataFrame([tuple(x) for x in rows],
                      columns=["order_id", "kind", "subject", "unit_id", "issued_on", "deadline", "status"])
    for c in ("issued_on", "deadline"):
        df[c] = [x if isinstance(x, dt.date) else dt.date.fromisoformat(str(x)[:10]) for x in df[c]]
    return df


def rectification_rate(items: pd.DataFrame, as_of: dt.date) -> float | None:
    """RULES.md M7: rectified items / items of orders whose deadline <= as_of (None when there are none)."""
    due = items[items["deadline"] <= as_of]
    return None if due.empty else float((due["status"] == "rectified").sum()) / len(due)


# ------------------------------------------------------------------------------------------------ reading


def orders(bind, as_of: dt.date, scope: Scope = ALL, unit: str | None = None) -> pd.DataFrame:
    """The orders issued on or before the date (visible in ``scope``), one row each: order_id, kind, unit_id,
    unit_name, region_code, place (county or the unit's seat), issued_on, deadline, note, issued_by, items,
    rectified, open, overdue, responded — newest first."""
    items = item_status(bind, as_of, scope, unit)
    with Conn(bind) as conn:
        base, u, r = _order_place(conn)
        county = rules.T_REG.alias("ocounty")
        q = (select(O.c.order_id, O.c.kind, O.c.unit_id, u.c.name.label("unit_name"), O.c.region_code,
                    func.coalesce(county.c.name, r.c.name).label("place"), O.c.issued_on, O.c.deadline, O.c.note,
                    O.c.issued_by, R.c.text.label("response"))
             .select_from(base.outerjoin(county, county.c.code == r.c.county_code)
                          .outerjoin(R, R.c.order_id == O.c.order_id))
             .where(O.c.issued_on <= as_of, *_visible(conn, r, u, scope)))
        if unit:
            q = q.where(O.c.unit_id == unit)
        rows = conn.execute(q).all()
    df = pd.DataFrame([tuple(x) for x in rows],
                      columns=["order_id", "kind", "unit_id", "unit_name", "region_code", "place", "issued_on",
                               "deadline", "note", "issued_by", "response"])
    for c in ("note", "response"):  # text or None: pandas' string dtype makes a missing one NaN, which is truthy
        df[c] = pd.Series([x if isinstance(x, str) else None for x in df[c]], index=df.index, dtype=object)
    counts = items.pivot_table(index="order_id", columns="status", values="subject", aggfunc="count", fill_value=0)
    for s in STATUS:
        df[s] = df["order_id"].map(counts[s] if s in counts else {}).fillna(0).astype("int64")
    df["items"] = df[list(STATUS)].sum(axis=1).astype("int64")
    df["responded"] = df["response"].notna()
    for c in ("issued_on", "deadline"):
        df[c] = [x if isinstance(x, dt.date) else dt.date.fromisoformat(str(x)[:10]) for x in df[c]]
    return df.sort_values(["issued_on", "order_id"], ascending=[False, False]).reset_index(drop=True)


def totals(bind, as_of: dt.date, scope: Scope = ALL) -> dict:
    """Items by status on the date and the rectification rate (the overview's and meeting screen's figure)."""
    items = item_status(bind, as_of, scope)
    out = {s: int((items["status"] == s).sum()) for s in STATUS}
    out["items"] = len(items)
    out["orders"] = int(items["order_id"].nunique())
    out["rate"] = rectification_rate(items, as_of)
    return out


def by_group(bind, as_of: dt.date, scope: Scope = ALL, by: str = "unit") -> pd.DataFrame:
    """Per sending unit (``by="unit"``) or per county of the order's place (``by="county"``): items, rectified,
    open, overdue, due (deadline passed) and the rectification rate — most overdue first."""
    od = orders(bind, as_of, scope)
    if od.empty:
        return pd.DataFrame(columns=["code", "name", "orders", "items", "rectified", "open", "overdue", "due", "rate"])
    items = item_status(bind, as_of, scope)
    due = items[items["deadline"] <= as_of]
    od["due"] = od["order_id"].map(due.groupby("order_id").size()).fillna(0).astype("int64")
    od["due_rectified"] = od["order_id"].map(
        due[due["status"] == "rectified"].groupby("order_id").size()).fillna(0).astype("int64")
    key, name = ("unit_id", "unit_name") if by == "unit" else ("place", "place")
    g = od.groupby(od[key].fillna("—"), dropna=False).agg(
        name=(name, "first"), orders=("order_id", "count"), items=("items", "sum"), rectified=("rectified", "sum"),
        open=("open", "sum"), overdue=("overdue", "sum"), due=("due", "sum"), due_rectified=("due_rectified", "sum"))
    g = g.reset_index().rename(columns={key: "code"})
    g["rate"] = [None if d == 0 else r / d for r, d in zip(g["due_rectified"], g["due"])]
    g = g.drop(columns=["due_rectified"])
    g["name"] = g["name"].fillna("—")
    return g.sort_values(["overdue", "items", "code"], ascending=[False, False, True]).reset_index(drop=True)


def accountability(bind, as_of: dt.date, scope: Scope = ALL) -> pd.DataFrame:
    """责任追究: units with items still unrectified past their deadline, most first."""
    g = by_group(bind, as_of, scope, "unit")
    return g[g["overdue"] > 0].reset_index(drop=True)


def order_detail(bind, order_id: str, as_of: dt.date, scope: Scope = ALL) -> dict | None:
    """One order (visible in ``scope``) with its items' status on the date and the issue-time row of each."""
    od = orders(bind, max(as_of, dt.date.min), scope)
    od = od[od["order_id"] == order_id]
    if od.empty:
        return None
    items = item_status(bind, as_of, scope, order_id=order_id)
    with Conn(bind) as conn:
        detail = dict(conn.execute(select(I.c.subject, I.c.detail).where(I.c.order_id == order_id)).all())
    rows = []
    for rec in items.to_dict("records"):
        extra = json.loads(detail.get(rec["subject"]) or "{}")
        rows.append({**{k: v for k, v in extra.items() if k not in rec}, **rec})
    return {"order": od.iloc[0].to_dict(), "items": pd.DataFrame(rows)}


def unit_open_count(bind, unit_id: str, as_of: dt.date) -> int:
    """Orders addressed to the unit with an item not yet rectified on the date (the unit user's badge)."""
    od = orders(bind, as_of, Scope(unit=unit_id))
    return int(((od["open"] + od["overdue"]) > 0).sum()) if len(od) else 0


# ------------------------------------------------------------------------------------------------ writing


def version(bind) -> str:
    """Changes whenever an order's status or content can have changed: a refresh (every import that changes
    the ledger refreshes), a new order, a new or edited response. Cheap (three aggregates over small tables):
    the dashboard keys its cached reads by it, so that an import or another replica's write shows at once."""
    snaps = schema.summary_snapshots
    with Conn(bind) as conn:
        row = conn.execute(select(select(func.max(snaps.c.refreshed_at)).scalar_subquery(),
                                  select(func.count()).select_from(O).scalar_subquery(),
                                  select(func.max(R.c.updated_at)).scalar_subquery())).one()
    return "|".join(str(x) for x in row)


def may_issue(user) -> bool:
    return bool(user is not None and not user.disabled and user.role in ISSUER_ROLES)


def _new_order_id(conn: Connection, issued_on: dt.date) -> str:
    prefix = f"DB{issued_on:%Y%m%d}-"
    n = conn.execute(select(func.count()).select_from(O).where(O.c.order_id.like(prefix + "%"))).scalar() or 0
    return f"{prefix}{n + 1:03d}"


def issue(engine: Engine, kind: str, unit_id: str, deadline: dt.date, as_of: dt.date | None = None,
          region: str | None = None, note: str | None = None, subjects: list[str] | None = None,
          user=None, issued_by: str | None = None) -> dict:
    """Create one order for the unit's rows of ``problems KIND --as-of I --unit U [--region R]`` (all of them,
    or ``subjects``, which must each be such a row). ``user``: the dashboard user issuing it — checked here
    (role province/city/county; the order's region is narrowed to the user's region, so a county user may
    issue to a province-level unit for the rows in the county only); None for the command line (the owner).
    Returns {"order_id", "items"}. Raises SupervisionError with one sentence for a user mistake."""
    as_of = as_of or settings.today()
    if kind not in KINDS:
        raise SupervisionError(f"未知的问题类型 '{kind}'，应为 {'、'.join(KINDS)} 之一")
    if deadline < as_of:
        raise SupervisionError(f"整改期限 {deadline.isoformat()} 早于下发日期 {as_of.isoformat()}")
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise SupervisionError(f"督办说明过长（最多 {MAX_NOTE} 字）")
    if user is not None:
        from .users import NOTHING, effective_scope, get_user

        user = get_user(engine, user.username) or dataclasses.replace(user, disabled=True)
        if not may_issue(user):  # re-read from the database: a demo viewer or a disabled user writes nothing
            audit.record(engine, user.username, "denied",
                         f"order:{kind}:{unit_id}", Scope(region=region, unit=unit_id), outcome="denied")
            raise SupervisionError("您的角色不能下发督办单")
        eff, allowed = effective_scope(engine, user.scope, Scope(region=region))
        if not allowed or eff == NOTHING:
            audit.record(engine, user.username, "denied", f"order:{kind}:{unit_id}",
                         Scope(region=region, unit=unit_id), outcome="denied")
            raise SupervisionError("该范围超出您的权限，不能下发督办单")
        region = eff.region
        issued_by = user.username
    with engine.begin() as conn:
        if conn.execute(select(rules.T_UNIT.c.unit_id).where(rules.T_UNIT.c.unit_id == unit_id)).first() is None:
            raise SupervisionError(f"派出单位 {unit_id} 不存在")
        if region and conn.execute(select(rules.T_REG.c.code).where(rules.T_REG.c.code == region)).first() is None:
            raise SupervisionError(f"区划 {region} 不存在")
        rows = _problem_rows(kind, conn, as_of, Scope(region=region, unit=unit_id))
        first = problems.CONTRACT_FIELDS[kind][0]
        if subjects is not None:
            wanted = {str(s) for s in subjects}
            unknown = sorted(wanted - set(rows[first].astype(str)))
            if unknown:
                raise SupervisionError(f"所选的 {len(unknown)} 条记录不在该单位当日的问题清单中（如 {unknown[0]}）")
            rows = rows[rows[first].astype(str).isin(wanted)]
        if rows.empty:
            raise SupervisionError(f"派出单位 {unit_id} 在 {as_of.isoformat()} 没有{KIND_ZH[kind]}问题，无需督办")
        for attempt in range(5):
            order_id = _new_order_id(conn, as_of) if attempt < 3 else f"DB{as_of:%Y%m%d}-{secrets.token_hex(3)}"
            try:
                with conn.begin_nested():
                    conn.execute(O.insert().values(order_id=order_id, kind=kind, unit_id=unit_id, region_code=region,
                                                   issued_on=as_of, deadline=deadline, note=note,
                                                   issued_by=issued_by or "cli", created_at=audit.utcnow()))
                break
            except IntegrityError:
                continue
        else:  # pragma: no cover - five collisions in a row
            raise SupervisionError("督办单编号冲突，请重试")
        conn.execute(I.insert(), [{"order_id": order_id, "subject": str(rec[first]),
                                   "detail": json.dumps(rec, ensure_ascii=False, default=str)}
                                  for rec in rows.to_dict("records")])
        audit.record(conn, issued_by or "cli", "order_issue", order_id, Scope(region=region, unit=unit_id),
                     detail={"kind": kind, "items": len(rows), "deadline": deadline.isoformat(),
                             "issued_on": as_of.isoformat()})
    return {"order_id": order_id, "items": int(len(rows))}


def respond(engine: Engine, order_id: str, text: str, user) -> None:
    """The addressed unit's written response (整改说明) to an order: one per order (a later one replaces it).
    Only a user of role unit whose unit the order is addressed to may write it. It never closes an item."""
    text = (text or "").strip()
    if not text:
        raise SupervisionError("整改说明不能为空")
    if len(text) > MAX_RESPONSE:
        raise SupervisionError(f"整改说明过长（最多 {MAX_RESPONSE} 字）")
    if user is not None:
        from .users import get_user

        user = get_user(engine, user.username)  # re-read: a demo viewer or a disabled user writes nothing
    with engine.begin() as conn:
        unit = conn.execute(select(O.c.unit_id).where(O.c.order_id == order_id)).scalar()
        if unit is None:
            raise SupervisionError(f"督办单 {order_id} 不存在")
        if user is None or user.disabled or user.role != "unit" or user.unit_id != unit:
            audit.record(engine, getattr(user, "username", None), "denied", f"response:{order_id}",
                         Scope(unit=unit), outcome="denied")
            raise SupervisionError("只有被督办单位的用户可以填写整改说明")
        now = audit.utcnow()
        existing = conn.execute(select(R.c.order_id).where(R.c.order_id == order_id)).first()
        if existing:
            conn.execute(R.update().where(R.c.order_id == order_id).values(text=text, username=user.username,
                                                                             updated_at=now))
        else:
            conn.execute(R.insert().values(order_id=order_id, text=text, username=user.username, created_at=now,
                                           updated_at=now))
        audit.record(conn, user.username, "order_response", order_id, Scope(unit=unit),
                     detail={"chars": len(text), "replaced": bool(existing)})
