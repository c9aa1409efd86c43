"""Reads from a read replica, writes on the primary.

The dashboard only reads the ledger, so its page reads may go to a PostgreSQL streaming replica
(``BANGFU_READ_DATABASE_URL``) while every write — the audit log, sign-in and lockout, sessions, imports, the
summary refresh — stays on the primary (``DATABASE_URL``), and so do the reads that must see their own write.

``make_read_engine(read_url, primary_url)`` is one SQLAlchemy engine for the page reads. Its connections go
to the replica; when the replica cannot be reached, the same engine's new connections go to the primary
instead (application_name ``bangfu-read-fallback``) and the replica is tried again ``retry_s`` seconds later
(``BANGFU_READ_RETRY_S``, default 10): a connection taken from the pool is checked against where reads should
go *now* and replaced when it points at the other server, so reads move back to the replica by themselves.
Pooled connections that a stopped replica killed are found by the pool's pre-ping and replaced the same way.
``run_read`` retries a read once when its connection was lost in the middle of it (the replica stopped while
the statement ran): the retry goes to the primary.

Nothing here is a balancer of its own: the replica is PostgreSQL's streaming replication, the routing is one
engine's connection factory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError

from . import db, settings

log = logging.getLogger("bangfu.routing")

REPLICA, PRIMARY = "replica", "primary"
TARGET_KEY = "bangfu_read_target"  # in a pooled connection's record: where it points
READ_APP, FALLBACK_APP = "bangfu-read", "bangfu-read-fallback"  # PostgreSQL application_name of read connections

T = TypeVar("T")


class ReplicaState:
    """Is the replica usable, or down until some moment (then reads go to the primary)? One per read engine,
    shared by its connections (thread-safe)."""

    def __init__(self, retry_s: float):
        self.retry_s = retry_s
        self.down_until = 0.0
        self.fallbacks = 0  # how many times reads moved to the primary
        self.last_error: str | None = None
        self._lock = threading.Lock()

    def is_down(self) -> bool:
        return time.monotonic() < self.down_until

    def mark_down(self, exc: BaseException | None = None) -> None:
        with self._lock:
            was_down = self.is_down()
            self.down_until = time.monotonic() + self.retry_s
            self.last_error = db.short_error(exc) if exc is not None else self.last_error
            if not was_down:
                self.fallbacks += 1
        if not was_down:
            log.warning("read replica unavailable (%s): reading from the primary, retrying the replica in %g s",
                        self.last_error, self.retry_s)

    def mark_up(self) -> None:
        with self._lock:
            back = self.last_error is not None
            self.last_error = None
        if back:
            log.info("read replica available again: reading from it")


def state(engine: Engine) -> ReplicaState | None:
    """The replica state of a read engine made by make_read_engine (None: a plain engine)."""
    return getattr(engine, "bangfu_replica", None)


def target(conn) -> str:
    """Where a connection of a read engine points: "replica" or "primary" (a plain engine: "primary")."""
    return conn.connection._connection_record.info.get(TARGET_KEY, PRIMARY) if state(conn.engine) else PRIMARY


def read_url(primary_url: str | None = None) -> str:
    """The URL page reads use: ``BANGFU_READ_DATABASE_URL`` for the configured database (DATABASE_URL),
    otherwise the primary's own URL (no replica)."""
    primary = db.resolve_url(primary_url)
    configured = settings.read_database_url()
    if not configured or primary != db.resolve_url(None):
        return primary
    return db.resolve_url(configured)


def make_read_engine(read: str | None, primary: str | None, dashboard: bool = False,
                     retry_s: float | None = None) -> Engine:
    """The engine for page reads: ``read`` (a replica) with the fallback to ``primary`` described above; a
    plain engine of ``primary`` when both URLs are the same. Creating it never connects."""
    primary = db.resolve_url(primary)
    read = db.resolve_url(read)
    if read == primary:
        return db.make_engine(primary, dashboard=dashboard)
    r_url, p_url = make_url(read), make_url(primary)
    if r_url.get_backend_name() != p_url.get_backend_name():
        raise db.BangfuError("BANGFU_READ_DATABASE_URL 与 DATABASE_URL 必须是同一种数据库"
                             "（同为 PostgreSQL 或同为 SQLite）")
    engine = db.make_engine(read, dashboard=dashboard)
    st = ReplicaState(settings.read_retry_s() if retry_s is None else retry_s)
    engine.bangfu_replica = st
    dialect = engine.dialect
    postgres = dialect.name == "postgresql"
    _, r_params = dialect.create_connect_args(r_url)
    p_cargs, p_params = dialect.create_connect_args(p_url)

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, record, cargs, cparams):
        # cparams: the replica's address plus the engine's connect_args (timeouts, options), which the
        # primary's connections get too
        extra = {k: v for k, v in cparams.items() if k not in r_params}
        if not st.is_down():
            try:
                conn = dialect.connect(*cargs, **{**({"application_name": READ_APP} if postgres else {}), **cparams})
            except dialect.loaded_dbapi.Error as exc:
                st.mark_down(exc)
            else:
                record.info[TARGET_KEY] = REPLICA
                st.mark_up()
                return conn
        conn = dialect.connect(*p_cargs, **{**({"application_name": FALLBACK_APP} if postgres else {}), **p_params,
                                            **extra})
        record.info[TARGET_KEY] = PRIMARY
        return conn

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, proxy):
        want = PRIMARY if st.is_down() else REPLICA
        if record.info.get(TARGET_KEY) != want:
            # the pool replaces this connection with a new one (do_connect above), up to twice per checkout
            raise DisconnectionError(f"read connection to the {record.info.get(TARGET_KEY)}; "
                                     f"reads now go to the {want}")
    return engine


def _lost(exc: BaseException) -> bool:
    """The connection was lost or could not be made (also when wrapped in a BangfuError)."""
    while exc is not None:
        if isinstance(exc, SQLAlchemyError) and db.is_unavailable(exc):
            return True
        exc = exc.__cause__
    return False


def run_read(engine: Engine, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(engine, *args, **kwargs)``: a read. On a read engine, a read whose connection to the replica was
    lost in the middle (the replica stopped) is retried once on the primary; any other error is raised."""
    st = state(engine)
    if st is None:
        return fn(engine, *args, **kwargs)
    try:
        return fn(engine, *args, **kwargs)
    except (SQLAlchemyError, db.BangfuError) as exc:
        if not _lost(exc):
            raise  # a bad query or a timeout: the page says so
        if not st.is_down():  # the connection was the replica's (a checkout matches the state)
            st.mark_down(exc)
    return fn(engine, *args, **kwargs)  # the primary; if it is unreachable too, the page says so
