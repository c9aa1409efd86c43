"""The audit trail (等保 style): who did what to which object, in which scope, with what outcome.

One row per event in ``audit_log`` (schema.audit_log): ``id``, ``at`` (naive UTC), ``username``,
``event``, ``object``, ``scope``, ``outcome``, ``detail``. Rows are only ever inserted; the dashboard's
read-only database role may INSERT into this table and nothing else (``bangfu db grant-readonly``).

API
---
``record(bind, username, event, object=None, scope=None, outcome="ok", detail=None, at=None) -> None``
    Write one row. ``bind`` is an Engine (own transaction, committed at once) or a Connection (the
    row joins the caller's transaction — commit it). ``scope`` is a ``metrics.Scope`` or text
    (see ``scope_text``); ``detail`` is text or a dict (stored as compact JSON). Over-long values are
    cut to the column widths. Unknown event names raise ValueError (a programming error).
``record_page_view(bind, username, page, scope)``
``record_export(bind, username, list_name, rows, masked, scope=None, fmt=None)``
``record_unmask(bind, username, view, scope=None, allowed=True)``
    Shorthands for the common events; ``detail`` of an export is ``{"rows": n, "masked": bool,
    "format": fmt}``.
``query(bind, since=None, until=None, username=None, event=None, outcome=None, limit=10000,
        newest_first=True) -> DataFrame``
    Columns ``AUDIT_COLUMNS``; ``since``/``until`` are dates (whole days, ``until`` inclusive) or
    datetimes (naive UTC); ``limit=None`` returns every matching row.
``scope_text(scope) -> str``
    ``"all"`` for the whole province, else ``"region=130102"``, ``"unit=U1"`` or both joined by ``,``.

Events (module constants, also in ``EVENTS``): login_ok, login_failed, login_locked, logout, page_view,
export, import, unmask, user_add, user_disable, user_enable, user_passwd. Outcomes in use: ``ok``,
``failed`` and ``denied``.

No streamlit here: the CLI writes and exports the same table (``bangfu audit``).
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from .schema import audit_log

LOGIN_OK = "login_ok"
LOGIN_FAILED = "login_failed"
LOGIN_LOCKED = "login_locked"
LOGOUT = "logout"
PAGE_VIEW = "page_view"
EXPORT = "export"
IMPORT = "import"
UNMASK = "unmask"
USER_ADD = "user_add"
USER_DISABLE = "user_disable"
USER_ENABLE = "user_enable"
USER_PASSWD = "user_passwd"

EVENTS = (LOGIN_OK, LOGIN_FAILED, LOGIN_LOCKED, LOGOUT, PAGE_VIEW, EXPORT, IMPORT, UNMASK,
          USER_ADD, USER_DISABLE, USER_ENABLE, USER_PASSWD)

OK, FAILED, DENIED = "ok", "failed", "denied"

AUDIT_COLUMNS = ["id", "at", "username", "event", "object", "scope", "outcome", "detail"]

# Chinese titles for the audit page and the xlsx/csv export
TITLES = {"id": "序号", "at": "时间（UTC）", "username": "用户", "event": "事件", "object": "对象",
          "scope": "范围", "outcome": "结果", "detail": "详情"}
EVENT_ZH = {
    LOGIN_OK: "登录成功", LOGIN_FAILED: "登录失败", LOGIN_LOCKED: "账号锁定", LOGOUT: "退出登录",
    PAGE_VIEW: "页面访问", EXPORT: "导出", IMPORT: "导入", UNMASK: "查看明文", USER_ADD: "新增用户",
    USER_DISABLE: "停用用户", USER_ENABLE: "启用用户", USER_PASSWD: "修改密码",
}
OUTCOME_ZH = {OK: "成功", FAILED: "失败", DENIED: "拒绝"}


def utcnow() -> dt.datetime:
    """Now as a naive UTC datetime (how every timestamp is stored)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def as_naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def scope_text(scope) -> str:
    """A Scope (or anything with .region/.unit) as text; text and None pass through (None → None)."""
    if scope is None or isinstance(scope, str):
        return scope
    parts = []
    if getattr(scope, "region", None):
        parts.append(f"region={scope.region}")
    if getattr(scope, "unit", None):
        parts.append(f"unit={scope.unit}")
    return ",".join(parts) or "all"


def _cut(value, width: int | None):
    if value is None:
        return None
    value = str(value)
    return value if width is None or len(value) <= width else value[: width - 1] + "…"


def record(bind: Engine | Connection, username: str | None, event: str, object: str | None = None,  # noqa: A002
           scope=None, outcome: str = OK, detail=None, at: dt.datetime | None = None) -> None:
    """Write one audit row (see the module docstring)."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event '{event}'")
    if isinstance(detail, (dict, list)):
        detail = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    row = {
        "at": as_naive_utc(at) if at else utcnow(),
        "username": _cut(username, 100),
        "event": event,
        "object": _cut(object, 200),
        "scope": _cut(scope_text(scope), 2000),
        "outcome": _cut(outcome, 20) or OK,
        "detail": _cut(detail, 4000),
    }
    if isinstance(bind, Connection):
        bind.execute(audit_log.insert().values(**row))
    else:
        with bind.begin() as conn:
            conn.execute(audit_log.insert().values(**row))


def record_page_view(bind, username: str, page: str, scope) -> None:
    record(bind, username, PAGE_VIEW, object=page, scope=scope)


def record_export(bind, username: str, list_name: str, rows: int, masked: bool, scope=None,
                  fmt: str | None = None) -> None:
    record(bind, username, EXPORT, object=list_name, scope=scope,
           detail={"rows": int(rows), "masked": bool(masked), "format": fmt})


def record_unmask(bind, username: str, view: str, scope=None, allowed: bool = True) -> None:
    record(bind, username, UNMASK, object=view, scope=scope, outcome=OK if allowed else DENIED)


def _day_start(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return as_naive_utc(value)
    return dt.datetime.combine(value, dt.time())


def query(bind, since=None, until=None, username: str | None = None, event: str | None = None,
          outcome: str | None = None, limit: int | None = 10000, newest_first: bool = True) -> pd.DataFrame:
    """Audit rows matching every given filter (see the module docstring)."""
    t = audit_log
    q = select(*[t.c[c] for c in AUDIT_COLUMNS])
    if since is not None:
        q = q.where(t.c.at >= _day_start(since))
    if until is not None:
        if isinstance(until, dt.datetime):
            q = q.where(t.c.at <= as_naive_utc(until))
        else:
            q = q.where(t.c.at < _day_start(until + dt.timedelta(days=1)))
    if username:
        q = q.where(t.c.username == username)
    if event:
        q = q.where(t.c.event == event)
    if outcome:
        q = q.where(t.c.outcome == outcome)
    q = q.order_by(t.c.at.desc(), t.c.id.desc()) if newest_first else q.order_by(t.c.at, t.c.id)
    if limit is not None:
        q = q.limit(int(limit))
    if isinstance(bind, Connection):
        rows = bind.execute(q).all()
    else:
        with bind.connect() as conn:
            rows = conn.execute(q).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=AUDIT_COLUMNS)
    df["id"] = df["id"].astype("int64")
    return df
