"""Whole pages in a real browser (issues 14 and 15): the real server (what `bangfu serve` runs: serve_app.py, app.py
under st.App with the warm-up at start) and headless Chromium (/usr/bin/chromium through Playwright).

    .venv/bin/python benchmarks/browser_bench.py                       # SQLite demo, 20,000 households
    .venv/bin/python benchmarks/browser_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/warm_bench

What is timed — every figure is the moment of the page's last change a person can see, counted from the
navigation's start (or from the click), once the script run has finished (``[data-test-script-state=
"notRunning"]``) and the DOM has been quiet for 0.6 s; the quiet wait itself is not counted. "A change a person can
see" is any DOM change except inside a ``<canvas>``, whose content is never drawn: the data table (glide data grid)
adds a hidden accessibility table to its canvas 0.5–0.9 s after it has drawn the rows. The new tab and page
switch table gives in brackets the time to the last DOM change of any kind (this bench's only figure before
2026-12-07 15:00 UTC):

1. **warm start**: the server is started ``--restarts`` times with the warm-up off (BANGFU_WARM_UP=0, what
   `bangfu serve` did before) and on, alternately (so both see the same machine); per start: the seconds until
   /_stcore/health answers, the **first page** (a fresh tab on the overview, the first request after the start)
   and a **warm page** right after it (a second fresh tab on the same page).
2. **new tab** on each page, today, a deep link opened in a new Streamlit session two ways: a **new tab** of a browser
   already open on the dashboard (what a user does: the browser's HTTP cache holds Streamlit's hashed scripts,
   the cookie is there) and a **new browser profile** (no cache, no cookie: a first visit ever); the first visit of
   a page is left out (it fills the data cache), then ``--runs`` visits each, median;
3. **page switch** (a click in the sidebar navigation of an open tab) through every page, ``--runs`` rounds after
   one unmeasured round, median;
4. **per date** (today, the last month-end and a mid-month day that is not stored): for each page a new tab of a
   browser already open on the dashboard on ``?as_of=D``: **cold** = the first visit of that page and date since the
   server's start (its data computed), **warm** = the median of ``--runs`` visits right after; and ``--runs`` visits
   in a new browser profile (no HTTP cache: the front end's scripts loaded again).

Streamlit's data cache keeps an entry for 60 s (ui/data.py TTL): "warm" is a visit within that minute.
The machine's load average (1/5/15 min) is printed with every table: figures of a shared, loaded machine are not
those of a quiet server. Targets: page switch ≤ 1 s, fresh tab ≤ 2 s (demo data, issue 14); the first page after
a server start ≤ 2.5 s, any page any date ≤ 1.5 s (PostgreSQL, 1 M households, issue 15).
Progress goes to stderr as it is measured; the tables to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sessions import (  # noqa: E402
    CHROMIUM, CHROMIUM_ARGS, QUIET_JS, READY, VIEWPORT, free_port, problems, start_server, stop_server, wait_healthy)

# (url path, navigation title, h1 text)
PAGES = [("", "总览", "总览"), ("coverage", "结对覆盖", "结对覆盖"), ("cadence", "走访频次", "走访频次"),
         ("cap", "帮扶上限", "帮扶上限"), ("ratings", "年度考核", "年度考核"), ("units", "单位/责任人", "单位"),
         ("map", "地图", "地图"), ("meeting", "会议大屏", None)]
SWITCH = ["coverage", "cadence", "cap", "ratings", "units", "map", ""]  # from the overview, back to it at the end
TIMEOUT_MS = 180_000
FIRST_ELEMENT = '[data-testid="stMain"] [data-testid="stElementContainer"]'
# the navigation's link to a path (the sidebar's links, as tests/test_failover.py finds them), clicked; the
# click's moment (performance.now()) is kept in window.__bfClick
CLICK_JS = """(path) => {
  const a = [...document.querySelectorAll('a[data-testid="stSidebarNavLink"]')]
    .find(e => new URL(e.href).pathname === path);
  if (!a) return false;
  window.__bfClick = window.__bfLast = performance.now();
  a.click();
  return true;
}"""


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rendered(page, t0: float) -> tuple[float, float]:
    """Seconds from t0 (the page's performance.now() in ms) to the last change a person can see, and to the last
    DOM change (hidden canvas content included: sessions.QUIET_JS), once the DOM has been quiet for 0.6 s."""
    for _ in range(2):  # a run may ask for a rerun (ui/boot.py): wait for the one after it too
        page.wait_for_selector(READY, timeout=TIMEOUT_MS)
        page.wait_for_function("() => performance.now() - window.__bfLast > 600", timeout=TIMEOUT_MS, polling=100)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    shown, last = page.evaluate("[window.__bfShown, window.__bfLast]")
    return (shown - t0) / 1000, (last - t0) / 1000


def new_tab(browser):
    ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    ctx.add_init_script(QUIET_JS)
    return ctx, ctx.new_page()


def fresh_tab(browser, url: str, errors: list[str]) -> tuple[float, float]:
    """A new browser context opening url; seconds to the rendered page (shown, last DOM change)."""
    ctx, pg = new_tab(browser)
    try:
        pg.goto(url, wait_until="commit")
        # the app's shell says "notRunning" before its WebSocket is even open: wait for the script's first element
        pg.wait_for_selector(FIRST_ELEMENT, state="attached", timeout=TIMEOUT_MS)
        t = rendered(pg, 0.0)  # performance.now() counts from the navigation's start
        errors.extend(f"{url}: {p}" for p in problems(pg))
        return t
    finally:
        ctx.close()


def tab_in(ctx, url: str, errors: list[str]) -> tuple[float, float]:
    """A new tab of an open browser (``ctx``: its HTTP cache and cookies) opening url; seconds to the rendered page
    (shown, last DOM change)."""
    pg = ctx.new_page()
    try:
        pg.goto(url, wait_until="commit")
        pg.wait_for_selector(FIRST_ELEMENT, state="attached", timeout=TIMEOUT_MS)
        t = rendered(pg, 0.0)
        errors.extend(f"{url}: {p}" for p in problems(pg))
        return t
    finally:
        pg.close()


def shown(xs: list[tuple[float, float]]) -> list[float]:
    return [x[0] for x in xs]


def both(xs: list[tuple[float, float]]) -> str:
    """The median time to the last visible change, and in brackets to the last DOM change when it differs."""
    if not xs:
        return "—"
    a, b = statistics.median(shown(xs)), statistics.median([x[1] for x in xs])
    return f"{a:.2f}" + (f" ({b:.2f})" if f"{b:.2f}" != f"{a:.2f}" else "")


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f}" if xs else "—"


def spread(xs: list[float]) -> str:
    return f"{min(xs):.2f}–{max(xs):.2f}" if xs else "—"


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "—"
    return f"met ({target - value:.2f} s under)" if value <= target else f"NOT met (+{value - target:.2f} s)"


class Server:
    """The server of `bangfu serve` (serve_app.py) on a free port; ``warm`` turns the start-up warm-up on/off."""

    def __init__(self, db: str, warm: bool = True):
        self.db, self.warm = db, warm

    def __enter__(self):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="bangfu_browser_bench_", suffix=".log")[1])
        t0 = time.monotonic()
        self.proc = start_server(self.db, self.port, self.log, script="serve_app.py",
                                 env={"BANGFU_WARM_UP": "1" if self.warm else "0", "BANGFU_SELF_REFRESH": "0"})
        wait_healthy(self.proc, self.base, self.log, timeout_s=300)
        self.start_s = time.monotonic() - t0
        self.overview_cached = overview_lookups(self.base)["miss"] > 0  # computed by the warm-up before health
        return self

    def __exit__(self, *exc):
        stop_server(self.proc)
        text = self.log.read_text(errors="replace")
        if "Traceback" in text:
            say(f"server log {self.log} holds a traceback:\n{text[-3000:]}")


def overview_lookups(base: str) -> dict[str, int]:
    """Streamlit's counters of the overview's cached call (/_stcore/metrics): {'hit': n, 'miss': m}."""
    with urllib.request.urlopen(f"{base}/_stcore/metrics", timeout=30) as r:
        text = r.read().decode()
    found = re.findall(r'cache_lookups_total\{cache="ui.data.overview",cache_type="st_cache_data",'
                       r'result="(hit|miss)"\} (\d+)', text)
    return {"hit": 0, "miss": 0} | {kind: int(n) for kind, n in found}


def dates_of(today: dt.date) -> dict[str, dt.date]:
    from data_access.dates import previous_month_end

    mid = today.replace(day=15) if today.day > 15 else previous_month_end(today).replace(day=15)
    return {"today": today, "last month-end": previous_month_end(today), "mid-month (not stored)": mid}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", "--db", dest="db",
                    help="the database (default: a new SQLite demo database of --households)")
    ap.add_argument("--households", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5, help="measured runs per figure (median)")
    ap.add_argument("--restarts", type=int, default=3, help="server starts per warm-up mode (warm start)")
    ap.add_argument("--parts", default="start,fresh,switch,dates",
                    help="what to time, comma-separated: start, fresh, switch, dates")
    ap.add_argument("--date-pages", default=None,
                    help="url paths for the per-date part, comma-separated, '' for the overview (default every page)")
    ap.add_argument("--pages", default=None,
                    help="url paths for fresh tab and page switch, comma-separated, '' for the overview (default every page)")
    ap.add_argument("--commit", help="the commit measured, when not run in a git checkout (e.g. a `git archive` copy)")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    from playwright.sync_api import sync_playwright

    from data_access import settings

    db = args.db
    if not db:
        from data_access.db import make_engine, upgrade
        from data_access.demo import generate
        from data_access.summary import refresh_engine

        path = Path(tempfile.mkdtemp()) / "bench_browser.sqlite"
        db = f"sqlite:///{path}"
        eng = make_engine(db)
        upgrade(eng)
        say(f"generating {args.households:,} demo households in {db} …")
        generate(eng, households=args.households, seed=1)
        refresh_engine(eng)
        eng.dispose()
    commit = args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent).stdout.strip()
    today = settings.today()
    print(f"browser bench · {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC · commit {commit} · "
          f"database {db.split('@')[-1]} · runs {args.runs} · nproc {os.cpu_count()} · load average {load()}")
    errors: list[str] = []
    out: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

        if "start" in parts:  # 1. warm start: the first page after a server start, warm-up off and on
            starts: dict[bool, dict[str, list[float]]] = {w: {"health": [], "first": [], "warm": []} for w in (False, True)}
            loads = [load()]
            with Server(db, False) as srv:  # not counted: compiles the bytecode, fills the OS file cache
                say(f"priming start: health after {srv.start_s:.1f} s, first page "
                    f"{fresh_tab(browser, srv.base + '/', errors)[0]:.2f} s (not counted)")
            cached: dict[bool, list[bool]] = {False: [], True: []}
            for i in range(args.restarts):
                for warm in (False, True):
                    with Server(db, warm) as srv:
                        first = fresh_tab(browser, srv.base + "/", errors)[0]
                        again = fresh_tab(browser, srv.base + "/", errors)[0]
                    for k, v in (("health", srv.start_s), ("first", first), ("warm", again)):
                        starts[warm][k].append(v)
                    cached[warm].append(srv.overview_cached)
                    say(f"start {i + 1} warm-up {'on ' if warm else 'off'}: health after {srv.start_s:.1f} s, "
                        f"first page {first:.2f} s, next page {again:.2f} s (load {load()})")
            loads.append(load())
            out.append(f"\n### Warm start: the first page after a server start (overview, today; {args.restarts} starts "
                       f"each, alternating) — load average {loads[0]} before, {loads[1]} after\n")
            out.append("| warm-up at start | overview cached at health | health answers after (s) | first page (s) "
                       "| range | the next fresh tab (s) | first ÷ next | target first page ≤ 2.5 s |")
            out.append("|---|---|---:|---:|---|---:|---:|---|")
            for warm in (False, True):
                s = starts[warm]
                ratio = statistics.median(s["first"]) / statistics.median(s["warm"])
                out.append(f"| {'on (serve_app.py)' if warm else 'off (BANGFU_WARM_UP=0, as before)'} "
                           f"| {sum(cached[warm])} of {len(cached[warm])} starts | {med(s['health'])} "
                           f"| {med(s['first'])} | {spread(s['first'])} | {med(s['warm'])} | {ratio:.2f}× "
                           f"| {verdict(statistics.median(s['first']), 2.5)} |")
            gain = statistics.median(starts[False]["first"]) / statistics.median(starts[True]["first"])
            out.append(f"\nfirst page, warm-up off ÷ on: {gain:.2f}×")
            print("\n".join(out), flush=True)
            out.clear()

        if parts & {"fresh", "switch", "dates"}:
            with Server(db, True) as srv:
                base = srv.base
                say(f"server up in {srv.start_s:.1f} s at {base} (log {srv.log})")
                if "fresh" in parts or "switch" in parts:  # 2 and 3, today
                    # (shown, last DOM change) per visit
                    fresh: dict[str, list[tuple[float, float]]] = {p: [] for p, _, _ in PAGES}
                    tabs: dict[str, list[tuple[float, float]]] = {p: [] for p, _, _ in PAGES}
                    switch: dict[str, list[tuple[float, float]]] = {p: [] for p in SWITCH}
                    l0 = load()
                    chosen = args.pages.split(",") if args.pages is not None else [p for p, _, _ in PAGES]
                    if "fresh" in parts:
                        open_ctx, first_pg = new_tab(browser)  # the browser a user already has open on the dashboard
                        first_pg.goto(base + "/", wait_until="commit")
                        first_pg.wait_for_selector(FIRST_ELEMENT, state="attached", timeout=TIMEOUT_MS)
                        rendered(first_pg, 0.0)
                        for path in chosen:
                            for run in range(args.runs + 1):
                                t = fresh_tab(browser, f"{base}/{path}", errors)
                                n = tab_in(open_ctx, f"{base}/{path}", errors)
                                say(f"/{path} run {run}: new profile {t[0]:.2f} s, new tab {n[0]:.2f} s "
                                    f"(last DOM change {t[1]:.2f} / {n[1]:.2f} s; load {load()})")
                                if run:  # run 0 is the page's first visit: it fills the data cache
                                    fresh[path].append(t)
                                    tabs[path].append(n)
                        open_ctx.close()
                    if "switch" in parts:
                        ctx, pg = new_tab(browser)
                        pg.goto(base + "/", wait_until="commit")
                        rendered(pg, 0.0)
                        titles = {p: (t, h) for p, t, h in PAGES}
                        for run in range(args.runs + 1):
                            for path in [p for p in SWITCH if p in chosen and p] + [""]:
                                _, h1 = titles[path]
                                pg.wait_for_function(CLICK_JS, arg=f"/{path}", timeout=TIMEOUT_MS)  # clicks
                                t0 = pg.evaluate("window.__bfClick")
                                pg.locator("h1", has_text=h1).first.wait_for(timeout=TIMEOUT_MS)
                                t = rendered(pg, t0)
                                say(f"switch → /{path} run {run}: {t[0]:.2f} s (last DOM change {t[1]:.2f} s; "
                                    f"load {load()})")
                                if run:
                                    switch[path].append(t)
                        errors.extend(f"switch: {p}" for p in problems(pg))
                        ctx.close()
                    out.append(f"\n### New tab and page switch, today (median of {args.runs}; the page's first visit "
                               f"left out) — load average {l0} before, {load()} after\n")
                    out.append("new tab: a new tab of a browser open on the dashboard (HTTP cache, cookie); new profile: "
                               "a browser that never opened it (no cache); both a new Streamlit session on a deep link. "
                               "Times to the last change a person can see; in brackets, to the last DOM change, which "
                               "includes the data table's hidden accessibility table inside its canvas\n")
                    out.append("| page | new tab (s) | range | target ≤ 2 s | new profile (s) | range "
                               "| page switch (s) | range | target ≤ 1 s |")
                    out.append("|---|---:|---|---|---:|---|---:|---|---|")
                    for path, title, _ in PAGES:
                        if path not in chosen:
                            continue
                        f, n, s = fresh[path], tabs[path], switch.get(path, [])
                        out.append(f"| {title} (/{path}) | {both(n)} | {spread(shown(n))} | "
                                   f"{verdict(statistics.median(shown(n)), 2.0) if n else '—'} | {both(f)} "
                                   f"| {spread(shown(f))} | {both(s)} | {spread(shown(s))} | "
                                   f"{verdict(statistics.median(shown(s)), 1.0) if s else '—'} |")
                    print("\n".join(out), flush=True)
                    out.clear()
                if "dates" in parts:  # 4. per date, cold and warm: a new tab of an open browser, and a new profile
                    wanted = args.date_pages.split(",") if args.date_pages is not None else [p for p, _, _ in PAGES]
                    l0 = load()
                    rows = []
                    open_ctx, first_pg = new_tab(browser)  # the browser a user already has open on the dashboard
                    first_pg.goto(base + "/", wait_until="commit")
                    first_pg.wait_for_selector(FIRST_ELEMENT, state="attached", timeout=TIMEOUT_MS)
                    rendered(first_pg, 0.0)
                    try:
                        for label, day in dates_of(today).items():
                            for path, title, _ in PAGES:
                                if path not in wanted:
                                    continue
                                url = f"{base}/{path}?as_of={day.isoformat()}"
                                cold = tab_in(open_ctx, url, errors)[0]
                                warm = [tab_in(open_ctx, url, errors)[0] for _ in range(args.runs)]
                                prof = [fresh_tab(browser, url, errors)[0] for _ in range(args.runs)]
                                say(f"{label} {day} /{path}: cold {cold:.2f} s, warm new tab {med(warm)} s, "
                                    f"new profile {med(prof)} s (load {load()})")
                                rows.append((label, day, title, path, cold, warm, prof))
                    finally:
                        open_ctx.close()
                    out.append(f"\n### Whole page per date: a new tab of an open browser (HTTP cache kept), cold (the "
                               f"first visit of that page and date since the server's start) and warm (median of "
                               f"{args.runs} right after), and a new browser profile (no HTTP cache, median of "
                               f"{args.runs}); times to the last change a person can see — load average {l0} "
                               f"before, {load()} after\n")
                    out.append("| date | page | cold (s) | warm (s) | warm range | target ≤ 1.5 s (cold · warm) "
                               "| new profile (s) | range |")
                    out.append("|---|---|---:|---:|---|---|---:|---|")
                    for label, day, title, path, cold, warm, prof in rows:
                        out.append(f"| {label} {day} | {title} (/{path}) | {cold:.2f} | {med(warm)} | {spread(warm)} | "
                                   f"{verdict(cold, 1.5)} · {verdict(statistics.median(warm), 1.5)} "
                                   f"| {med(prof)} | {spread(prof)} |")
                    print("\n".join(out), flush=True)
                    out.clear()
        browser.close()
    print(f"\nload average at the end: {load()}")
    if errors:
        print("\nProblems shown on pages:\n" + "\n".join(f"- {e}" for e in sorted(set(errors))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
