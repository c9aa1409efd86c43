"""Server memory with many sessions open: the real `streamlit run app.py` and N headless Chromium sessions.

    .venv/bin/python benchmarks/sessions.py --db sqlite:////tmp/bench100k.sqlite --sessions 20
    .venv/bin/python benchmarks/sessions.py --db postgresql+psycopg://postgres@127.0.0.1/bangfu_bench1m

Target: "The Streamlit server process stays under 1.5 GB resident with 20 sessions open."

What it does (progress goes to stderr, the one results table to stdout):

1. Starts ``<python> -m streamlit run app.py`` (repository root, a free port unless ``--port``) with
   ``DATABASE_URL=--db`` and ``BANGFU_STATEMENT_TIMEOUT_MS=0``, waits for ``/_stcore/health`` and
   measures the resident memory of the server's process tree (VmRSS of the server and every
   descendant, from /proc) right after startup.
2. Opens N sessions in one headless Chromium (/usr/bin/chromium through Playwright), each in its own
   browser context (so its own Streamlit session), in batches of 5 opened at the same time. Session
   i opens page i mod 10: /, /map, /coverage, /coverage?region=131123, /cap, /cadence, /ratings,
   /units, /units?unit=<the unit with most helpers>, /meeting. A session has rendered when its script
   run has finished and its DOM has not changed for 0.6 s; its render time is the moment of its last
   DOM change, counted from the start of its navigation. RSS is measured after each batch. A session
   that shows ui/boot.py's "请从看板首页打开本页" (a deep link that ran without app.py) is listed as an
   error and reloaded once, so the memory figures are for the real pages.
3. With all N sessions still open, samples the RSS every 0.5 s for ``--wait`` seconds (default 10)
   and reports the maximum; a background sampler also records the peak over the whole run.
4. Prints the table, stops the browser and the server (also on error or Ctrl-C). Exits 0; pages
   that showed an exception, an error message or a login form are listed in the table (details on
   stderr), and so is a traceback in the server log.

1.5 GB is read as 1.5 GiB = 1536 MiB; all figures are MiB (2^20 bytes).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_access import settings  # noqa: E402

CHROMIUM = settings.chromium_path()  # BANGFU_CHROMIUM, default /usr/bin/chromium
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
VIEWPORT = {"width": 1920, "height": 1080}
TARGET_MIB = 1536.0
BATCH = 5
COUNTY = "131123"
NOT_FROM_APP = "请从看板首页打开本页"  # ui/boot.py: a page ran without app.py (a first-request race)

# The time of the last DOM change since navigation start (window.__bfLast), as in tests/test_browser.py, and of
# the last change a person can see (window.__bfShown): every change but those inside a <canvas> element, whose
# content is never drawn (the data table, glide data grid, fills its canvas with a hidden accessibility table
# 0.5–0.9 s after it has drawn the rows; a canvas's own size and style do count).
QUIET_JS = """
window.__bfLast = window.__bfShown = performance.now();
window.__bfHidden = (m) => {
  const el = m.target.nodeType === 1 ? m.target : m.target.parentElement;
  const c = el && el.closest('canvas');
  return !!c && !(m.type === 'attributes' && el === c);
};
new MutationObserver((ms) => {
  window.__bfLast = performance.now();
  if (ms.some((m) => !window.__bfHidden(m))) window.__bfShown = window.__bfLast;
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- memory


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _vmrss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(pid: int) -> float:
    """VmRSS of pid and all its descendants, in MiB (0 once the process is gone)."""
    kids = _children()
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _vmrss_kib(p)
        todo.extend(kids.get(p, []))
    return total / 1024


class Sampler(threading.Thread):
    """Records the peak RSS of the server's process tree every `interval` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0.0
        self._stop_evt = threading.Event()

    def run(self) -> None:
        while not self._stop_evt.is_set():
            self.peak = max(self.peak, tree_rss_mib(self.pid))
            self._stop_evt.wait(self.interval)

    def stop(self) -> None:
        self._stop_evt.set()
        self.join(5)


# ------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start_server(db: str, port: int, log_path: Path, env: dict[str, str] | None = None,
                 script: str = "app.py") -> subprocess.Popen:
    """`streamlit run app.py` headless on the port with DATABASE_URL=db (and ``env``), its output in log_path.
    Also the browser tests' server (tests/conftest.py). ``script="serve_app.py"`` runs what `bangfu serve` runs:
    app.py under st.App with the warm-up at start (BANGFU_WARM_UP=0 in ``env`` turns it off)."""
    cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true", "--server.port", str(port),
           "--browser.gatherUsageStats", "false"]
    env = {**os.environ, "DATABASE_URL": db, **(env or {})}
    with open(log_path, "wb") as f:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(proc: subprocess.Popen, base: str, log_path: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not healthy(base):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Streamlit server did not come up:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# ------------------------------------------------------------------------------------------- pages


def biggest_unit(db: str) -> str | None:
    """The unit with most helpers (ties: the smallest unit_id), as benchmarks/bench.py picks it."""
    from sqlalchemy import create_engine, func, select

    from data_access import schema

    h = schema.helpers
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return conn.execute(select(h.c.unit_id).group_by(h.c.unit_id)
                                .order_by(func.count().desc(), h.c.unit_id).limit(1)).scalar()
    finally:
        engine.dispose()


def page_specs(unit: str | None) -> list[tuple[str, str]]:
    """(label, path) for the rotation; the url paths are the ones app.py gives st.Page."""
    return [
        ("overview", "/"),
        ("map", "/map"),
        ("coverage", "/coverage"),
        (f"coverage {COUNTY}", f"/coverage?region={COUNTY}"),
        ("cap", "/cap"),
        ("cadence", "/cadence"),
        ("ratings", "/ratings"),
        ("units", "/units"),
        (f"units {unit}", f"/units?unit={unit}") if unit else ("units", "/units"),
        ("meeting", "/meeting"),
    ]


def settle(page, api, quiet_ms: int = 600, timeout_ms: int = 30_000) -> None:
    with contextlib.suppress(api.TimeoutError):
        page.wait_for_function(f"() => performance.now() - (window.__bfLast || 0) > {quiet_ms}",
                               timeout=timeout_ms, polling=100)


def wait_rendered(page, api, timeout_ms: int) -> float:
    """Wait for the script run to finish and the DOM to settle (twice: a run may request a rerun);
    returns the render time in seconds (the last DOM change, from navigation start)."""
    for _ in range(2):
        page.wait_for_selector(READY, timeout=timeout_ms)
        settle(page, api)
    page.wait_for_selector(READY, timeout=timeout_ms)
    return page.evaluate("window.__bfLast") / 1000


def problems(page) -> list[str]:
    """An exception box, an st.error or a login form on the page, as text."""
    out = []
    for sel, kind in (('[data-testid="stException"]', "exception"), ('[data-testid="stAlertContentError"]', "error")):
        for loc in page.locator(sel).all():
            with contextlib.suppress(Exception):
                words = loc.inner_text(timeout=5_000).split()
                if words and words[0] == "error":  # the material icon's name
                    words = words[1:]
                out.append(f"{kind}: {' '.join(words)[:400]}")
    if page.locator("input[aria-label='用户名']").count():
        out.append("login form shown (the database has users)")
    return out


# ------------------------------------------------------------------------------------------- main


def fmt_mib(x: float) -> str:
    return f"{x:,.0f} MiB"


def run(args) -> int:
    from playwright.sync_api import sync_playwright
    import playwright.sync_api as api

    log(f"database: {args.db}")
    unit = biggest_unit(args.db)
    log(f"unit with most helpers: {unit}")
    specs = page_specs(unit)

    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = Path(tempfile.mkstemp(prefix="bangfu_sessions_", suffix=".log")[1])
    proc = sampler = None
    rows: list[tuple[str, str]] = []
    batches: list[tuple[int, float]] = []
    renders: dict[str, list[float]] = {}
    failures: list[str] = []
    try:
        t0 = time.monotonic()
        proc = start_server(args.db, port, log_path, {"BANGFU_STATEMENT_TIMEOUT_MS": "0"})
        wait_healthy(proc, base, log_path)
        time.sleep(1)
        rss_start = tree_rss_mib(proc.pid)
        log(f"server up on {base} (pid {proc.pid}) in {time.monotonic() - t0:.1f} s; RSS {fmt_mib(rss_start)}; log {log_path}")
        sampler = Sampler(proc.pid)
        sampler.start()

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                pages = []
                for start in range(0, args.sessions, BATCH):
                    batch = []
                    for i in range(start, min(start + BATCH, args.sessions)):
                        label, path = specs[i % len(specs)]
                        ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
                        ctx.set_default_timeout(args.timeout * 1000)
                        ctx.add_init_script(QUIET_JS)
                        pg = ctx.new_page()
                        pg.goto(base + path, wait_until="commit")
                        batch.append((i, label, pg))
                    def rendered(pg, what: str) -> float | None:
                        """Seconds until the page settled, or None (a failure noted) after the timeout."""
                        try:
                            return wait_rendered(pg, api, args.timeout * 1000)
                        except api.TimeoutError:
                            failures.append(f"{what}: not rendered within {args.timeout} s")
                            log(failures[-1])
                            return None

                    for i, label, pg in batch:
                        secs = rendered(pg, f"session {i + 1} {label}")
                        if secs is None:
                            continue
                        found = problems(pg)
                        if any(NOT_FROM_APP in x for x in found):
                            # a deep link that ran outside app.py (ui/boot.py): a finding; reload, as a user would
                            failures.extend(f"session {i + 1} {label}: {x}" for x in found)
                            log(f"session {i + 1:>2} {label:<16} showed {found} after {secs:.1f} s; reloading")
                            pg.reload(wait_until="commit")
                            secs = rendered(pg, f"session {i + 1} {label} (after reload)")
                            if secs is None:
                                continue
                            found = [f"(after reload) {x}" for x in problems(pg)]
                        renders.setdefault(label, []).append(secs)
                        failures.extend(f"session {i + 1} {label}: {x}" for x in found)
                        log(f"session {i + 1:>2} {label:<16} rendered in {secs:6.1f} s" + (f"  !! {found}" if found else ""))
                    pages.extend(batch)
                    rss = tree_rss_mib(proc.pid)
                    batches.append((len(pages), rss))
                    log(f"{len(pages)} sessions open: RSS {fmt_mib(rss)}")
                    if proc.poll() is not None:
                        raise RuntimeError(f"the server exited (code {proc.returncode})")

                log(f"all {len(pages)} sessions open; sampling RSS for {args.wait:.0f} s")
                samples = []
                end = time.monotonic() + args.wait
                while time.monotonic() < end:
                    samples.append(tree_rss_mib(proc.pid))
                    time.sleep(0.5)
                peak_open = max(samples)
                still = sum(1 for _, _, pg in pages if not pg.is_closed())
                log(f"peak with {still} sessions open: {fmt_mib(peak_open)} over {len(samples)} samples")
            finally:
                browser.close()
        sampler.stop()

        all_renders = [x for v in renders.values() for x in v]
        per_page = ", ".join(f"{label} {statistics.median(renders[label]):.1f} s"
                             for label, _ in dict.fromkeys(specs) if label in renders)
        text = log_path.read_text(errors="replace")
        tracebacks = text.count("Traceback")
        met = peak_open <= TARGET_MIB and sampler.peak <= TARGET_MIB
        rows = [
            ("sessions", f"{args.sessions} (one Chromium, one context each, opened {BATCH} at a time)"),
            ("database", args.db.split("@")[-1]),
            ("RSS after start", fmt_mib(rss_start)),
            ("RSS after each batch", ", ".join(f"{n}: {fmt_mib(r)}" for n, r in batches)),
            (f"peak RSS, {args.sessions} sessions open ({len(samples)} samples over {args.wait:.0f} s)", fmt_mib(peak_open)),
            ("peak RSS over the whole run (every 0.5 s)", fmt_mib(sampler.peak)),
            ("render time, median of all sessions", f"{statistics.median(all_renders):.1f} s" if all_renders else "-"),
            ("render time, median per page", per_page or "-"),
            ("pages with errors", "; ".join(failures) if failures else "none"),
            ("tracebacks in server log", str(tracebacks)),
            ("target", f"≤ 1.5 GiB ({TARGET_MIB:,.0f} MiB) server process tree RSS with {args.sessions} sessions"),
            ("met?", "yes" if met else "NO"),
        ]
        if tracebacks:
            log(f"server log {log_path} holds a traceback:\n{text[-4000:]}")
    finally:
        if sampler is not None:
            sampler.stop()
        stop_server(proc)

    print("| measure | value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v.replace('|', '/')} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, help="SQLAlchemy URL of the database the server uses (DATABASE_URL)")
    ap.add_argument("--sessions", type=int, default=20, help="browser sessions to keep open (default 20)")
    ap.add_argument("--port", type=int, default=0, help="server port (default: a free port)")
    ap.add_argument("--wait", type=float, default=10.0,
                    help="seconds to sample RSS with all sessions open (default 10)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds a page may take to render (default 300)")
    args = ap.parse_args(argv)
    if args.sessions < 1:
        ap.error("--sessions must be at least 1")

    def _term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _term)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
