"""Dashboard sessions that survive a reload and a new tab: random tokens, only their hash stored, expiring
and revocable on the server.

A sign-in creates a session: a random token (``secrets.token_urlsafe``, 256 bits) goes to the browser in a
cookie (``COOKIE_NAME``, written by ui/auth.py); the table ``sessions`` keeps only its SHA-256
(``token_hash``), so a copy of the database does not hold a usable token. The token is "signed" in the
sense that matters: it cannot be guessed, and it means something only while its row says so.

Kinds (``kind``)
----------------
``user``    a person's session: absolute lifetime ``settings.session_hours()`` (env ``BANGFU_SESSION_HOURS``,
            default 12) and the idle timeout (``settings.idle_timeout_min()``, env ``BANGFU_IDLE_TIMEOUT_MIN``):
            idle when neither ``last_seen_at`` nor the caller's own record of activity is within it.
``screen``  a meeting screen (投屏模式, started from a user's session): absolute lifetime
            ``settings.screen_hours()`` (env ``BANGFU_SCREEN_HOURS``, default 4), no idle timeout; the
            dashboard shows it only the meeting page, masked and read-only.

A session is valid while its row exists, is not revoked, has not reached ``expires_at``, its user exists
and is enabled, and (kind ``user``) it is not idle. ``resume`` revokes a session it finds idle or expired,
so it can never come back (e.g. after a longer idle timeout is configured). ``last_seen_at`` is written at
most once per ``TOUCH_INTERVAL`` (a minute; a tenth of the idle timeout when that is shorter), not on every
rerun: a reload, which knows only ``last_seen_at``, may judge a session idle that much early.

API (``bind`` is an Engine, or a Connection whose transaction the caller commits; times are naive UTC)
------------------------------------------------------------------------------------------------------
``create(bind, username, kind="user", client=None, now=None) -> (token, Session)``
``check(bind, token, now=None, idle_timeout=None, activity=None) -> Check``   reads only
``resume(bind, token, now=None, idle_timeout=None, activity=None) -> Check``  check, then revoke an idle or
    expired session (``Check.ended``: revoked by this call), or touch a valid one
``touch(bind, session, now=None, interval=TOUCH_INTERVAL) -> bool``  last_seen_at = now, when it is
    ``interval`` old or more
``revoke(bind, token, now=None) -> bool``         sign-out; False when already revoked or unknown
``revoke_user(bind, username, now=None) -> int``  every open session of a user (``users.disable_user`` and
    ``users.set_password`` call it in their transaction)
``sessions_of(bind, username) -> list[Session]``  newest first
``purge(bind, now=None, keep=PURGE_AFTER) -> int`` delete sessions that ended (revoked or expired) more than
    ``keep`` ago; ``bangfu refresh`` (the daily timer) runs it, so the table holds weeks, not years
``hash_token(token) -> str``                      hex SHA-256
``token_ok(value) -> bool``                       looks like a token this module made (a cookie is user input)

``Check.reason`` is one of ``ok``, ``missing`` (no such token), ``revoked``, ``disabled`` (user disabled or
deleted), ``expired``, ``idle``.

No streamlit here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from . import audit, settings
from .schema import sessions, users

COOKIE_NAME = "bangfu_session"
USER, SCREEN = "user", "screen"
KINDS = (USER, SCREEN)
TOUCH_INTERVAL = dt.timedelta(minutes=1)
TOKEN_BYTES = 32
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{40,64}")  # token_urlsafe(32) is 43 characters


@dataclass(frozen=True)
class Session:
    token_hash: str
    username: str
    kind: str
    client: str | None
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None

    def seconds_left(self, now: dt.datetime | None = None) -> int:
        """Whole seconds until ``expires_at`` (0 when past): the cookie's Max-Age."""
        return max(0, int((self.expires_at - _now(now)).total_seconds()))


class Check(NamedTuple):
    ok: bool
    reason: str
    session: Session | None
    ended: bool = False  # resume revoked the session just now (it was idle, expired or its user disabled)


def _now(now: dt.datetime | None) -> dt.datetime:
    return audit.as_naive_utc(now) if now else audit.utcnow()


def _tx(bind: Engine | Connection):
    """The caller's connection as it is, or a transaction of the engine's own (committed on exit)."""
    if isinstance(bind, Connection):
        return contextlib.nullcontext(bind)
    return bind.begin()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_ok(value) -> bool:
    return isinstance(value, str) and _TOKEN_RE.fullmatch(value) is not None


def lifetime(kind: str) -> dt.timedelta:
    return dt.timedelta(hours=settings.screen_hours() if kind == SCREEN else settings.session_hours())


def default_idle_timeout() -> dt.timedelta:
    try:
        return dt.timedelta(minutes=settings.idle_timeout_min())
    except ValueError:
        return dt.timedelta(minutes=30)


def _session(row) -> Session:
    return Session(row.token_hash, row.username, row.kind, row.client, row.created_at, row.last_seen_at,
                   row.expires_at, row.revoked_at)


