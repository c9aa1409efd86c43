"""Province-scale benchmark: every dashboard page on a database of N households — its data time (the page's
recorded data_access calls replayed) and the time of the whole page (the page script run under AppTest).

    .venv/bin/python benchmarks/bench.py --households 1000000 --db postgresql+psycopg://postgres@127.0.0.1/bangfu_bench1m
    .venv/bin/python benchmarks/bench.py --households 100000 --db sqlite:////tmp/bench100k.sqlite
    .venv/bin/python benchmarks/bench.py --quick --db sqlite:////tmp/bench_quick.sqlite

What it does, in order (progress goes to stderr, the results table to stdout):

1. Database: reuses ``--db`` when it holds demo data with exactly N households (unless ``--rebuild``);
   otherwise runs ``demo.generate`` and ``summary.refresh_engine`` and times both (together they are
   what ``bangfu demo`` does). On a reused database whose summaries are not stored for today, or
   with ``--time-refresh``, one refresh is run and timed.
2. Recording: every page is run once under Streamlit's AppTest (app.py + the page, with query
   parameters, DATABASE_URL = the bench database) while every ``st.cache_data`` function of
   ``ui/data.py`` is wrapped to record its name and arguments. So the bench replays exactly what the
   pages call, and follows the pages when they change.
3. Replay, ``--runs`` times: for each page and date, the Streamlit cache is emptied, then each recorded
   call is made through its cached function twice: the first call is the cold one (a cache miss:
   query + pandas + hashing and pickling the result into the cache; a repeated call within the page
   is a hit, as in a real run), the second the warm one (a hit: hashing the arguments and unpickling
   the stored copy). A page's cold (warm) **data time** is the sum over its calls: what the page waits
   for its data, not the page. The table shows medians.
   Dates: today (no ``as_of`` in the URL) and today − 200 days (not a stored summary date).
3b. Whole page, ``--runs`` times: the page script itself, ``AppTest.from_file(app.py)`` + ``switch_page`` +
   query parameters + ``run()`` — app.py's chrome, the filter bar, the page's data calls, its charts and
   tables turned into Streamlit's messages; no browser, no network, no rendering. **Cold**: with the
   Streamlit data cache emptied first (``st.cache_data.clear()``; ``st.cache_resource`` objects such as the
   engine are kept, as in a running server); **warm**: a second, new AppTest session of the same page
   right after, its data calls cache hits. Only ``run()`` is timed.
4. Baseline: the overview's core figures (coverage, cap and cadence by city, province totals) the
   naive way — ``pandas.read_sql`` of whole tables, then pandas — on a database of
   ``--baseline-households`` (the same database when N is not larger; otherwise a second one, built
   or reused the same way). Checked against the metric engine; a mismatch prints a warning.
5. Import throughput: ``import_ledger`` of a synthetic ledger (benchmarks/import_bench.py) with
   ``--import-visits`` visits into a scratch database that is created and dropped (PostgreSQL:
   ``bangfu_bench_import`` on the same server; SQLite: a temp file). The time includes the summary
   refresh that import_ledger runs inside its transaction.
6. Peak memory: ru_maxrss of this process after each phase, and of child processes.
7. ``--floor`` (or ``--floor-only``): coverage, cap and cadence by county and the overdue list on the last
   month-end, a mid-month day and today — the dashboard's path, the live SQL and the DuckDB floor, side by side.
8. ``--browser``: whole pages in a real browser on the same database (browser_bench.py ``--parts start,dates``:
   the first page after a server start with the warm-up off and on, and the pages of today, the last month-end
   and a mid-month day, cold and warm, in a new tab and a new profile), printed last with their load averages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# bare-mode cache calls and AppTest log a warning per call (no runtime, no ScriptRunContext)
os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")
# the dashboard's PostgreSQL statement_timeout (15 s by default) would turn a slow call into an error
# page; the bench measures how long the call takes instead, and flags calls past 15 s
os.environ.setdefault("BANGFU_STATEMENT_TIMEOUT_MS", "0")
# app.py's self-refresh thread (ui/startup.start_maintenance) would empty the cache behind the timings;
# prepare() stores today's summaries itself
os.environ.setdefault("BANGFU_SELF_REFRESH", "0")
DASHBOARD_TIMEOUT_S = 15.0
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from data_access import db, demo, schema, settings  # noqa: E402
from data_access import metrics as m  # noqa: E402
from data_access import rules
from data_access import registry
from data_access.scope import ALL, Scope
from data_access import summary  # noqa: E402
from data_access.dates import months_before  # noqa: E402

APP = str(ROOT / "app.py")
PAST_DAYS = 200

# targets of the issue "Province scale: every page fast on a million households"
TARGETS = {
    # kind: (households the targets are stated for, today cold s, today warm s or None, past cold s)
    "postgresql": (1_000_000, 0.100, 0.010, 1.5),
    "sqlite": (100_000, 1.0, None, 3.0),
}
REFRESH_TARGET_S = 30.0  # PostgreSQL, 1M households
DEMO_TARGET_S = 180.0  # `bangfu demo --households 1000000` (generate + refresh), PostgreSQL


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def quiet_streamlit() -> None:
    """Bare-mode cache calls and AppTest log a warning per call; keep stderr readable."""
    from streamlit import logger as st_logger

    st_logger.set_log_level("error")
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith("streamlit"):
            lg = logging.getLogger(name)
            lg.setLevel(logging.ERROR)
            if _drop_warnings not in lg.filters:  # AppTest resets levels; a filter stays
                lg.addFilter(_drop_warnings)


def _drop_warnings(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: kilobytes


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = seconds * 1000
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms:,.0f} ms" if seconds < 60 else f"{seconds:,.1f} s"


def median(xs):
    return statistics.median(xs) if xs else None


# ------------------------------------------------------------------------------------------- databases


def kind_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def pg_admin(url: str):
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def pg_create(url: str, drop: bool = False) -> None:
    name = make_url(url).database
    admin = pg_admin(url)
    with admin.connect() as c:
        if drop:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def pg_drop(url: str) -> None:
    name = make_url(url).database
    admin = pg_admin(url)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def household_count(engine) -> int | None:
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(schema.households)).scalar()
    except Exception:  # noqa: BLE001 - no schema yet
        return None


def prepare(url: str, households: int, today: dt.date, rebuild: bool, time_refresh: bool) -> dict:
    """Build or reuse a demo database of exactly `households`; returns timings and the engine."""
    if kind_of(url) == "postgresql":
        pg_create(url)
    engine = db.make_engine(url)
    db.upgrade(engine)
    out = {"engine": engine, "url": url, "generate_s": None, "refresh_s": None, "reused": False, "note": ""}
    n = household_count(engine)
    if not rebuild and db.is_demo(engine) and n == households:
        out["reused"] = True
        with engine.connect() as conn:
            # every kind of the current summary design (a database refreshed by older code lacks some)
            stored = all(summary.available(conn, kind, today) for kind in summary.day_kinds())
        log(f"reusing {db.safe_url(url)}: demo database with {n:,} households"
            + ("" if stored else "; summaries for today are missing"))
        if not stored or time_refresh:
            t0 = time.perf_counter()
            refresh = summary.refresh_engine(engine, today=today)
            out["refresh_s"] = time.perf_counter() - t0
            out["note"] = "reused database, summaries refreshed"
            log(f"summary refresh: {out['refresh_s']:.1f} s ({refresh})")
        else:
            out["note"] = "reused database (not regenerated: --rebuild to time generation)"
        return out
    log(f"generating demo data: {households:,} households into {db.safe_url(url)} …")
    t0 = time.perf_counter()
    stats = demo.generate(engine, households=households, seed=1, as_of=today)
    out["generate_s"] = time.perf_counter() - t0
    log(f"demo generated in {out['generate_s']:.1f} s: {stats}")
    out["stats"] = stats
    t0 = time.perf_counter()
    refresh = summary.refresh_engine(engine, today=today)
    out["refresh_s"] = time.perf_counter() - t0
    log(f"summary refresh: {out['refresh_s']:.1f} s ({refresh})")
    out["note"] = "generated"
    return out


def baseline_url(url: str, n: int) -> str:
    if kind_of(url) == "sqlite":
        path = Path(url.split("///", 1)[1])
        suffix = path.suffix or ".sqlite"
        return f"sqlite:///{path.with_name(f'{path.stem}.baseline{n}{suffix}')}"
    u = make_url(url)
    return u.set(database=f"{u.database}_baseline{n}").render_as_string(hide_password=False)


def biggest_unit_and_county(engine) -> tuple[str | None, str | None]:
    h, hh, r = schema.helpers, schema.households, schema.regions
    with engine.connect() as conn:
        unit = conn.execute(
            select(h.c.unit_id).group_by(h.c.unit_id).order_by(func.count().desc(), h.c.unit_id).limit(1)
        ).scalar()
        county = conn.execute(
            select(r.c.county_code).select_from(hh.join(r, r.c.code == hh.c.village_code))
            .where(r.c.county_code.is_not(None)).group_by(r.c.county_code)
            .order_by(func.count().desc(), r.c.county_code).limit(1)
        ).scalar()
    return unit, county


def server_info(engine) -> str:
    if engine.dialect.name == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    with engine.connect() as conn:
        v = conn.execute(text("SHOW server_version")).scalar()
        sb = conn.execute(text("SHOW shared_buffers")).scalar()
        wm = conn.execute(text("SHOW work_mem")).scalar()
    return f"PostgreSQL {v} (shared_buffers {sb}, work_mem {wm})"


# ------------------------------------------------------------------------------------------- recording


def cached_functions() -> dict:
    """name -> CachedFunc of every st.cache_data function in ui/data.py."""
    from streamlit.runtime.caching.cache_type import CacheType
    from streamlit.runtime.caching.cache_utils import CachedFunc

    import ui.data as data

    return {n: o for n, o in vars(data).items()
            if isinstance(o, CachedFunc) and o._info.cache_type == CacheType.DATA}


def record(url: str, pages: list[dict], timeout: float) -> None:
    """Run each page under AppTest and store in page["calls"] the (name, args, kwargs) of every
    cached data call it made, in order."""
    import ui.data as data

    funcs = cached_functions()
    calls: list = []

    def wrap(name, f):
        def recorder(*args, **kwargs):
            calls.append((name, args, kwargs))
            return f(*args, **kwargs)

        return recorder

    os.environ["DATABASE_URL"] = url
    for n, f in funcs.items():
        setattr(data, n, wrap(n, f))
    try:
        for p in pages:
            t0 = time.perf_counter()
            at = page_app(p, timeout)  # non-default pages' url_path is their file name
            quiet_streamlit()
            calls.clear()
            at.run()
            p["calls"] = list(calls)
            p["error"] = "; ".join(e.message for e in at.exception) if at.exception else None
            title = at.title[0].value if len(at.title) else "?"
            log(f"recorded {p['label']} [{p['date_label']}]: {len(p['calls'])} calls, title {title!r}, "
                f"{time.perf_counter() - t0:.1f} s" + (f", EXCEPTION {p['error']}" if p["error"] else ""))
    finally:
        for n, f in funcs.items():
            setattr(data, n, f)


def call_label(name: str, args: tuple, kwargs: dict) -> str:
    def short(x):
        if isinstance(x, dt.date):
            return x.isoformat()
        if isinstance(x, Scope):
            parts = [f"{k}={v}" for k, v in (("region", x.region), ("unit", x.unit)) if v]
            return f"Scope({', '.join(parts)})"
        return repr(x)

    rest = [short(a) for a in args[1:]] + [f"{k}={short(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(rest)})"


def replay(calls: list, url: str | None = None) -> tuple[float, float, list[tuple[float, float]]]:
    """Empty the cache, then make each call cold (a miss) and at once warm (a hit).
    Returns (cold total, warm total, per-call (cold, warm))."""
    import streamlit as st

    funcs = cached_functions()
    st.cache_data.clear()
    gc.collect()
    per = []
    for name, args, kwargs in calls:
        if url is not None:
            args = (url, *args[1:])
        f = funcs[name]
        t0 = time.perf_counter()
        f(*args, **kwargs)
        t1 = time.perf_counter()
        f(*args, **kwargs)
        t2 = time.perf_counter()
        per.append((t1 - t0, t2 - t1))
    st.cache_data.clear()
    return sum(c for c, _ in per), sum(w for _, w in per), per


def page_app(p: dict, timeout: float):
    """A new AppTest of app.py switched to the page, with its query parameters (as record() runs it)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    if p["path"] != "pages/overview.py":
        at.switch_page(p["path"])
    for k, v in p["params"].items():
        at.query_params[k] = v
    return at


