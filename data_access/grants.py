"""PostgreSQL hardening: the dashboard's read-only database role (`bangfu db grant-readonly ROLE`).

Two roles are meant to reach the database:

* the **owner / import role** (the one in ``DATABASE_URL`` for ``bangfu db upgrade``, ``bangfu import``,
  ``bangfu refresh`` and ``bangfu user ...``) owns the tables and writes the ledger and the users;
* the **dashboard role** created here, which the Streamlit app connects as. It may

  - ``CONNECT`` to the database and use schema ``public``;
  - ``SELECT`` every table, now and later (``ALTER DEFAULT PRIVILEGES`` for tables the role running this
    command creates afterwards — run it as the owner / migration role);
  - ``EXECUTE`` the two SECURITY DEFINER functions of migration 0009 — the only way it writes the audit
    log and the sign-in counters: ``bangfu_audit_append`` (one row appended to the hash chain; not the
    events of the owner's commands, and with the database's clock) and ``bangfu_login_result`` (the
    bookkeeping of one sign-in attempt: ``login_throttle``, ``users.failed_attempts``/``locked_until``,
    the login audit rows). It has no INSERT on ``audit_log`` and no UPDATE on ``users`` or
    ``login_throttle``: it can neither reset a lockout counter at will nor insert or alter audit rows
    other than through those functions. (The database cannot check an argon2 password, so a role that
    calls ``bangfu_login_result`` with ``password_ok = true`` clears that name's count — but never without
    a ``login_ok`` row in the chain.);
  - ``SELECT``, ``INSERT`` and ``UPDATE (last_seen_at, revoked_at, expires_at)`` on ``sessions``: the
    dashboard signs users in and out and keeps its sessions alive (data_access.sessions).
  - ``INSERT`` on ``supervision_orders``, ``supervision_items`` and ``supervision_responses`` and
    ``UPDATE (text, username, updated_at)`` on ``supervision_responses``: province, city and county users issue
    督办 orders and units write their response (data_access.supervision checks who may); no UPDATE of an order
    or item and no DELETE of anything.

  Nothing else: no INSERT/UPDATE/DELETE/TRUNCATE on the ledger, no CREATE in ``public``. The role gets
  ``statement_timeout = '15s'`` (``ALTER ROLE ... SET``) on top of what the app's engine sets
  (``db.make_engine(dashboard=True)``), and is NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT.

Running it again is safe: it first revokes whatever the role had on the tables, sequences and functions of
``public`` and then grants the above, so the result is the same each time. It refuses a superuser,
the role it is connected as, and a role that owns tables in ``public`` (an owner can always write).
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Engine

from .db import BangfuError

ROLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
ROLE_STATEMENT_TIMEOUT = "15s"
SESSIONS_WRITABLE_COLUMNS = ("last_seen_at", "revoked_at", "expires_at")
FUNCTIONS = ("bangfu_audit_append", "bangfu_login_result")  # migration 0009
SUPERVISION_INSERT = ("supervision_orders", "supervision_items", "supervision_responses")  # migration 0010
RESPONSE_WRITABLE_COLUMNS = ("text", "username", "updated_at")  # a unit replaces its one response


def grant_readonly(engine: Engine, role: str, password: str | None = None) -> tuple[bool, list[str]]:
    """Create (LOGIN) or update the dashboard's read-only role. Returns (created, warnings)."""
    if engine.dialect.name != "postgresql":
        raise BangfuError("只读角色只适用于 PostgreSQL")
    if not ROLE_RE.fullmatch(role or ""):
        raise BangfuError(f"角色名 '{role}' 无效：须以字母或 _ 开头，只含字母、数字和 _，最长 63 个字符")
    from psycopg import sql

    ident = sql.Identifier(role)
    warnings: list[str] = []
    with engine.begin() as conn:
        me = conn.execute(text("SELECT current_user")).scalar()
        if role == me:
            raise BangfuError(f"不能把当前连接使用的角色 {role} 设为只读角色，请换一个角色名")
        info = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
        if info is not None and info.rolsuper:
            raise BangfuError(f"角色 {role} 是超级用户，不能作为只读角色")
        owned = conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = :r"), {"r": role}
        ).scalar()
        if owned:
            raise BangfuError(f"角色 {role} 拥有 public 模式中的 {owned} 张表，表的所有者总能写入，不能作为只读角色")
        missing = [t for t in ("users", "audit_log", "sessions", "login_throttle") if conn.execute(
            text("SELECT to_regclass(:t)"), {"t": f"public.{t}"}).scalar() is None]
        missing += [f"{f}()" for f in FUNCTIONS if not conn.execute(
            text("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                 "WHERE n.nspname = 'public' AND p.proname = :f"), {"f": f}).scalar()]
        if missing:
            raise BangfuError("数据库结构不是最新（缺少 " + "、".join(missing) + "），请先运行 bangfu db upgrade")
        db = conn.execute(text("SELECT current_database()")).scalar()

        cur = conn.connection.cursor()
        attrs = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS")
        created = info is None
        if created:
            cur.execute(sql.SQL("CREATE ROLE {} ").format(ident) + attrs)
        else:
            cur.execute(sql.SQL("ALTER ROLE {} ").format(ident) + attrs)
        if password is not None:
            cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password)))
        statements = [
            # start from nothing on this schema's objects, so that a second run gives the same result
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(ident),
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(ident),
            sql.SQL("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {}").format(ident),
            sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(ident),
            sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(sql.Identifier(db), ident),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db), ident),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident),
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(ident),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(ident),
            *[sql.SQL("GRANT EXECUTE ON FUNCTION public.{} TO {}").format(sql.Identifier(f), ident)
              for f in FUNCTIONS],
            sql.SQL("GRANT INSERT ON public.sessions TO {}").format(ident),
            sql.SQL("GRANT UPDATE ({}) ON public.sessions TO {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in SESSIONS_WRITABLE_COLUMNS), ident),
            # supervision orders (data_access.supervision): the dashboard issues orders and the units respond;
            # nothing is ever deleted, an order and its items are never changed after issue
            *[sql.SQL("GRANT INSERT ON public.{} TO {}").format(sql.Identifier(t), ident) for t in SUPERVISION_INSERT],
            sql.SQL("GRANT UPDATE ({}) ON public.supervision_responses TO {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in RESPONSE_WRITABLE_COLUMNS), ident),
            sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(ident, sql.Literal(ROLE_STATEMENT_TIMEOUT)),
        ]
        for stmt in statements:
            cur.execute(stmt)
        cur.close()

        # what the role still gets from elsewhere (PUBLIC, memberships) is reported, not changed
        if conn.execute(text("SELECT has_schema_privilege(:r, 'public', 'CREATE')"), {"r": role}).scalar():
            warnings.append(f"角色 {role} 仍可在 public 模式中建表（来自 PUBLIC 的授权）；"
                            "建议执行 REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        groups = conn.execute(text(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = :r ORDER BY 1"), {"r": role}).scalars().all()
        if groups:
            warnings.append(f"角色 {role} 是 {'、'.join(groups)} 的成员，可用 SET ROLE 取得其权限；请检查")
    return created, warnings
