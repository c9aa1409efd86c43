"""Start-up checks of app.py: the database is reachable and holds data; on the embedded default
database, create the schema and demo data the first time."""

from __future__ import annotations

import logging
import threading

import streamlit as st

from data_access import db, settings, summary
from data_access.views import database_status

from . import data
from .widgets import fail

log = logging.getLogger("bangfu.ui")

MESSAGES = {
    "no_schema": "数据库结构尚未建立或不是最新版本：请先运行 bangfu db upgrade，再用 bangfu import 导入台账。",
    "blank": "数据库中还没有贫困户数据：请先用 bangfu import 导入台账。",
    "empty": "数据库中还没有贫困户数据：请先用 bangfu import 导入台账。",
}


def ensure_database(url: str) -> None:
    """Stop the page with one sentence when the database cannot be used."""
    try:
        status = data.database_status(url)
    except db.BangfuError as exc:
        log.warning("%s", exc)
        fail(f"无法连接数据库（{db.safe_url(url)}），请检查 DATABASE_URL 设置和数据库服务是否运行。")
        return
    if status == "ok":
        return
    if status == "empty" or not db.is_embedded_default(url):
        # demo data only ever goes into the embedded database when it holds nothing at all
        fail(MESSAGES[status])
    _create_demo(url)


def _create_demo(url: str) -> None:
    """The embedded database: bring its schema up to date; generate demo data (and its metric
    summaries) only when it holds no ledger rows at all."""
    with data.init_lock(url):
        engine = data.engine(url)
        db.upgrade(engine)
        if database_status(engine) != "blank":  # an older schema with data, or another session finished first
            data.clear()
            return
        try:
            from data_access import demo
            from data_access.summary import refresh_engine
        except ImportError:
            fail("内置数据库为空，且演示数据生成模块不可用：请用 bangfu import 导入台账。")
            return
        with st.spinner("首次启动，正在生成演示数据…"):
            stats = demo.generate(engine, households=20000, seed=1)
            refresh_engine(engine)
            log.info("demo data generated: %s", stats)
    data.clear()


@st.cache_resource(show_spinner=False)
def start_maintenance(url: str) -> threading.Thread | None:
    """Once per server process: a daemon thread that keeps the stored summaries current by itself
    (summary.ensure_current: today's figures after midnight Beijing time, every stored date after an
    upgrade that changed a rule), checking every BANGFU_SELF_REFRESH_INTERVAL_S seconds. The lock inside
    ensure_current makes the work happen once across processes and servers. Off with BANGFU_SELF_REFRESH=0.

    It writes through its own engine without the dashboard's statement timeout (a refresh takes longer than
    a page's query); a database role that may not write (the read-only role) leaves the work to the
    `bangfu refresh` timer, and the pages then say that today's figures are computed live."""
    if not settings.self_refresh_enabled():
        return None
    stop = threading.Event()
    thread = threading.Thread(target=_maintain, args=(url, stop), name="bangfu-maintenance", daemon=True)
    thread.start()
    return thread


def _maintain(url: str, stop: threading.Event) -> None:
    engine = db.make_engine(url)
    warned = False
    while not stop.is_set():
        try:
            done = summary.ensure_current(engine)
            if done in ("today", "rules"):
                log.info("stored summaries brought current (%s)", done)
                st.cache_data.clear()  # cached live figures of today give way to the stored ones
            warned = False
        except Exception as exc:  # noqa: BLE001 - keep the thread alive; say it once per failure streak
            if not warned:
                log.warning("could not bring the stored summaries current: %s", db.short_error(exc))
                warned = True
        stop.wait(settings.self_refresh_interval_s())