def whole_page(p: dict, timeout: float) -> tuple[float, float, str | None]:
    """The whole page run under AppTest: cold (data cache emptied) and then warm (a new session, cache
    filled). Returns (cold s, warm s, error message or None)."""
    import streamlit as st

    st.cache_data.clear()
    gc.collect()
    times = []
    for _ in ("cold", "warm"):
        at = page_app(p, timeout)
        quiet_streamlit()
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        if at.exception:
            return times[0], times[-1], "; ".join(e.message for e in at.exception)
    st.cache_data.clear()
    return times[0], times[1], None


# ------------------------------------------------------------------------------------------- DuckDB floor
# The same exact figures computed by DuckDB (an embedded columnar engine, benchmark-only: the `bench` extra)
# over an in-memory copy of the ledger's columns: what a date's metric costs when nothing is stored — the
# floor the dashboard's SQL on the same machine is compared with (issue 15: within 4× of it for any date).

FLOOR_TABLES = {
    "regions": (["code", "province_code", "city_code", "county_code"], []),
    "units": (["unit_id", "level", "region_code"], []),
    "helpers": (["helper_id", "unit_id", "department", "category"], []),
    "households": (["household_id", "village_code", "status"], []),
    "pairings": (["pairing_id", "helper_id", "household_id", "start_date", "end_date"], ["start_date", "end_date"]),
    "visits": (["household_id", "helper_id", "visit_date", "mode"], ["visit_date"]),
}

