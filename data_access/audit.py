"""The audit trail (等保 style): who did what to which object, in which scope, with what outcome.

One row per event in ``audit_log`` (schema.audit_log): ``id``, ``at`` (naive UTC), ``username``,
``event``, ``object``, ``scope``, ``outcome``, ``detail``, and the hash chain ``prev_hash``/``row_hash``.
Rows are only ever appended, one at a time, through ``record`` (see "Hash chain").

Hash chain (tamper evidence, ``bangfu audit verify``)
-----------------------------------------------------
``row_hash`` = hex SHA-256 of the UTF-8 text ``canonical(prev_hash, id, at, username, event, object, scope,
outcome, detail)``: every field written as ``~`` when NULL, else ``<number of characters>:<text>``, joined
by ``|`` (``id`` as decimal digits, ``at`` as ``YYYY-MM-DDTHH:MM:SS.ffffff``). ``prev_hash`` is the
``row_hash`` of the row before (by ``id``), NULL for the first row and for the first row after rows written
before migration 0008 (those have no hash and are treated as the chain's start). Editing a row breaks its
own hash; deleting or inserting a row in the middle breaks the next row's ``prev_hash``.

Appends are serialised so that two concurrent ones cannot fork the chain: on PostgreSQL through the
``SECURITY DEFINER`` function ``bangfu_audit_append`` (migration 0009: a transaction-level advisory lock,
then the last row's hash, then the insert — the only way the dashboard's read-only role can write this
table, and it may not write the events of the owner's commands: ``OWNER_EVENTS``); on SQLite the row is
inserted first (which takes the database's write lock until commit) and then given its hashes.
The chain is not keyed: someone who can UPDATE the table and recomputes every later hash is not detected
by the chain alone — keep the last hash ``bangfu audit verify`` prints somewhere else.

API
---
``record(bind, username, event, object=None, scope=None, outcome="ok", detail=None, at=None) -> None``
    Write one row. ``bind`` is an Engine (own transaction, committed at once) or a Connection (the
    row joins the caller's transaction — commit it). ``scope`` is a ``scope.Scope`` or text
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
``record_denied(bind, username, asked, scope=None)``
    A URL asked for a region or unit outside the user's scope: event ``denied``, object the asked scope
    (``scope_text``), scope the user's own, outcome ``denied``.
``scope_text(scope) -> str``
    ``"all"`` for the whole province, else ``"region=130102"``, ``"unit=U1"`` or both joined by ``,``.
``verify(bind) -> ChainCheck``
    Walks the whole log by ``id`` and reports the first row where the chain is broken (see above).

Events (module constants, also in ``EVENTS``): login_ok, login_failed, login_locked (an account locked),
login_throttled (a client blocked), logout, page_view, export, import, unmask, user_add, user_disable,
user_enable, user_passwd, denied (a scope outside the user's). Outcomes in use: ``ok``, ``failed`` and
``denied``.

No streamlit here: the CLI writes and exports the same table (``bangfu audit``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select, text
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
LOGIN_THROTTLED = "login_throttled"
SCOPE_DENIED = "denied"
ORDER_ISSUE = "order_issue"  # a supervision order issued (data_access.supervision)
ORDER_RESPONSE = "order_response"  # a unit's written response to an order

EVENTS = (LOGIN_OK, LOGIN_FAILED, LOGIN_LOCKED, LOGOUT, PAGE_VIEW, EXPORT, IMPORT, UNMASK,
          USER_ADD, USER_DISABLE, USER_ENABLE, USER_PASSWD, LOGIN_THROTTLED, SCOPE_DENIED, ORDER_ISSUE, ORDER_RESPONSE)
# written only by the owner's commands (CLI) or by the sign-in bookkeeping itself: on PostgreSQL the
# dashboard's read-only role cannot append them (bangfu_audit_append refuses, migration 0009)
OWNER_EVENTS = (IMPORT, USER_ADD, USER_DISABLE, USER_ENABLE, USER_PASSWD, LOGIN_LOCKED, LOGIN_THROTTLED)

OK, FAILED, DENIED = "ok", "failed", "denied"

AUDIT_COLUMNS = ["id", "at", "username", "event", "object", "scope", "outcome", "detail"]

# Chinese titles for the audit page and the xlsx/csv export
TITLES = {"id": "序号", "at": "时间（UTC）", "username": "用户", "event": "事件", "object": "对象",
          "scope": "范围", "outcome": "结果", "detail": "详情"}
EVENT_ZH = {
    LOGIN_OK: "登录成功", LOGIN_FAILED: "登录失败", LOGIN_LOCKED: "账号锁定", LOGOUT: "退出登录",
    PAGE_VIEW: "页面访问", EXPORT: "导出", IMPORT: "导入", UNMASK: "查看明文", USER_ADD: "新增用户",
    USER_DISABLE: "停用用户", USER_ENABLE: "启用用户", USER_PASSWD: "修改密码",
    LOGIN_THROTTLED: "登录限流", SCOPE_DENIED: "越权访问",
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
        _append(bind, row)
    else:
        with bind.begin() as conn:
            _append(conn, row)


_APPEND_PG = text("SELECT bangfu_audit_append(:username, :event, :object, :scope, :outcome, :detail, "
                  "CAST(:at AS timestamp))")


def _append(conn: Connection, row: dict) -> None:
    """Append one row to the hash chain (see the module docstring), serialised with every other append."""
    if conn.dialect.name == "postgresql":
        conn.execute(_APPEND_PG, row)
        return
    # SQLite: the INSERT takes the database's write lock (held until commit), so the row before this one
    # cannot change until this row has its hashes
    new_id = conn.execute(audit_log.insert().values(**row)).inserted_primary_key[0]
    prev = conn.execute(select(audit_log.c.row_hash).where(audit_log.c.id < new_id)
                        .order_by(audit_log.c.id.desc()).limit(1)).scalar()
    conn.execute(audit_log.update().where(audit_log.c.id == new_id).values(
        prev_hash=prev, row_hash=row_hash(prev, new_id, row)))


# ------------------------------------------------------------------------------------------ hash chain


def _field(value) -> str:
    return "~" if value is None else f"{len(value)}:{value}"


def canonical(prev_hash: str | None, row_id: int, row: dict) -> str:
    """The text a row's hash is computed over (the same as migration 0009's SQL)."""
    at = row["at"].strftime("%Y-%m-%dT%H:%M:%S.%f")
    fields = (prev_hash, str(int(row_id)), at, row.get("username"), row.get("event"), row.get("object"),
              row.get("scope"), row.get("outcome"), row.get("detail"))
    return "|".join(_field(v) for v in fields)


def row_hash(prev_hash: str | None, row_id: int, row: dict) -> str:
    return hashlib.sha256(canonical(prev_hash, row_id, row).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    """What ``verify`` found: ``rows`` in the log, the first ``legacy`` of them without a hash (written
    before the chain existed: its start), and the first broken row (``broken_id``, ``problem``) if any."""

    rows: int
    legacy: int
    broken_id: int | None = None
    problem: str | None = None
    last_id: int | None = None
    last_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify(bind) -> ChainCheck:
    """Recompute the chain over the whole log, in ``id`` order (see the module docstring)."""
    t = audit_log
    q = select(t.c.id, t.c.at, t.c.username, t.c.event, t.c.object, t.c.scope, t.c.outcome, t.c.detail,
               t.c.prev_hash, t.c.row_hash).order_by(t.c.id)
    rows = legacy = 0
    expected: str | None = None
    chained = False
    last_id = None
    with (bind.connect() if isinstance(bind, Engine) else contextlib.nullcontext(bind)) as conn:
        for r in conn.execution_options(yield_per=5000).execute(q):
            rows += 1
            m = dict(r._mapping)
            last_id = m["id"]
            if m["row_hash"] is None:
                if chained:
                    return ChainCheck(rows, legacy, m["id"], "该记录没有哈希，而哈希链在它之前已经开始：记录被改动或插入",
                                      last_id, expected)
                legacy += 1
                continue
            if m["prev_hash"] != expected:
                return ChainCheck(rows, legacy, m["id"], "该记录的“前一哈希”与上一条记录不符：其前有记录被删除、插入或改动",
                                  last_id, expected)
            if row_hash(m["prev_hash"], m["id"], m) != m["row_hash"]:
                return ChainCheck(rows, legacy, m["id"], "该记录的内容与其哈希不符：记录被改动", last_id, expected)
            expected, chained = m["row_hash"], True
    return ChainCheck(rows, legacy, None, None, last_id, expected)


def record_page_view(bind, username: str, page: str, scope) -> None:
    record(bind, username, PAGE_VIEW, object=page, scope=scope)


def record_export(bind, username: str, list_name: str, rows: int, masked: bool, scope=None,
                  fmt: str | None = None) -> None:
    record(bind, username, EXPORT, object=list_name, scope=scope,
           detail={"rows": int(rows), "masked": bool(masked), "format": fmt})


def record_unmask(bind, username: str, view: str, scope=None, allowed: bool = True) -> None:
    record(bind, username, UNMASK, object=view, scope=scope, outcome=OK if allowed else DENIED)


def record_denied(bind, username: str, asked, scope=None) -> None:
    """A request (a URL) for the scope ``asked``, outside the user's own ``scope``."""
    record(bind, username, SCOPE_DENIED, object=scope_text(asked), scope=scope, outcome=DENIED)


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
