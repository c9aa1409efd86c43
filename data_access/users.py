"""Dashboard users, roles, sign-in and the scope a user may see.

Roles (``ROLES``)
-----------------
``province``  everything (scope ``Scope()``);
``city``      one city-level region (``region_code``; scope ``Scope(region=city)``);
``county``    one county-level region (``region_code``; scope ``Scope(region=county)``);
``unit``      one sending unit (``unit_id``; scope ``Scope(unit=unit_id)``).
``can_unmask`` is a separate permission: the user may ask to see unmasked personal data, per view,
and every such request is audited (``request_unmask``).

Passwords are argon2id hashes (argon2-cffi ``PasswordHasher``); the clear password is never stored or
logged. A user with no password (``password=None``, an e-mail required) can sign in only through OIDC
(``login_oidc``: the identity's e-mail is mapped to the user).

API (every ``bind`` is an Engine, or a Connection where noted; timestamps are naive UTC)
------------------------------------------------------------------------------------------
``add_user(engine, username, password, role, region=None, unit=None, can_unmask=False,
           display_name=None, email=None, actor="cli") -> User``
``get_user(bind, username) -> User | None``
``list_users(bind) -> list[User]``                      sorted by username
``user_by_email(bind, email) -> User | None``           case-insensitive
``disable_user(engine, username, actor="cli") -> User``   also revokes the user's sessions
``enable_user(engine, username, actor="cli") -> User``  also clears a lockout
``set_password(engine, username, password, actor="cli") -> User``  also clears a lockout, revokes sessions
``authenticate(engine, username, password, now=None, client=None) -> AuthResult``
``login_oidc(engine, email, now=None) -> AuthResult``
``logout(bind, user_or_name, reason=None)``              records the ``logout`` event
``user_scope(user) -> Scope``
``effective_scope(bind, user_scope, requested) -> EffectiveScope(scope, allowed)``
``request_unmask(bind, user, view, scope=None) -> bool`` the per-view unmask decision, audited
``idle_expired(last_activity, now=None, timeout=None) -> bool``

Bad input to the management functions raises ``UserError`` (a ``db.BangfuError``) with one sentence.
The management functions record ``user_add`` / ``user_disable`` / ``user_enable`` / ``user_passwd``
audit rows under the ``actor`` name, in the same transaction as the change.

Sign-in (``authenticate``)
--------------------------
``AuthResult.ok`` is True only for an enabled user with the right password whose name and client are not
blocked. ``reason`` is one of ``ok``, ``unknown_user``, ``bad_password``, ``no_password``, ``disabled``,
``locked`` (the name is locked), ``throttled`` (the client is blocked) (and ``unknown_email`` for
``login_oidc``). A page gives ONE answer for unknown_user / bad_password / no_password ("用户名或密码错误")
and one for locked / throttled (wait until ``AuthResult.locked_until``), so that nobody learns which
usernames exist: every rule below treats a name that does not exist exactly like one that does, and every
attempt costs one argon2 verification (against a dummy hash for an unknown name, also while blocked).
"disabled" is only reported to someone who knows the password.

Failures are counted twice, in ``login_throttle`` (``THROTTLE_WINDOW`` = 15 minutes, counted from the
window's first failure):

* per **client** (key ``c:<client>``; ``client`` is what the page passes: the browser's address, or a key
  of its session when the address is unknown): ``CLIENT_THRESHOLD`` (10) failures in a window block that
  client for ``LOCKOUT_DURATION`` (15 minutes), whatever names it tries;
* per **name** (key ``u:<username>``, whether the user exists or not): ``ACCOUNT_THRESHOLD`` (20) failures
  in a window, from all clients together, lock the name for 15 minutes for everybody.

The account threshold is above what one client can reach: a client is blocked at its 10th failure in a
window, refused attempts count nowhere, and a block lasts as long as a window, so any 15 minutes hold at
most 2 × 10 − 1 = 19 failures of one client (9 at the end of one window, 10 at the start of the next,
then a block). One client therefore cannot lock a user out (the user still signs in from another
client), while guessing stays bounded: at most 10 attempts per client and 20 per name in any 15 minutes.
Only several clients together can lock a name (and then only for 15 minutes after their last burst).
Attempts while blocked are refused without looking at the password and extend nothing. A success clears
the name's count (not the client's: a valid account must not buy more guesses at others). The count of an existing user is
mirrored in ``users.failed_attempts`` / ``users.locked_until`` (``bangfu user list``);
``enable_user``/``set_password`` clear it. Every attempt is audited: ``login_ok``; ``login_failed``
(``detail`` = the reason; outcome ``denied`` for ``locked``/``throttled``/``disabled``); the attempt that
locks a name adds ``login_locked``, the one that blocks a client adds ``login_throttled`` (object = client).

On PostgreSQL all of these writes happen inside the SECURITY DEFINER function ``bangfu_login_result``
(migration 0009), as owner and as the dashboard's read-only role alike; on SQLite ``_login_bookkeeping``
does the same in Python under the database's write lock. The dashboard role cannot write the counters or
``audit_log`` directly (``bangfu db grant-readonly``).

The page should re-read the user (``get_user``) on every rerun and end the session when it is gone,
disabled, or idle for longer than ``IDLE_TIMEOUT`` (env ``BANGFU_IDLE_TIMEOUT_MIN``, default 30).

Scope intersection (``effective_scope``)
----------------------------------------
What a page or URL asks for (``requested``) is narrowed to what the user may see (``user_scope``):

* a requested region or unit that does not exist → not allowed;
* region: a region under (or equal to) the user's region is kept; one *above* it (the user's city, the
  province, or no region at all) is narrowed to the user's region; any other region (a neighbouring
  county) → not allowed;
* unit, for a unit user: only the user's own unit (none asked → the user's unit); a region may be asked
  for as well and narrows the unit's figures to that region;
* unit, for a city/county user: only a unit whose seat (``units.region_code``) lies under the user's
  region; a province- or city-level unit asked for by a county user → not allowed, even when that unit
  works in the county (the county's own view, ``Scope(region=county)``, already counts those pairings
  under the county's households);
* not allowed → ``EffectiveScope(NOTHING, False)``: ``NOTHING`` is a scope that matches no row in any
  metric, list or view, so a page that forgets to check ``allowed`` still shows nothing. The page should
  show "无权查看该范围" and an empty view.

What a region scope shows is what ``metrics`` already means by ``Scope(region=...)``: household-based
figures (coverage M1, cadence M3, photos M6, the uncovered and overdue lists) count households under the
region, whoever their helpers are (province-unit helpers included, masked); helper-based figures (cap M2,
ratings M4, replacements M5, the cap and unapproved lists, a unit's helpers) count helpers of units seated
under the region. Helper drill-downs (``views.helper_info`` / ``helper_pairings`` / ``helper_visits``)
take the scope too.

No streamlit here: the CLI (``bangfu user ...``) uses the same functions.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine

from . import audit
from . import sessions
from . import settings
from .db import BangfuError
from .scope import ALL, Conn, Scope
from .schema import LEVEL_RANK, USER_ROLES, login_throttle, regions, units, users

ROLES = USER_ROLES
ROLE_ZH = {"province": "省级", "city": "市级", "county": "县级", "unit": "派出单位"}
# sign-in throttling (see the module docstring; migration 0009's SQL holds the same numbers)
CLIENT_THRESHOLD = 10  # failures of one client in a window: that client is blocked
ACCOUNT_THRESHOLD = 20  # failures of one name (all clients) in a window: the name is locked
LOCKOUT_THRESHOLD = ACCOUNT_THRESHOLD
THROTTLE_WINDOW = dt.timedelta(minutes=15)
LOCKOUT_DURATION = dt.timedelta(minutes=15)  # how long a block or a lock lasts
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{2,40}")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# A scope no row matches: neither the region code nor the unit id can exist (codes are digits; ledger
# ids cannot hold this character in practice and the region lookup of an unknown code yields false()).
NOTHING = Scope(region="\u2205", unit="\u2205")


def _idle_minutes() -> int:
    try:
        return settings.idle_timeout_min()
    except ValueError:
        return 30


IDLE_TIMEOUT = dt.timedelta(minutes=_idle_minutes())


class UserError(BangfuError):
    """Bad input to user management: one plain sentence."""


@dataclass(frozen=True)
class User:
    """A dashboard user as the application sees it (the password hash never leaves this module)."""

    username: str
    display_name: str | None
    role: str
    region_code: str | None
    unit_id: str | None
    can_unmask: bool
    email: str | None
    disabled: bool
    failed_attempts: int
    locked_until: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    has_password: bool = True

    @property
    def scope(self) -> Scope:
        return user_scope(self)

    def locked(self, now: dt.datetime | None = None) -> bool:
        now = audit.as_naive_utc(now) if now else audit.utcnow()
        return self.locked_until is not None and self.locked_until > now

    def as_dict(self) -> dict:
        return {
            "username": self.username, "display_name": self.display_name, "role": self.role,
            "region_code": self.region_code, "unit_id": self.unit_id, "can_unmask": self.can_unmask,
            "email": self.email, "disabled": self.disabled, "has_password": self.has_password,
            "failed_attempts": self.failed_attempts, "locked_until": self.locked_until,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    user: User | None
    reason: str
    locked_until: dt.datetime | None = None


class EffectiveScope(NamedTuple):
    scope: Scope
    allowed: bool


_hasher = PasswordHasher()
_dummy_hash: str | None = None

_USER_COLUMNS = [c for c in users.c if c.name != "password_hash"]


def _user(row) -> User:
    m = row._mapping
    return User(
        username=m["username"], display_name=m["display_name"], role=m["role"], region_code=m["region_code"],
        unit_id=m["unit_id"], can_unmask=bool(m["can_unmask"]), email=m["email"], disabled=bool(m["disabled"]),
        failed_attempts=int(m["failed_attempts"] or 0), locked_until=m["locked_until"],
        created_at=m["created_at"], updated_at=m["updated_at"], has_password=m["password_hash"] is not None,
    )


def _select_user():
    return select(*_USER_COLUMNS, users.c.password_hash)


def _now(now) -> dt.datetime:
    return audit.as_naive_utc(now) if now else audit.utcnow()


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def get_user(bind, username: str | None) -> User | None:
    if not username:
        return None
    with Conn(bind) as conn:
        row = conn.execute(_select_user().where(users.c.username == str(username).strip())).first()
    return _user(row) if row else None


def list_users(bind) -> list[User]:
    with Conn(bind) as conn:
        rows = conn.execute(_select_user().order_by(users.c.username)).all()
    return [_user(r) for r in rows]


def user_by_email(bind, email: str | None) -> User | None:
    email = _norm_email(email)
    if not email:
        return None
    with Conn(bind) as conn:
        row = conn.execute(_select_user().where(users.c.email == email)).first()
    return _user(row) if row else None


# --------------------------------------------------------------------------------------------
# Management (CLI; import/user-management database role)
# --------------------------------------------------------------------------------------------


def _norm_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = str(email).strip().lower()
    return email or None


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"密码不能超过 {MAX_PASSWORD_LENGTH} 个字符")


def _require_user(conn: Connection, username: str):
    row = conn.execute(_select_user().where(users.c.username == username)).first()
    if row is None:
        raise UserError(f"用户 '{username}' 不存在")
    return row


def _role_detail(role, region, unit, can_unmask, email) -> dict:
    d = {"role": role, "can_unmask": bool(can_unmask)}
    if region:
        d["region"] = region
    if unit:
        d["unit"] = unit
    if email:
        d["email"] = email
    return d


def add_user(engine: Engine, username: str, password: str | None, role: str, region: str | None = None,
             unit: str | None = None, can_unmask: bool = False, display_name: str | None = None,
             email: str | None = None, actor: str = "cli") -> User:
    """Create a user (see the module docstring for the rules); records ``user_add``."""
    username = (username or "").strip()
    if not USERNAME_RE.fullmatch(username):
        raise UserError("用户名须为 2–40 个字母、数字或 _ . - 字符")
    if role not in ROLES:
        raise UserError(f"角色 '{role}' 无效，应为 {'、'.join(ROLES)} 之一")
    region = (region or "").strip() or None
    unit = (unit or "").strip() or None
    email = _norm_email(email)
    if email is not None and (len(email) > 200 or not EMAIL_RE.fullmatch(email)):
        raise UserError(f"电子邮箱 '{email}' 格式不正确")
    if display_name is not None:
        display_name = display_name.strip() or None
        if display_name and len(display_name) > 100:
            raise UserError("姓名不能超过 100 个字符")
    if password is None:
        if email is None:
            raise UserError("不设密码的用户必须提供电子邮箱（仅能通过统一身份认证登录）")
    else:
        _check_password(password)
    with engine.begin() as conn:
        if role == "province":
            if region or unit:
                raise UserError("省级用户不能指定地区或派出单位")
        elif role in ("city", "county"):
            if unit:
                raise UserError(f"{ROLE_ZH[role]}用户不能指定派出单位")
            if not region:
                raise UserError(f"{ROLE_ZH[role]}用户必须用 --region 指定一个{'市' if role == 'city' else '县（市、区）'}级区划代码")
            level = conn.execute(select(regions.c.level).where(regions.c.code == region)).scalar()
            if level is None:
                raise UserError(f"区划代码 '{region}' 不存在")
            if level != role:
                raise UserError(f"区划 '{region}' 是 {level} 级，{ROLE_ZH[role]}用户需要 {role} 级区划")
        else:  # unit
            if region:
                raise UserError("派出单位用户不能指定地区（范围由单位决定）")
            if not unit:
                raise UserError("派出单位用户必须用 --unit 指定单位编号")
            if conn.execute(select(units.c.unit_id).where(units.c.unit_id == unit)).first() is None:
                raise UserError(f"派出单位 '{unit}' 不存在")
        if conn.execute(select(users.c.username).where(users.c.username == username)).first() is not None:
            raise UserError(f"用户 '{username}' 已存在")
        if email and conn.execute(select(users.c.username).where(users.c.email == email)).first() is not None:
            raise UserError(f"电子邮箱 '{email}' 已被其他用户使用")
        now = audit.utcnow()
        conn.execute(users.insert().values(
            username=username, display_name=display_name, role=role, region_code=region, unit_id=unit,
            can_unmask=bool(can_unmask), email=email,
            password_hash=_hasher.hash(password) if password is not None else None,
            disabled=False, failed_attempts=0, locked_until=None, created_at=now, updated_at=now,
        ))
        audit.record(conn, actor, audit.USER_ADD, object=username, scope=Scope(region, unit),
                     detail=_role_detail(role, region, unit, can_unmask, email))
        return _user(_require_user(conn, username))


def _set_flags(engine: Engine, username: str, actor: str, event: str, revoke: bool = False, **values) -> User:
    username = (username or "").strip()
    with engine.begin() as conn:
        row = _require_user(conn, username)
        conn.execute(users.update().where(users.c.username == username).values(updated_at=audit.utcnow(), **values))
        if "locked_until" in values:  # an administrator clears a lockout: the name's count too
            conn.execute(login_throttle.delete().where(login_throttle.c.client == _account_key(username)))
        if revoke:  # signed-in browsers and meeting screens of the user end on their next rerun
            sessions.revoke_user(conn, username)
        audit.record(conn, actor, event, object=username, scope=Scope(row.region_code, row.unit_id))
        return _user(_require_user(conn, username))


def disable_user(engine: Engine, username: str, actor: str = "cli") -> User:
    """Disable a user: sign-in fails from now on; the user's sessions are revoked (pages end them on their
    next rerun, a reload finds no session)."""
    return _set_flags(engine, username, actor, audit.USER_DISABLE, revoke=True, disabled=True)


def enable_user(engine: Engine, username: str, actor: str = "cli") -> User:
    """Enable a user again; also clears a lockout."""
    return _set_flags(engine, username, actor, audit.USER_ENABLE, disabled=False, failed_attempts=0,
                      locked_until=None)


def set_password(engine: Engine, username: str, password: str, actor: str = "cli") -> User:
    """Set a new password (argon2id hash); also clears a lockout and revokes the user's sessions (whoever
    knew the old password is signed out)."""
    _check_password(password)
    return _set_flags(engine, username, actor, audit.USER_PASSWD, revoke=True, password_hash=_hasher.hash(password),
                      failed_attempts=0, locked_until=None)


# --------------------------------------------------------------------------------------------
# Sign-in (dashboard; read-only database role)
# --------------------------------------------------------------------------------------------


def _verify(stored_hash: str | None, password: str) -> bool:
    global _dummy_hash
    if stored_hash is None:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("bangfu-dummy-password")
        stored_hash = _dummy_hash
        try:
            _hasher.verify(stored_hash, password or "")
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return _hasher.verify(stored_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def _client_key(client: str | None) -> str:
    return "c:" + (str(client) if client else "-")[:98]


def _account_key(username: str) -> str:
    return "u:" + (username or "")[:98]


def authenticate(engine: Engine, username: str, password: str, now: dt.datetime | None = None,
                 client: str | None = None) -> AuthResult:
    """Check a username and password from ``client`` (see the module docstring); audited."""
    now = _now(now)
    username = (username or "").strip()[:100]
    stored = None
    if USERNAME_RE.fullmatch(username):
        with engine.connect() as conn:
            stored = conn.execute(select(users.c.password_hash).where(users.c.username == username)).scalar()
    good = _verify(stored, password)  # always exactly one argon2 verification, whatever follows
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            reason, until = conn.execute(
                text("SELECT o_reason, o_until FROM bangfu_login_result(:u, :c, :ok, CAST(:now AS timestamp))"),
                {"u": username, "c": client, "ok": good, "now": now}).one()
        else:
            reason, until = _login_bookkeeping(conn, username, client, good, now)
        if reason == "ok":
            return AuthResult(True, get_user(conn, username), "ok")
    return AuthResult(False, None, reason, until)


def _fmt_second(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def _bump(row, now: dt.datetime, threshold: int) -> tuple[int, dt.datetime, dt.datetime | None]:
    """One more failure on a throttle row (None: no row): (failures, window_start, blocked_until)."""
    if row is not None and row.blocked_until is None and row.window_start > now - THROTTLE_WINDOW:
        failures, start = row.failures + 1, row.window_start
    else:
        failures, start = 1, now
    return failures, start, (now + LOCKOUT_DURATION if failures >= threshold else None)


def _login_bookkeeping(conn: Connection, username: str, client: str | None, password_ok: bool,
                       now: dt.datetime) -> tuple[str, dt.datetime | None]:
    """SQLite's copy of bangfu_login_result (migration 0009): the counters, the mirror in ``users`` and the
    audit rows of one attempt; returns (reason, blocked until). Keep the two identical."""
    t = login_throttle
    ckey, akey = _client_key(client), _account_key(username)
    client_text = ckey[2:]
    # the first statement writes: SQLite's write lock is held from here to commit (attempts are serialised)
    conn.execute(t.delete().where(t.c.window_start <= now - THROTTLE_WINDOW,
                                  (t.c.blocked_until.is_(None)) | (t.c.blocked_until <= now)))
    c = conn.execute(select(t).where(t.c.client == ckey)).first()
    a = conn.execute(select(t).where(t.c.client == akey)).first()
    row = conn.execute(_select_user().where(users.c.username == username)).first()
    user = _user(row) if row else None
    scope = user_scope(user) if user else None

    until, reason = None, None
    if a is not None and a.blocked_until is not None and a.blocked_until > now:
        until, reason = a.blocked_until, "locked"
    if c is not None and c.blocked_until is not None and c.blocked_until > now:
        until, reason = max(until or c.blocked_until, c.blocked_until), reason or "throttled"
    if until is not None:
        audit.record(conn, username, audit.LOGIN_FAILED, object=username, scope=scope, outcome=audit.DENIED,
                     detail=reason, at=now)
        return reason, until

    if user is not None and password_ok and row.password_hash is not None:
        if user.disabled:
            audit.record(conn, username, audit.LOGIN_FAILED, object=username, scope=scope, outcome=audit.DENIED,
                         detail="disabled", at=now)
            return "disabled", None
        if a is not None:
            conn.execute(t.delete().where(t.c.client == akey))
        if user.failed_attempts or user.locked_until is not None:
            conn.execute(users.update().where(users.c.username == username)
                         .values(failed_attempts=0, locked_until=None, updated_at=now))
        audit.record(conn, username, audit.LOGIN_OK, object=username, scope=scope, detail="password", at=now)
        return "ok", None

    reason = "unknown_user" if user is None else "no_password" if row.password_hash is None else "bad_password"
    cf, cw, cb = _bump(c, now, CLIENT_THRESHOLD)
    af, aw, ab = _bump(a, now, ACCOUNT_THRESHOLD)
    for key, old, (failures, start, blocked) in ((ckey, c, (cf, cw, cb)), (akey, a, (af, aw, ab))):
        values = {"failures": failures, "window_start": start, "blocked_until": blocked}
        if old is None:
            conn.execute(t.insert().values(client=key, **values))
        else:
            conn.execute(t.update().where(t.c.client == key).values(**values))
    if user is not None:
        conn.execute(users.update().where(users.c.username == username)
                     .values(failed_attempts=af, locked_until=ab, updated_at=now))
    audit.record(conn, username, audit.LOGIN_FAILED, object=username, scope=scope, outcome=audit.FAILED,
                 detail=reason, at=now)
    if ab is not None:
        audit.record(conn, username, audit.LOGIN_LOCKED, object=username, scope=scope,
                     detail={"failed_attempts": af, "locked_until": _fmt_second(ab)}, at=now)
    if cb is not None:
        audit.record(conn, username, audit.LOGIN_THROTTLED, object=client_text,
                     detail={"blocked_until": _fmt_second(cb), "failures": cf}, at=now)
    if ab is not None or cb is not None:
        return ("locked" if ab is not None else "throttled"), max(x for x in (ab, cb) if x is not None)
    return reason, None


def login_oidc(engine: Engine, email: str, now: dt.datetime | None = None) -> AuthResult:
    """Map a signed-in OIDC identity (its verified e-mail, e.g. ``st.user.email``) to a user; audited.
    Fails for an unknown e-mail, a disabled or a locked user."""
    now = _now(now)
    email = _norm_email(email)
    with engine.begin() as conn:
        user = user_by_email(conn, email)
        if user is None:
            audit.record(conn, email, audit.LOGIN_FAILED, object=email, outcome=audit.FAILED,
                         detail="oidc unknown_email", at=now)
            return AuthResult(False, None, "unknown_email")
        scope = user_scope(user)
        for bad, reason in ((user.disabled, "disabled"), (user.locked(now), "locked")):
            if bad:
                audit.record(conn, user.username, audit.LOGIN_FAILED, object=user.username, scope=scope,
                             outcome=audit.DENIED, detail=f"oidc {reason}", at=now)
                return AuthResult(False, None, reason, user.locked_until if reason == "locked" else None)
        audit.record(conn, user.username, audit.LOGIN_OK, object=user.username, scope=scope, detail="oidc", at=now)
        return AuthResult(True, user, "ok")


def logout(bind, user, reason: str | None = None) -> None:
    """Record a logout (``reason`` e.g. "idle timeout"); the page clears its session itself."""
    name = user.username if isinstance(user, User) else user
    scope = user_scope(user) if isinstance(user, User) else None
    audit.record(bind, name, audit.LOGOUT, object=name, scope=scope, detail=reason)


def idle_expired(last_activity: dt.datetime | None, now: dt.datetime | None = None,
                 timeout: dt.timedelta | None = None) -> bool:
    """True when a session idle since `last_activity` has run past the idle timeout (or never started)."""
    if last_activity is None:
        return True
    return _now(now) - audit.as_naive_utc(last_activity) > (timeout or IDLE_TIMEOUT)


# --------------------------------------------------------------------------------------------
# Scope and masking
# --------------------------------------------------------------------------------------------


def user_scope(user: User) -> Scope:
    """What the user may see at most; ``NOTHING`` for a disabled user or an unknown role."""
    if user is None or user.disabled:
        return NOTHING
    if user.role == "province":
        return ALL
    if user.role in ("city", "county"):
        return Scope(region=user.region_code) if user.region_code else NOTHING
    if user.role == "unit":
        return Scope(unit=user.unit_id) if user.unit_id else NOTHING
    return NOTHING


_DENIED = EffectiveScope(NOTHING, False)


def _region_row(conn: Connection, code: str):
    return conn.execute(select(regions).where(regions.c.code == code)).mappings().first()


def _unit_region_row(conn: Connection, unit_id: str):
    """The region row of a unit's seat; None when the unit (or its region) does not exist."""
    q = select(regions).select_from(units.join(regions, regions.c.code == units.c.region_code)).where(
        units.c.unit_id == unit_id)
    return conn.execute(q).mappings().first()