FLOOR_SQL = {
    # M1 by the household's county (rules.group_key: county, else city, else province)
    "coverage": """
        WITH act AS (SELECT p.household_id, max(CASE WHEN h.category = 'cadre' THEN 1 ELSE 0 END) AS cadre
                     FROM pairings p JOIN helpers h USING (helper_id)
                     WHERE p.start_date <= $d AND (p.end_date IS NULL OR p.end_date > $d) GROUP BY p.household_id)
        SELECT coalesce(r.county_code, r.city_code, r.province_code) AS code, count(*) AS households,
               count(a.household_id) AS covered,
               sum(CASE WHEN hh.status = 'not_lifted' AND a.household_id IS NOT NULL AND a.cadre = 0 THEN 1 ELSE 0 END)
        FROM households hh JOIN regions r ON r.code = hh.village_code LEFT JOIN act a USING (household_id)
        WHERE hh.status IN ('not_lifted', 'lifted_with_policy') GROUP BY 1""",
    # M2 by the helper unit's county
    "cap": """
        WITH pairs AS (SELECT DISTINCT p.helper_id, p.household_id FROM pairings p JOIN households hh USING (household_id)
                       WHERE p.start_date <= $d AND (p.end_date IS NULL OR p.end_date > $d)
                         AND hh.status IN ('not_lifted', 'lifted_with_policy')),
             loads AS (SELECT helper_id, count(*) AS load FROM pairs GROUP BY helper_id)
        SELECT coalesce(r.county_code, r.city_code, r.province_code) AS code, count(*) AS helpers,
               sum(CASE WHEN l.load > 5 THEN 1 ELSE 0 END), sum(CASE WHEN l.load > 5 THEN l.load - 5 ELSE 0 END)
        FROM loads l JOIN helpers h USING (helper_id) JOIN units u ON u.unit_id = h.unit_id
        JOIN regions r ON r.code = u.region_code GROUP BY 1""",
    # M3 by the household's county: last(p) from the own or the department's in-home visits up to D
    "cadence": """
        WITH ap AS (SELECT p.pairing_id, p.helper_id, p.household_id, p.start_date, h.unit_id, h.department,
                           (u.level = 'province' AND coalesce(h.department, '') <> '') AS dept, hh.village_code
                    FROM pairings p JOIN households hh USING (household_id) JOIN helpers h ON h.helper_id = p.helper_id
                    JOIN units u ON u.unit_id = h.unit_id
                    WHERE p.start_date <= $d AND (p.end_date IS NULL OR p.end_date > $d)
                      AND hh.status IN ('not_lifted', 'lifted_with_policy')),
             own AS (SELECT household_id, helper_id, max(visit_date) AS last FROM visits
                     WHERE mode = 'in_home' AND visit_date <= $d GROUP BY ALL),
             dep AS (SELECT o.household_id, h.unit_id, h.department, max(o.last) AS last
                     FROM own o JOIN helpers h USING (helper_id) JOIN units u ON u.unit_id = h.unit_id
                     WHERE u.level = 'province' AND coalesce(h.department, '') <> '' GROUP BY ALL),
             st AS (SELECT ap.*, CASE WHEN ap.dept THEN d.last ELSE o.last END AS last
                    FROM ap LEFT JOIN own o ON o.household_id = ap.household_id AND o.helper_id = ap.helper_id
                    LEFT JOIN dep d ON ap.dept AND d.household_id = ap.household_id AND d.unit_id = ap.unit_id
                                   AND d.department = ap.department)
        SELECT coalesce(r.county_code, r.city_code, r.province_code) AS code, count(*) AS active_pairings,
               sum(CASE WHEN greatest(coalesce(st.last, st.start_date), st.start_date)
                             < CASE WHEN st.dept THEN $c4 ELSE $c2 END THEN 1 ELSE 0 END)
        FROM st JOIN regions r ON r.code = st.village_code GROUP BY 1""",
}


