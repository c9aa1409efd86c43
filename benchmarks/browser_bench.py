"""Page switch and fresh tab in a real browser (issue 14): the `streamlit run app.py` server on a demo
database and headless Chromium (/usr/bin/chromium through Playwright).

    .venv/bin/python benchmarks/browser_bench.py --households 20000 --runs 5

* **fresh tab**: a new browser context (no cookie, a new Streamlit session) opens a page; the time from
  the navigation's start until the script run has finished and the DOM has not changed for 0.6 s (the
  moment of the last DOM change is what is counted, not the quiet wait);
* **page switch**: in an open tab, a click on the page's entry in the sidebar navigation, timed the same way.

Each figure is the median over ``--runs`` runs per page (the first visit after the server's start is
reported apart: it fills the caches). The machine's load average (1/5/15 min) is printed before and
after: the figures of a shared, loaded machine are not those of a quiet server. Targets: page switch
≤ 1 s, fresh tab ≤ 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sessions import free_port, start_server, stop_server, wait_healthy  # noqa: E402

READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
QUIET_JS = """
window.__bfLast = performance.now();
new MutationObserver(() => { window.__bfLast = performance.now(); })
  .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""
PAGES = [("", "总览"), ("coverage", "结对覆盖"), ("cadence", "走访频次"), ("cap", "帮扶上限"), ("ratings", "年度考核"),
         ("units", "单位/责任人"), ("map", "地图"), ("meeting", "会议大屏")]


def rendered(page, t0: float, timeout_ms: int = 120_000) -> float:
    """Seconds from t0 (performance.now() ms of the page) to the last DOM change before 0.6 s of quiet."""
    page.wait_for_selector(READY, timeout=timeout_ms)
    page.wait_for_function("() => performance.now() - window.__bfLast > 600", timeout=timeout_ms, polling=100)
    page.wait_for_selector(READY, timeout=timeout_ms)
    return (page.evaluate("window.__bfLast") - t0) / 1000


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", help="DATABASE_URL (default: a new SQLite demo database)")
    ap.add_argument("--households", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    db = args.db
    if not db:
        from data_access.db import make_engine, upgrade
        from data_access.demo import generate

        path = Path(tempfile.mkdtemp()) / "bench_browser.sqlite"
        db = f"sqlite:///{path}"
        eng = make_engine(db)
        upgrade(eng)
        print(f"generating {args.households:,} demo households …", file=sys.stderr)
        generate(eng, households=args.households, seed=1)
        eng.dispose()
    print(f"load average before: {load()}")
    port = free_port()
    log_path = Path(tempfile.mkdtemp()) / "server.log"
    proc = start_server(db, port, log_path)
    base = f"http://127.0.0.1:{port}"
    fresh: dict[str, list[float]] = {p: [] for p, _ in PAGES}
    switch: dict[str, list[float]] = {p: [] for p, _ in PAGES if p not in ("", "meeting")}
    first = None
    try:
        wait_healthy(proc, base, log_path, timeout_s=180)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            for run in range(args.runs + 1):
                for path, _ in PAGES:
                    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
                    ctx.add_init_script(QUIET_JS)
                    pg = ctx.new_page()
                    pg.goto(base + "/" + path, wait_until="commit")
                    t = rendered(pg, 0.0)  # performance.now() counts from the navigation's start
                    print(f"run {run} fresh /{path}: {t:.2f} s (load {load()})", file=sys.stderr, flush=True)
                    if first is None:
                        first = t
                    elif run:  # run 0 warms the caches of every page
                        fresh[path].append(t)
                    ctx.close()
                ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
                ctx.add_init_script(QUIET_JS)
                pg = ctx.new_page()
                pg.goto(base + "/")
                rendered(pg, 0.0)
                for path, title in PAGES:
                    if path not in switch:
                        continue
                    link = pg.locator('[data-testid="stSidebarNav"] a', has_text=title).first
                    t0 = pg.evaluate("performance.now()")
                    link.click()
                    pg.locator("h1", has_text=title.split("/")[0]).first.wait_for(timeout=120_000)
                    t = rendered(pg, t0)
                    print(f"run {run} switch /{path}: {t:.2f} s", file=sys.stderr, flush=True)
                    if run:
                        switch[path].append(t)
                ctx.close()
            browser.close()
    finally:
        stop_server(proc)
    print(f"load average after: {load()}")
    print(f"first visit after the server's start: {first:.2f} s")
    print("| page | fresh tab median (s) | page switch median (s) |")
    print("|---|---|---|")
    for path, title in PAGES:
        f = f"{statistics.median(fresh[path]):.2f}" if fresh[path] else "—"
        s = f"{statistics.median(switch[path]):.2f}" if switch.get(path) else "—"
        print(f"| {title} (/{path}) | {f} | {s} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
