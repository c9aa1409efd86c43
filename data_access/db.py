"""Engines, the embedded default database and schema upgrades."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import schema
from . import settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "data" / "bangfu.sqlite"


class BangfuError(Exception):
    """A user-facing error: its message is one plain sentence, shown without a traceback."""


def default_url() -> str:
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def resolve_url(url: str | None = None) -> str:
    """``--db`` beats ``DATABASE_URL`` beats the embedded SQLite file."""
    url = url or settings.database_url() or default_url()
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        # psycopg 3 is the driver this project ships with
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def is_embedded_default(url: str | None = None) -> bool:
    return resolve_url(url) == default_url()


def _sqlite_pragmas(dbapi_connection, _record):
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


DEFAULT_STATEMENT_TIMEOUT_MS = 15000
CONNECT_TIMEOUT_S = 5


def statement_timeout_ms() -> int:
    """The dashboard's statement_timeout: env BANGFU_STATEMENT_TIMEOUT_MS (0 = none), default 15 s."""
    raw = settings.statement_timeout_raw()
    if not raw:
        return DEFAULT_STATEMENT_TIMEOUT_MS
    try:
        value = int(raw)
    except ValueError:
        raise BangfuError(f"BANGFU_STATEMENT_TIMEOUT_MS 应为毫秒数（整数），而不是 '{raw}'") from None
    if value < 0:
        raise BangfuError("BANGFU_STATEMENT_TIMEOUT_MS 不能为负数")
    return value


def make_engine(url: str | None = None, dashboard: bool = False) -> Engine:
    """An engine for `url` (see resolve_url). PostgreSQL engines always pre-ping pooled connections,
    so connections killed by a database restart are replaced on their next checkout.

    ``dashboard=True`` (the Streamlit app) on PostgreSQL additionally sets ``statement_timeout`` on every
    connection (``statement_timeout_ms()``) and a short connect timeout, so that a page fails with a
    message instead of hanging while the database is down. Creating the engine never connects: the app
    starts while the database is down and works again on the first rerun after it is back."""
    url = resolve_url(url)
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            kw = {}
            if url.startswith("postgresql"):
                # no JIT: our statements are mid-sized aggregations whose JIT compilation took longer than
                # running them (measured at 1M households: seconds of compilation per statement)
                options = "-c jit=off"
                kw["connect_args"] = {"options": options}
                if dashboard:
                    kw["connect_args"] = {"options": f"{options} -c statement_timeout={statement_timeout_ms()}",
                                          "connect_timeout": CONNECT_TIMEOUT_S}
            engine = create_engine(url, pool_pre_ping=True, **kw)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise BangfuError(f"无法使用数据库地址 {safe_url(url)}：{exc}") from exc
    return engine


def is_unavailable(exc: BaseException) -> bool:
    """True for an error that means the database cannot be reached right now (down, restarting, the
    connection was cut) rather than a bad query: the page should show ``unavailable_message`` and
    simply work again on a later rerun (the pool has already discarded the dead connection)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        return not is_timeout(exc)
    return False


def is_timeout(exc: BaseException) -> bool:
    """True when PostgreSQL cancelled a statement that ran past statement_timeout."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) == "57014"


def unavailable_message(exc: BaseException | None = None) -> str:
    """One sentence for a page while the database is unreachable or a query timed out."""
    if exc is not None and is_timeout(exc):
        return "查询超时（超过数据库语句时限），请缩小范围后重试。"
    return "暂时无法连接数据库（可能正在重启或维护），请稍后刷新页面重试。"


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return "<invalid url>"


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema with Alembic."""
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def schema_ready(engine: Engine) -> bool:
    try:
        names = set(inspect(engine).get_table_names())
    except SQLAlchemyError as exc:
        raise BangfuError(f"无法连接数据库 {safe_url(str(engine.url))}：{short_error(exc)}") from exc
    return all(t.name in names for t in schema.metadata.sorted_tables)


def short_error(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def get_meta(engine: Engine, key: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == key)).scalar()


def set_meta(conn, key: str, value: str) -> None:
    t = schema.meta
    conn.execute(t.delete().where(t.c.key == key))
    conn.execute(t.insert().values(key=key, value=value))


def is_demo(engine: Engine) -> bool:
    try:
        return get_meta(engine, "demo") == "1"
    except SQLAlchemyError:
        return False


def has_households(engine: Engine) -> bool:
    from sqlalchemy import func

    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(schema.households)).scalar())
