"""Start-up checks of app.py: the database is reachable and holds data; on the embedded default
database, create the schema and demo data the first time."""

from __future__ import annotations

import ast
import importlib
import logging
import threading
import time
from pathlib import Path

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


# ------------------------------------------------------------------------------------------- warm start

WARM_MARK = "bangfu warm-up done"  # the log line tests and operators look for (before the server answers)
PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"


def page_modules() -> list[str]:
    """Every module app.py and the pages import (read from their source, never run): ui.*, data_access.*,
    plotly, pandas …"""
    names: set[str] = set()
    for path in [PAGES_DIR.parent / "app.py", *sorted(PAGES_DIR.glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)  # `from ui import charts`
    return sorted(names)


def _import(name: str) -> None:
    try:
        importlib.import_module(name)
    except ImportError:  # `from x import function`: x itself was imported above
        pass


def warm_up(url: str | None = None) -> dict[str, float]:
    """What the first request after a server start would otherwise pay, done once at start (issue 15):
    the pages' modules imported (plotly, pandas, ui.*, data_access.*), the map geometry loaded, the
    engine's pool opened, the maintenance thread started and today's overview (province scope, the
    default page) computed into the shared data cache, its charts built once. `bangfu serve` runs it in the
    server's lifespan (serve_app.py), before the server answers /_stcore/health. Never raises: a step that fails
    is logged and the page then does it itself. Returns the seconds each step took."""
    steps: dict[str, float] = {}
    t_all = time.perf_counter()

    def step(name, fn):
        t0 = time.perf_counter()
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a warm-up must never stop the server from starting
            log.warning("warm-up step %s failed: %s", name, db.short_error(exc))
            return None
        finally:
            steps[name] = time.perf_counter() - t0

    # cached calls outside a script run: Streamlit warns about the missing ScriptRunContext; harmless here
    quiet = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        step("imports", lambda: [_import(n) for n in page_modules()])
        from . import maps  # imported above with the pages' modules

        step("maps", lambda: [maps.bounds(level) for level in maps.FILES])
        url = url or data.db_url()
        status = step("connect", lambda: data.database_status(url))  # the pool's first connection
        if status == "ok":
            step("maintenance", lambda: start_maintenance(url))
            _warm_overview(url, step)
        else:
            log.info("warm-up: the database is not ready (%s); the first page checks it", status)
    finally:
        quiet.setLevel(level)
    total = time.perf_counter() - t_all
    log.info("%s in %.1f s (%s)", WARM_MARK, total, ", ".join(f"{k} {v:.2f} s" for k, v in steps.items()))
    return steps


def _warm_overview(url: str, step) -> None:
    """The cached calls of the default page (总览, province scope, today) and its two charts."""
    from data_access.dates import previous_month_end
    from data_access.scope import Scope

    from . import charts
    from . import supervision as ui_sv

    d, scope = settings.today(), Scope()

    def chrome():  # app.py, the filter bar and the freshness note
        data.is_demo(url)
        data.freshness(url, d)
        data.list_regions(url, level="province")
        data.list_regions(url, level="city")
        data.rating_years(url)
        data.unit_options(url, None)

    step("chrome", chrome)
    figs = step("overview", lambda: data.overview(url, d, previous_month_end(d), d.year - 1, scope, "city"))
    step("rankings", lambda: [data.cadence(url, d, by, scope) for by in ("county", "unit")])
    step("supervision", lambda: ui_sv.totals(url, d, scope))

    def figures():
        import plotly.io as pio

        if figs is None:
            return
        cad = figs["ranking"].copy()
        cad["compliance"] = 1 - cad["overdue"] / cad["active_pairings"]
        for fig in (charts.ranking_bar(cad, "compliance", "warm-up", "warm-up", band="compliance"),
                    charts.trend_lines(figs["trend"])):
            pio.to_json(fig, validate=False)

    step("charts", figures)
