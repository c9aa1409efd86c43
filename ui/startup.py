"""Start-up checks of app.py: the database is reachable and holds data; on the embedded default
database, create the schema and demo data the first time."""

from __future__ import annotations

import logging

import streamlit as st

from data_access import db
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
