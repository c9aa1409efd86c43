"""Fixtures: every database test runs on SQLite and on the PostgreSQL at TEST_DATABASE_URL.

No mocks: each test gets a real, freshly emptied database with the migrated schema.
"""

from __future__ import annotations

import contextlib
import csv
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# the Chromium and server set-up of benchmarks/sessions.py (CHROMIUM and free_port are imported from here too)
from benchmarks.sessions import CHROMIUM, CHROMIUM_ARGS, free_port, start_server, stop_server, wait_healthy  # noqa: F401
from data_access import schema
from data_access.db import make_engine, upgrade

PG_URL = os.environ.get("TEST_DATABASE_URL")
# the dashboard's self-refresh thread (ui/startup.start_maintenance) would store summaries behind a test's
# back; tests that exercise it turn it on themselves
os.environ.setdefault("BANGFU_SELF_REFRESH", "0")


def _pg_test_database():
    """A database of its own for this test run, created on the server at TEST_DATABASE_URL."""
    base = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1) if PG_URL.startswith("postgresql://") else PG_URL)
    name = f"bangfu_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name), name, base


@pytest.fixture(scope="session")
def pg_database():
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set (.ci/run sets it)")
    url, name, base = _pg_test_database()
    yield url
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_database):
    engine = make_engine(pg_database.render_as_string(hide_password=False))
    upgrade(engine)
    yield engine
    engine.dispose()


def _empty(engine):
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in schema.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names}"))
        else:
            for t in reversed(schema.metadata.sorted_tables):
                conn.execute(t.delete())


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    """A migrated, empty database: SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'test.sqlite'}")
        upgrade(eng)
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_engine")
        _empty(eng)
        yield eng


@pytest.fixture
def db_url(engine):
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def deferred_files(monkeypatch) -> dict:
    """The files the app's download buttons offer under AppTest: file name and file id (the button's
    ``proto.deferred_file_id``) -> the button's data callable (what the browser's request for the file runs: it
    builds the file and writes the export audit row)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    files: dict = {}
    real = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        file_id = real(self, data_callable, mimetype, coordinates, file_name, **kw)
        files[file_name] = files[file_id] = data_callable
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return files


def write_ledger(folder: Path, tables: dict[str, list[dict]], encoding: str = "utf-8") -> Path:
    """Write one CSV per table; the header is the union of the rows' keys in first-seen order."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        cols: list[str] = []
        for r in rows:
            for k in r:
                if k not in cols:
                    cols.append(k)
        with open(folder / f"{name}.csv", "w", newline="", encoding=encoding) as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in rows:
                w.writerow(["" if r.get(c) is None else r.get(c) for c in cols])
    return folder


def row_counts(engine) -> dict[str, int]:
    from sqlalchemy import func, select

    with engine.connect() as conn:
        return {n: conn.execute(select(func.count()).select_from(t)).scalar() for n, t in schema.LEDGER_TABLES.items()}


# ------------------------------------------------------------------ browser (one Chromium per test run)

def require_browser(module: bool = False):
    """Playwright's sync API, when it and the Chromium at CHROMIUM (BANGFU_CHROMIUM) are installed. Otherwise
    the browser test is skipped — but in CI (``CI=true``) it FAILS: a green CI run has opened a browser.
    ``module=True`` for a check at a test module's top level."""
    from data_access import settings

    def unavailable(reason: str):
        if settings.ci():
            pytest.fail(f"{reason} — CI is set, so the browser tests must run", pytrace=False)
        pytest.skip(reason, allow_module_level=module)

    try:
        import playwright.sync_api as sync_api
    except ImportError:
        unavailable("playwright is not installed (pip install -c constraints.txt -e '.[test]')")
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is not installed (apt-get install -y chromium, or set BANGFU_CHROMIUM)")
    return sync_api


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium through Playwright's sync API. One per session: a second
    sync_playwright() while the first is open fails ("Sync API inside the asyncio loop")."""
    sync_api = require_browser()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


# ------------------------------------------------------------------ the real server, for browser tests


@contextlib.contextmanager
def streamlit_server(url: str, log_path: Path, env: dict[str, str] | None = None, script: str = "app.py",
                     timeout_s: float = 60):
    """`streamlit run app.py` (or ``script``, e.g. serve_app.py) on a free port with DATABASE_URL=url and ``env``;
    yields its base URL, stops it after and prints the server log's traceback, if any (the server helpers of
    benchmarks/sessions.py)."""
    port = free_port()
    proc = start_server(url, port, log_path, env=env, script=script)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, base, log_path, timeout_s=timeout_s)
        yield base
    finally:
        stop_server(proc)
        text = log_path.read_text(errors="replace")
        if "Traceback" in text:
            print(f"\nStreamlit server log ({log_path}) holds a traceback:\n{text[-4000:]}")