def effective_scope(bind, user_scope: Scope, requested: Scope | None = None) -> EffectiveScope:
    """The requested scope narrowed to the user's (see the module docstring)."""
    requested = requested or ALL
    if user_scope is None or user_scope == NOTHING or requested == NOTHING:
        return _DENIED
    region, unit = requested.region, requested.unit
    with Conn(bind) as conn:
        req_region = _region_row(conn, region) if region else None
        if region and req_region is None:
            return _DENIED
        req_unit_region = _unit_region_row(conn, unit) if unit else None
        if unit and req_unit_region is None:
            return _DENIED
        if user_scope.unit:
            if unit and unit != user_scope.unit:
                return _DENIED
            if not unit and _unit_region_row(conn, user_scope.unit) is None:
                return _DENIED  # the user's unit is gone from the ledger
            unit = user_scope.unit
        if user_scope.region:
            own = _region_row(conn, user_scope.region)
            if own is None:
                return _DENIED  # the user's region is gone from the ledger
            own_col = f"{own['level']}_code"
            if own_col not in own:
                return _DENIED
            if region is None:
                region = user_scope.region
            elif req_region.get(own_col) == user_scope.region:
                pass  # under (or equal to) the user's region
            elif (LEVEL_RANK.get(req_region["level"], 99) < LEVEL_RANK.get(own["level"], -1)
                  and own.get(f"{req_region['level']}_code") == region):
                region = user_scope.region  # above the user's region: narrowed to it
            else:
                return _DENIED
            if unit:
                seat = req_unit_region if unit == requested.unit else _unit_region_row(conn, unit)
                if seat is None or seat.get(own_col) != user_scope.region:
                    return _DENIED
    return EffectiveScope(Scope(region, unit), True)


def may_unmask(user: User | None) -> bool:
    return bool(user is not None and user.can_unmask and not user.disabled)


def request_unmask(bind, user: User, view: str, scope=None) -> bool:
    """The user asks to see unmasked personal data in one view: True only with the permission.
    Records ``unmask`` (outcome ok, or denied without the permission). Pass the result as
    ``unmasked=`` to that view's data functions only; ask again for every other view."""
    allowed = may_unmask(user)
    audit.record_unmask(bind, user.username if user else None, view, scope=scope, allowed=allowed)
    return allowed


def count_users(bind) -> int:
    with Conn(bind) as conn:
        return int(conn.execute(select(func.count()).select_from(users)).scalar() or 0)