def create(bind, username: str, kind: str = USER, client: str | None = None,
           now: dt.datetime | None = None) -> tuple[str, Session]:
    """A new session for ``username``; returns the token (for the cookie, never stored) and the row."""
    if kind not in KINDS:
        raise ValueError(f"unknown session kind '{kind}'")
    now = _now(now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = dict(token_hash=hash_token(token), username=username, kind=kind,
               client=(client or None) and str(client)[:100], created_at=now, last_seen_at=now,
               expires_at=now + lifetime(kind), revoked_at=None)
    with _tx(bind) as conn:
        conn.execute(sessions.insert().values(**row))
    return token, Session(**row)


def _read(conn: Connection, token_hash: str):
    q = (select(sessions, users.c.disabled.label("user_disabled"), users.c.username.label("user_exists"))
         .select_from(sessions.outerjoin(users, users.c.username == sessions.c.username))
         .where(sessions.c.token_hash == token_hash))
    return conn.execute(q).first()


def check(bind, token, now: dt.datetime | None = None, idle_timeout: dt.timedelta | None = None,
          activity: dt.datetime | None = None) -> Check:
    """Is the session of ``token`` valid now? ``activity``: the caller's own record of the user's last
    action (e.g. of the browser tab), counted with ``last_seen_at`` against the idle timeout."""
    if not token_ok(token):
        return Check(False, "missing", None)
    now = _now(now)
    with _tx(bind) as conn:
        row = _read(conn, hash_token(token))
    if row is None:
        return Check(False, "missing", None)
    s = _session(row)
    if s.revoked_at is not None:
        return Check(False, "revoked", s)
    if row.user_exists is None or row.user_disabled:
        return Check(False, "disabled", s)
    if now >= s.expires_at:
        return Check(False, "expired", s)
    if s.kind == USER:
        last = s.last_seen_at if activity is None else max(s.last_seen_at, audit.as_naive_utc(activity))
        if now - last > (idle_timeout or default_idle_timeout()):
            return Check(False, "idle", s)
    return Check(True, "ok", s)


def resume(bind, token, now: dt.datetime | None = None, idle_timeout: dt.timedelta | None = None,
           activity: dt.datetime | None = None) -> Check:
    """``check``, then: an idle, expired or disabled user's session is revoked; a valid one is touched."""
    now = _now(now)
    idle_timeout = idle_timeout or default_idle_timeout()
    res = check(bind, token, now=now, idle_timeout=idle_timeout, activity=activity)
    if res.reason in ("idle", "expired", "disabled"):
        return res._replace(ended=revoke(bind, token, now=now))
    if res.ok:
        touch(bind, res.session, now=now, interval=min(TOUCH_INTERVAL, idle_timeout / 10))
    return res


def touch(bind, session: Session, now: dt.datetime | None = None,
          interval: dt.timedelta = TOUCH_INTERVAL) -> bool:
    """Record that the session was used now — only when ``last_seen_at`` is ``interval`` old or more
    (one write a minute at most, not one per rerun). True when written."""
    now = _now(now)
    if session is None or now - session.last_seen_at < interval:
        return False
    with _tx(bind) as conn:
        n = conn.execute(sessions.update()
                         .where(sessions.c.token_hash == session.token_hash, sessions.c.revoked_at.is_(None),
                                sessions.c.last_seen_at <= now - interval)
                         .values(last_seen_at=now)).rowcount
    return n > 0


def revoke(bind, token, now: dt.datetime | None = None) -> bool:
    """End one session (sign-out, idle timeout). False when it was unknown or already revoked."""
    if not token_ok(token):
        return False
    with _tx(bind) as conn:
        n = conn.execute(sessions.update()
                         .where(sessions.c.token_hash == hash_token(token), sessions.c.revoked_at.is_(None))
                         .values(revoked_at=_now(now))).rowcount
    return n > 0


def revoke_user(bind, username: str, now: dt.datetime | None = None) -> int:
    """End every open session of a user (screens included); the number ended."""
    with _tx(bind) as conn:
        return conn.execute(sessions.update()
                            .where(sessions.c.username == username, sessions.c.revoked_at.is_(None))
                            .values(revoked_at=_now(now))).rowcount


PURGE_AFTER = dt.timedelta(days=30)


def purge(bind, now: dt.datetime | None = None, keep: dt.timedelta = PURGE_AFTER) -> int:
    """Delete the rows of sessions that ended (revoked, or past ``expires_at``) more than ``keep`` ago; the
    number deleted. An ended session can never come back, so its row only shows, for ``keep``, when it ended
    (the audit log keeps every sign-in and sign-out)."""
    cutoff = _now(now) - keep
    with _tx(bind) as conn:
        return conn.execute(sessions.delete().where(
            (sessions.c.revoked_at < cutoff) | (sessions.c.expires_at < cutoff))).rowcount


def sessions_of(bind, username: str) -> list[Session]:
    with _tx(bind) as conn:
        rows = conn.execute(select(sessions).where(sessions.c.username == username)
                            .order_by(sessions.c.created_at.desc(), sessions.c.token_hash)).all()
    return [_session(r) for r in rows]