def duckdb_ledger(engine):
    """An in-memory DuckDB holding the ledger columns the floor queries read (ids and codes as text,
    dates as DATE). PostgreSQL: COPY … TO STDOUT into CSV files; SQLite: through pandas."""
    import duckdb

    con = duckdb.connect()
    with tempfile.TemporaryDirectory(prefix="bangfu_floor_") as tmp:
        for name, (cols, dates) in FLOOR_TABLES.items():
            casts = ", ".join(f"CAST({c} AS DATE) AS {c}" if c in dates else c for c in cols)
            if engine.dialect.name == "postgresql":
                path = Path(tmp) / f"{name}.csv"
                raw = engine.raw_connection()
                try:
                    with raw.cursor() as cur, open(path, "wb") as f:
                        with cur.copy(f"COPY (SELECT {', '.join(cols)} FROM {name}) TO STDOUT WITH (FORMAT csv, HEADER)") as cp:
                            for chunk in cp:
                                f.write(chunk)
                finally:
                    raw.close()
                con.execute(f"CREATE TABLE {name} AS SELECT {casts} FROM read_csv('{path}', header = true, "
                            f"all_varchar = true)")
            else:
                with engine.connect() as conn:
                    df = pd.read_sql(text(f"SELECT {', '.join(cols)} FROM {name}"), conn)
                con.register("df_in", df.astype(object).where(df.notna(), None))
                con.execute(f"CREATE TABLE {name} AS SELECT {casts} FROM df_in")
                con.unregister("df_in")
    return con


def floor_figures(con, metric: str, d: dt.date) -> dict:
    params = {"d": d, "c2": months_before(d, rules.INTERVAL_MONTHS), "c4": months_before(d, rules.DEPARTMENT_INTERVAL_MONTHS)}
    sql = FLOOR_SQL[metric]
    rows = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).fetchall()
    return {r[0]: tuple(int(x or 0) for x in r[1:]) for r in rows if r[0] is not None and (r[1] or 0) > 0}


def frame_figures(df: pd.DataFrame, metric: str) -> dict:
    fields = registry.fields(metric)
    return {r["code"]: tuple(int(r[f]) for f in fields) for _, r in df.iterrows()}


def floor_compare(engine, dates: list[tuple[str, dt.date]], runs: int) -> list[dict]:
    """Per metric (by county, province-wide) and date: the dashboard's path (stored summary, else the overdue
    spans for cadence, else live), the live SQL (summary=False, the reference) and the DuckDB floor, medians
    of ``runs``; and the overdue list (problems.overdue, first 1,000 rows as the cadence page asks)."""
    from data_access import problems as pb

    t0 = time.perf_counter()
    con = duckdb_ledger(engine)
    log(f"DuckDB copy of the ledger: {time.perf_counter() - t0:.1f} s")
    out = []
    for label, d in dates:
        for metric in FLOOR_SQL:  # the registry's metrics with a DuckDB floor
            times = {"ours": [], "live": [], "floor": []}
            res = {}
            for _ in range(runs):
                for path in ("ours", "live", "floor"):
                    gc.collect()
                    t1 = time.perf_counter()
                    if path == "floor":
                        res[path] = floor_figures(con, metric, d)
                    else:
                        res[path] = frame_figures(m.compute(engine, metric, "county", d, ALL, summary=path == "ours"), metric)
                    times[path].append(time.perf_counter() - t1)
            with engine.connect() as conn:
                how = ("stored" if summary.stored_rows(conn, metric, "county", ALL, [d]) is not None
                       else "spans" if metric == "cadence" and summary.spans_stored(conn)
                       else "stored date + changes" if metric != "cadence" and summary.stored_before(conn, metric, d)
                       else "live")
            out.append({"what": f"{metric} by county", "label": label, "date": d, "how": how,
                        **{k: median(v) for k, v in times.items()},
                        "agree": res["ours"] == res["live"] == res["floor"]})
            log(f"floor {metric} {d}: ours ({how}) {out[-1]['ours']:.3f} s, live {out[-1]['live']:.3f} s, "
                f"DuckDB {out[-1]['floor']:.3f} s, agree={out[-1]['agree']}")
        times = {"ours": [], "live": []}
        lists = {}
        for _ in range(runs):
            for path in ("ours", "live"):
                gc.collect()
                t1 = time.perf_counter()
                if path == "ours":
                    lists[path] = pb.overdue(engine, d, ALL, limit=1000)
                else:
                    with engine.connect() as conn:
                        ap, ref, cutoff = rules._pairing_status(conn, d, ALL)
                        q = (select(ap.c.pairing_id, rules.days_between(conn, d, ref).label("gap_days"))
                             .where(ref < cutoff).order_by(rules.days_between(conn, d, ref).desc(), ap.c.pairing_id)
                             .limit(1000))
                        lists[path] = [tuple(r) for r in conn.execute(q)]
                times[path].append(time.perf_counter() - t1)
        mine = [(a, int(b)) for a, b in zip(lists["ours"]["pairing_id"], lists["ours"]["gap_days"])]
        theirs = [(a, int(b)) for a, b in lists["live"]]
        with engine.connect() as conn:
            how = "stored" if summary.status_date(conn, d) else "spans" if summary.spans_stored(conn) else "live"
        out.append({"what": "overdue list (first 1,000)", "label": label, "date": d, "how": how,
                    "ours": median(times["ours"]), "live": median(times["live"]), "floor": None,
                    "agree": mine == theirs})
        log(f"floor overdue list {d}: ours ({how}) {out[-1]['ours']:.3f} s, live {out[-1]['live']:.3f} s, "
            f"agree={mine == theirs}")
    con.close()
    return out


def print_floor(rows: list[dict], load_before: str) -> None:
    print(f"## The dashboard's SQL beside the live SQL and the DuckDB floor (province-wide; load average "
          f"before {load_before}, after {load_average()})")
    print()
    print("| figures | date | path | ours | live SQL | DuckDB floor | ours ÷ floor | live ÷ floor | same figures |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        fl = r["floor"]
        ratio = lambda x: f"{x / fl:.1f}×" if fl else "—"  # noqa: E731
        print(f"| {r['what']} | {r['label']} ({r['date'].isoformat()}) | {r['how']} | {fmt_s(r['ours'])} | "
              f"{fmt_s(r['live'])} | {fmt_s(fl)} | {ratio(r['ours'])} | {ratio(r['live'])} | "
              f"{'yes' if r['agree'] else '**NO**'} |")
    print()


# ------------------------------------------------------------------------------------------- baseline


def _group_city(df: pd.DataFrame, prefix: str = "") -> pd.Series:
    """rules.group_key for "city": the city, or the province where the chain has no city."""
    return df[f"{prefix}city_code"].fillna(df[f"{prefix}province_code"])


def naive_overview(engine, d: dt.date) -> dict:
    """The overview's core figures the naive way: whole tables into pandas, then pandas."""
    with engine.connect() as conn:
        t = {name: pd.read_sql(tab.select(), conn) for name, tab in (
            ("households", schema.households), ("pairings", schema.pairings), ("helpers", schema.helpers),
            ("units", schema.units), ("regions", schema.regions), ("visits", schema.visits))}
    hh, pr, he, un, rg, vi = (t[k] for k in ("households", "pairings", "helpers", "units", "regions", "visits"))
    ts = pd.Timestamp(d)
    for df, cols in ((pr, ("start_date", "end_date")), (vi, ("visit_date",))):
        for c in cols:
            df[c] = pd.to_datetime(df[c])
    reg = rg[["code", "province_code", "city_code"]]
    hh = hh[hh["status"].isin(schema.IN_SCOPE_STATUSES)].merge(reg, left_on="village_code", right_on="code")
    hh["city"] = _group_city(hh)
    active = pr[(pr["start_date"] <= ts) & (pr["end_date"].isna() | (pr["end_date"] > ts))]
    active = active.merge(he[["helper_id", "unit_id", "department", "category"]], on="helper_id")

    # M1 coverage
    has_cadre = (active["category"] == "cadre").groupby(active["household_id"]).max()
    cov = hh[["household_id", "status", "city"]].copy()
    cov["covered"] = cov["household_id"].isin(has_cadre.index).astype(int)
    cov["weak"] = ((cov["status"] == "not_lifted") & (cov["covered"] == 1)
                   & ~cov["household_id"].map(has_cadre).fillna(False).astype(bool)).astype(int)
    coverage = cov.groupby("city").agg(households=("household_id", "size"), covered=("covered", "sum"),
                                       weak=("weak", "sum"))

    # M2 cap
    ap = active[active["household_id"].isin(hh["household_id"])]
    loads = ap.groupby("helper_id")["household_id"].nunique().rename("load").reset_index()
    loads = loads.merge(he[["helper_id", "unit_id"]], on="helper_id").merge(
        un[["unit_id", "region_code"]], on="unit_id").merge(reg, left_on="region_code", right_on="code")
    loads["city"] = _group_city(loads)
    loads["violators"] = (loads["load"] > rules.CAP).astype(int)
    loads["excess"] = (loads["load"] - rules.CAP).clip(lower=0)
    cap = loads.groupby("city").agg(helpers=("helper_id", "size"), violators=("violators", "sum"),
                                    excess=("excess", "sum"))

    # M3 cadence
    ap = ap.merge(un[["unit_id", "level"]], on="unit_id").merge(hh[["household_id", "city"]], on="household_id")
    ap["dept"] = (ap["level"] == "province") & (ap["department"].fillna("") != "")
    seen = vi[(vi["mode"] == "in_home") & (vi["visit_date"] <= ts)]
    own = seen.groupby(["household_id", "helper_id"])["visit_date"].max().rename("own_last").reset_index()
    ap = ap.merge(own, on=["household_id", "helper_id"], how="left")
    dseen = seen.merge(he[["helper_id", "unit_id", "department"]], on="helper_id")
    dlast = dseen.groupby(["household_id", "unit_id", "department"])["visit_date"].max().rename("dept_last").reset_index()
    ap = ap.merge(dlast, on=["household_id", "unit_id", "department"], how="left")
    last = ap["dept_last"].where(ap["dept"], ap["own_last"])
    ref = last.where(last.notna() & (last >= ap["start_date"]), ap["start_date"])
    cut2, cut4 = pd.Timestamp(months_before(d, rules.INTERVAL_MONTHS)), pd.Timestamp(months_before(d, rules.DEPARTMENT_INTERVAL_MONTHS))
    ap["overdue"] = (ref < ap["dept"].map({True: cut4, False: cut2})).astype(int)
    cadence = ap.groupby("city").agg(active_pairings=("pairing_id", "size"), overdue=("overdue", "sum"))

    out = {}
    for name, df in (("coverage", coverage), ("cap", cap), ("cadence", cadence)):
        df = df[df.iloc[:, 0] > 0]
        out[name] = {str(k): tuple(int(x) for x in row) for k, row in zip(df.index, df.itertuples(index=False))}
        out[name + "_total"] = tuple(int(df[c].sum()) for c in df.columns)
    return out


def engine_overview(engine, d: dt.date) -> dict:
    """The same figures from the metric engine (summaries where stored)."""
    out = {}
    for name, fn in (("coverage", m.coverage), ("cap", m.cap), ("cadence", m.cadence)):
        df = fn(engine, d, "city", ALL)
        fields = registry.fields(name)
        out[name] = {str(r["code"]): tuple(int(r[f]) for f in fields) for _, r in df.iterrows()}
        tot = m.total_row(df, name)
        out[name + "_total"] = tuple(tot[f] for f in fields)
    return out


# ------------------------------------------------------------------------------------------- import


def import_throughput(url: str, visits: int) -> dict:
    import import_bench

    from data_access.ledger import import_ledger

    tmpdir = tempfile.TemporaryDirectory(prefix="bangfu_bench_import_")
    folder = Path(tmpdir.name) / "ledger"
    folder.mkdir()
    if kind_of(url) == "postgresql":
        scratch = make_url(url).set(database="bangfu_bench_import").render_as_string(hide_password=False)
        pg_create(scratch, drop=True)
    else:
        scratch = f"sqlite:///{Path(tmpdir.name) / 'import.sqlite'}"
    engine = db.make_engine(scratch)
    try:
        db.upgrade(engine)
        t0 = time.perf_counter()
        import_bench.build(folder, visits)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = import_ledger(engine, folder)
        el = time.perf_counter() - t0
        rows = sum(result.inserted.values())
    finally:
        engine.dispose()
        if kind_of(url) == "postgresql":
            pg_drop(scratch)
        tmpdir.cleanup()
    return {"visits": visits, "seconds": el, "rows": rows, "build_s": build_s,
            "inserted_visits": result.inserted.get("visits", 0)}


# ------------------------------------------------------------------------------------------- main


def machine() -> tuple[int, float]:
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = 0.0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return ncpu, mem


def page_list(unit: str | None, county: str | None, today: dt.date, past: dt.date, which: str = "both") -> list[dict]:
    specs = [("overview", "pages/overview.py", {})]
    if (ROOT / "pages" / "map.py").exists():
        specs.append(("map", "pages/map.py", {}))
    specs += [("coverage", "pages/coverage.py", {})]
    if county:
        specs.append((f"coverage, county {county}", "pages/coverage.py", {"region": county}))
    specs += [("cap", "pages/cap.py", {}), ("cadence", "pages/cadence.py", {}), ("ratings", "pages/ratings.py", {})]
    if unit:
        specs.append((f"units, unit {unit}", "pages/units.py", {"unit": unit}))
    specs.append(("meeting", "pages/meeting.py", {}))
    pages = []
    days = {"today": [("today", today)], "past": [(f"today−{PAST_DAYS}d", past)]}
    for date_label, d in days.get(which, days["today"] + days["past"]):
        for label, path, params in specs:
            params = dict(params)
            if d != today:
                params["as_of"] = d.isoformat()
            pages.append({"label": label, "path": path, "params": params, "date": d, "date_label": date_label,
                          "past": d != today})
    return pages


def verdict(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return "—"
    if value <= target:
        return "yes"
    return f"**no** ({value / target:.1f}× target)"


def page_verdict(cold: float | None, warm: float | None, t_cold: float, t_warm: float | None) -> str:
    """A page/date against its cold (and warm) target: "yes" or what was missed."""
    met = verdict(cold, t_cold)
    if t_warm:
        mw = verdict(warm, t_warm)
        if mw != "yes":
            met = f"cold {met}, warm {mw}"
    return met


def load_average() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv=None) -> int:
    # the import's and the refresh's own phase timings (bangfu.import, bangfu.summary) on stderr
    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s] %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("bangfu").setLevel(logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, help="database URL (sqlite:///path or postgresql+psycopg://…)")
    ap.add_argument("--households", type=int, help="households of the bench database (default 1,000,000)")
    ap.add_argument("--runs", type=int, help="replays per page and date; the table shows medians (default 5)")
    ap.add_argument("--baseline-households", type=int, help="size of the naive-baseline database (default 100,000)")
    ap.add_argument("--import-visits", type=int, help="visits of the import-throughput ledger (default 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20,000 households, 3 runs, 100,000 import visits")
    ap.add_argument("--rebuild", action="store_true", help="regenerate the database even when it can be reused")
    ap.add_argument("--time-refresh", action="store_true", help="on a reused database, time one summary refresh")
    ap.add_argument("--slow-page", type=float, default=30.0,
                    help="a page/date whose first cold replay takes longer (s) is replayed only twice (default 30)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="AppTest timeout per page run (s)")
    ap.add_argument("--dates", choices=("both", "today", "past"), default="both",
                    help="which as-of dates to time the pages for (default both)")
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--floor", action="store_true",
                    help="also time coverage, cap and cadence by county and the overdue list on a stored month-end "
                         "and on a mid-month date: the dashboard's path, the live SQL and the DuckDB floor "
                         "(needs duckdb: pip install '.[bench]')")
    ap.add_argument("--floor-only", action="store_true", help="only the database and the --floor comparison")
    ap.add_argument("--browser", action="store_true",
                    help="also time whole pages in Chromium on the same database (benchmarks/browser_bench.py --parts "
                         "start,dates: the first page after a server start, warm-up off and on, and the pages of "
                         "today, the last month-end and a mid-month day, cold and warm), printed after the rest")
    args = ap.parse_args(argv)
    quick = args.quick
    N = args.households or (20_000 if quick else 1_000_000)
    runs = args.runs or (3 if quick else 5)
    B = args.baseline_households or 100_000
    import_visits = args.import_visits or (100_000 if quick else 1_000_000)

    quiet_streamlit()
    url = db.resolve_url(args.db)
    kind = kind_of(url)
    today = settings.today()
    past = today - dt.timedelta(days=PAST_DAYS)
    rss = {}
    t_start = time.perf_counter()
    load_at_start = load_average()

    main_db = prepare(url, N, today, args.rebuild, args.time_refresh)
    engine = main_db["engine"]
    rss["after database build"] = rss_mb()
    srv = server_info(engine)
    unit, county = biggest_unit_and_county(engine)

    if args.floor or args.floor_only:
        month_end = months_before(today, 0).replace(day=1) - dt.timedelta(days=1)
        mid = month_end.replace(day=1) - dt.timedelta(days=16)  # the middle of the month before: never stored
        load_before = load_average()
        floor_rows = floor_compare(engine, [("last month-end", month_end), ("mid-month", mid), ("today", today)],
                                   runs)
        if args.floor_only:
            ncpu, mem = machine()
            print(f"# bangfu benchmark, --floor-only — {settings.now().isoformat(timespec='seconds')}")
            print()
            print(f"date {today.isoformat()} · nproc {ncpu} · memory {mem:.1f} GB · load average (1/5/15 min) "
                  f"{load_at_start} at start, {load_average()} at the end · {srv} · {N:,} households · runs {runs} · "
                  f"Python {platform.python_version()}")
            print(f"database: {db.safe_url(url)} — {main_db['note']}")
            if main_db["refresh_s"] is not None:
                print(f"summary refresh: {fmt_s(main_db['refresh_s'])}")
            print()
            print_floor(floor_rows, load_before)
            if args.browser:
                browser_pages(url, runs)
            return 0

    pages = page_list(unit, county, today, past, args.dates)
    record(url, pages, args.timeout)
    quiet_streamlit()  # AppTest may have reconfigured Streamlit's loggers
    rss["after recording (AppTest)"] = rss_mb()

    for p in pages:
        p["cold"], p["warm"], p["per"] = [], [], []
    for r in range(runs):
        for p in pages:
            if p["error"] is not None:
                continue
            if r >= 2 and p["cold"] and p["cold"][0] > args.slow_page:
                continue
            c, w, per = replay(p["calls"])
            p["cold"].append(c)
            p["warm"].append(w)
            p["per"].append(per)
        log(f"replay run {r + 1}/{runs} done ({time.perf_counter() - t_start:.0f} s since start)")
    rss["after page replays"] = rss_mb()

    for p in pages:
        p["page_cold"], p["page_warm"] = [], []
    for r in range(runs):
        for p in pages:
            if p["error"] is not None or p.get("page_error"):
                continue
            if r >= 2 and p["page_cold"] and p["page_cold"][0] > args.slow_page:
                continue
            c, w, err = whole_page(p, args.timeout)
            if err:
                p["page_error"] = err
                continue
            p["page_cold"].append(c)
            p["page_warm"].append(w)
        log(f"whole-page run {r + 1}/{runs} done ({time.perf_counter() - t_start:.0f} s since start)")
    quiet_streamlit()
    rss["after whole-page runs"] = rss_mb()

    # baseline
    base = None
    if not args.skip_baseline:
        if N <= B:
            b_db, b_n = main_db, N
        else:
            b_n = B
            b_db = prepare(baseline_url(url, B), B, today, args.rebuild, False)
        b_engine = b_db["engine"]
        base = {"n": b_n, "url": b_db["url"], "dates": {}}
        overview_calls = {p["date_label"]: p["calls"] for p in pages if p["label"] == "overview"}
        for p in pages:
            if p["label"] != "overview":
                continue
            d = p["date"]
            naive_t, ours_page, ours_fig = [], [], []
            naive = ours = None
            for r in range(runs):
                gc.collect()
                t0 = time.perf_counter()
                naive = naive_overview(b_engine, d)
                naive_t.append(time.perf_counter() - t0)
                gc.collect()
                t0 = time.perf_counter()
                ours = engine_overview(b_engine, d)
                ours_fig.append(time.perf_counter() - t0)
                if b_db is main_db:
                    ours_page = p["cold"]
                else:
                    ours_page.append(replay(overview_calls[p["date_label"]], url=b_db["url"])[0])
                if r >= 1 and naive_t[0] > 4 * args.slow_page:
                    break
            diff = [k for k in naive if naive[k] != ours[k]]
            if diff:
                for k in diff:
                    bad = {c: (naive[k].get(c), ours[k].get(c)) for c in set(naive[k]) | set(ours[k])
                           if naive[k].get(c) != ours[k].get(c)} if isinstance(naive[k], dict) else (naive[k], ours[k])
                    log(f"WARNING: naive baseline differs from the metric engine on {k} at {d}: {bad}")
            base["dates"][p["date_label"]] = {"naive": median(naive_t), "ours_page": median(ours_page),
                                              "ours_fig": median(ours_fig), "agree": not diff, "n": len(naive_t)}
            log(f"baseline {p['date_label']}: naive {median(naive_t):.2f} s, ours (figures) {median(ours_fig):.3f} s, "
                f"agree={not diff}")
        rss["after baseline"] = rss_mb()

    imp = None
    if not args.skip_import:
        log(f"import throughput: {import_visits:,} visits …")
        imp = import_throughput(url, import_visits)
        log(f"import: {imp['seconds']:.1f} s for {imp['rows']:,} rows")
        rss["after import"] = rss_mb()

    # ------------------------------------------------------------------ the table
    ncpu, mem = machine()
    tgt_n, t_cold, t_warm, t_past = TARGETS[kind]
    # a target is judged only on the database it is stated for: this kind, at least that many households
    judged = N >= tgt_n
    engine_name = "PostgreSQL" if kind == "postgresql" else "SQLite"
    na = f"n/a (the {engine_name} targets are for {tgt_n:,} households; this database has {N:,})"
    pg_1m = kind == "postgresql" and N >= 1_000_000
    na_pg = "n/a (target for PostgreSQL, 1,000,000 households)"
    print(f"# bangfu benchmark — {settings.now().isoformat(timespec='seconds')}")
    print()
    print(f"date {today.isoformat()} (past as-of date {past.isoformat()}) · nproc {ncpu} · memory {mem:.1f} GB · "
          f"load average (1/5/15 min) {load_at_start} at start, {load_average()} at the end · "
          f"{srv} · {N:,} households · runs {runs} · Python {platform.python_version()}")
    sizes = "" if N == tgt_n else f" ({engine_name} targets are stated for {tgt_n:,} households; this database has {N:,})"
    print(f"database: {db.safe_url(url)} — {main_db['note']}{sizes}")
    print()
    print("**data** = the page's recorded data_access calls replayed (what it waits for its data); "
          "**whole page** = the page script run under AppTest (app.py + the page: data, filters, charts, tables; "
          "no browser). Medians; cold = Streamlit data cache emptied, warm = cache filled.")
    print()
    print("| page | date | data cold | data warm | whole page cold | whole page warm | target | met? (data · whole page) |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for p in pages:
        if p["error"]:
            print(f"| {p['label']} | {p['date_label']} | error | error | error | error | — | **no**: {p['error'][:80]} |")
            continue
        c, w = median(p["cold"]), median(p["warm"])
        pc, pw = median(p["page_cold"]), median(p["page_warm"])
        n = "" if len(p["cold"]) == runs else f" (n={len(p['cold'])})"
        pn = "" if len(p["page_cold"]) in (runs, 0) else f" (n={len(p['page_cold'])})"
        page_cells = ("error", "error") if p.get("page_error") else (f"{fmt_s(pc)}{pn}", fmt_s(pw))
        if p["past"]:
            target = f"cold ≤ {fmt_s(t_past)} ({engine_name})"
            met_data, met_page = verdict(c, t_past), verdict(pc, t_past)
        else:
            target = f"cold ≤ {fmt_s(t_cold)}" + (f", warm ≤ {fmt_s(t_warm)}" if t_warm else "") + f" ({engine_name})"
            met_data, met_page = page_verdict(c, w, t_cold, t_warm), page_verdict(pc, pw, t_cold, t_warm)
        if p.get("page_error"):
            met_page = f"**error**: {p['page_error'][:80]}"
        met = f"data {met_data} · whole page {met_page}" if judged else na
        print(f"| {p['label']} | {p['date_label']} | {fmt_s(c)}{n} | {fmt_s(w)} | {page_cells[0]} | {page_cells[1]} | "
              f"{target} | {met} |")
    if main_db["refresh_s"] is not None:
        print(f"| summary refresh ({N:,} households) | today | {fmt_s(main_db['refresh_s'])} | | | | "
              f"≤ 30 s (PostgreSQL, 1M) | {verdict(main_db['refresh_s'], REFRESH_TARGET_S) if pg_1m else na_pg} |")
    if main_db["generate_s"] is not None:
        both = main_db["generate_s"] + main_db["refresh_s"]
        print(f"| demo generation ({N:,} households) | today | {fmt_s(main_db['generate_s'])} | | | | | |")
        print(f"| `bangfu demo` = generation + refresh | today | {fmt_s(both)} | | | | ≤ 3 min (PostgreSQL, 1M) | "
              f"{verdict(both, DEMO_TARGET_S) if pg_1m else na_pg} |")
    if imp:
        print(f"| import {imp['visits']:,}-visit ledger ({imp['rows']:,} rows, incl. summary refresh) | | "
              f"{fmt_s(imp['seconds'])} | | | | {imp['visits'] / imp['seconds']:,.0f} visits/s · "
              f"{imp['rows'] / imp['seconds']:,.0f} rows/s | |")
    if base:
        for label, b in base["dates"].items():
            note = "" if b["agree"] else " — **naive result differs**"
            print(f"| naive baseline: overview figures, {base['n']:,} households (n={b['n']}) | {label} | "
                  f"{fmt_s(b['naive'])} | | | | ratio naive ÷ ours: {b['naive'] / b['ours_page']:,.1f}× the overview's "
                  f"data time, {b['naive'] / b['ours_fig']:,.1f}× the same figures ({fmt_s(b['ours_fig'])}) | "
                  f"{'same figures' if b['agree'] else 'DIFFERENT'}{note} |")
    peak = " · ".join(f"{k} {v:,.0f} MB" for k, v in rss.items())
    print(f"| peak RSS (bench process) | | {rss_mb():,.0f} MB | | | | {peak} | |")
    print(f"| peak RSS (child processes) | | {rss_mb(resource.RUSAGE_CHILDREN):,.0f} MB | | | | | |")
    print()

    if args.floor:
        print_floor(floor_rows, load_before)

    # ------------------------------------------------------------------ what each page's data time is made of
    print("## Slowest data calls per page (median cold / warm of each recorded call)")
    print()
    if kind == "postgresql":
        print("(**> 15 s**: a call this slow that is one SQL statement is cancelled by the dashboard's default "
              "statement_timeout, BANGFU_STATEMENT_TIMEOUT_MS; the bench runs without it.)")
        print()
    for p in pages:
        if p["error"] or not p["per"]:
            continue
        k = len(p["calls"])
        cold = [median([run[i][0] for run in p["per"]]) for i in range(k)]
        warm = [median([run[i][1] for run in p["per"]]) for i in range(k)]
        order = sorted(range(k), key=lambda i: -cold[i])[:4]
        parts = [f"{call_label(*p['calls'][i])} {fmt_s(cold[i])} / {fmt_s(warm[i])}"
                 + (" **> 15 s**" if cold[i] > DASHBOARD_TIMEOUT_S else "") for i in order]
        print(f"- {p['label']} [{p['date_label']}], {k} calls: " + "; ".join(parts))
    print()
    if args.browser:
        browser_pages(url, runs)
    log(f"total bench time {time.perf_counter() - t_start:.0f} s")
    return 0


def browser_pages(url: str, runs: int) -> None:
    """Whole pages in a real browser on the bench's database: browser_bench.py's warm start and per-date tables
    (the real server and headless Chromium), printed here with their own load averages."""
    log("whole pages in Chromium (browser_bench.py --parts start,dates) …")
    sys.stdout.flush()
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("browser_bench.py")), "--database-url", url,
                           "--parts", "start,dates", "--runs", str(min(runs, 3)), "--restarts", "2"])
    if done.returncode:
        print(f"\n(browser_bench.py failed with exit code {done.returncode}: its error is above on stderr)")


if __name__ == "__main__":
    sys.exit(main())
