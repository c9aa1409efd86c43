"""Where a page's time goes in the browser (issue 14): the moments of one new tab or one page switch, in ms.

    .venv/bin/python benchmarks/tab_profile.py --db sqlite:////path/to/demo.sqlite --pages cadence,units
    .venv/bin/python benchmarks/tab_profile.py --db … --pages cadence,coverage --switch

The server of `bangfu serve` (serve_app.py, as benchmarks/browser_bench.py starts it) and headless Chromium. For
each page, ``--runs`` new tabs of one open browser (or, with ``--switch``, clicks in the sidebar navigation) with a
trace of: DOMContentLoaded, the WebSocket's opening and first message, each change of the script's run state
(running / notRunning), the first navigation, heading, tile, canvas and plotly chart, and the element of the last
DOM change and of the last change a person can see (browser_bench.rendered) — so a slow page says whether the server (the script run) or the front end (after notRunning) spends it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.browser_bench import CLICK_JS, FIRST_ELEMENT, PAGES, TIMEOUT_MS, Server, new_tab, rendered  # noqa: E402
from benchmarks.sessions import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

TRACE = """
window.__ev = [];
const mark = (k, extra) => window.__ev.push([Math.round(performance.now()), k, extra || ""]);
let lastState = null, seen = {};
new MutationObserver((ms) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const st = app && app.getAttribute('data-test-script-state');
  if (st !== lastState) { mark('state', st); lastState = st; }
  for (const sel of ['[data-testid="stSidebarNav"]', 'h1', '[data-testid="stMetric"]', 'canvas', '.js-plotly-plot .main-svg']) {
    if (!seen[sel] && document.querySelector(sel)) { seen[sel] = 1; mark('first', sel); }
  }
  for (const m of ms) { const t = m.target; const what = [Math.round(performance.now()),
    (t.getAttribute && (t.getAttribute('data-testid') || String(t.className).slice(0, 40))) || t.nodeName, m.type];
    window.__lastTarget = what; if (!window.__bfHidden(m)) window.__lastShown = what; }
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
const WS = window.WebSocket;
window.WebSocket = function (...a) { const w = new WS(...a); mark('ws-new'); w.addEventListener('open', () => mark('ws-open'));
  let n = 0; w.addEventListener('message', () => { if (n++ < 1) mark('ws-first-msg'); }); return w; };
window.WebSocket.prototype = WS.prototype;
document.addEventListener('DOMContentLoaded', () => mark('DOMContentLoaded'));
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True, help="the database the server reads (DATABASE_URL)")
    ap.add_argument("--pages", default="cadence,units", help="url paths, comma-separated ('' for the overview)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--switch", action="store_true", help="page switches from the overview instead of new tabs")
    args = ap.parse_args(argv)
    h1 = {p: h for p, _, h in PAGES}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        with Server(args.db, True) as srv:
            ctx, pg = new_tab(browser)
            ctx.add_init_script(TRACE)
            pg.goto(srv.base + "/", wait_until="commit")
            pg.wait_for_selector(FIRST_ELEMENT, state="attached", timeout=TIMEOUT_MS)
            rendered(pg, 0.0)
            for path in args.pages.split(","):
                for run in range(args.runs):
                    if args.switch:
                        pg.evaluate("window.__ev = []")
                        pg.wait_for_function(CLICK_JS, arg=f"/{path}", timeout=TIMEOUT_MS)
                        t0 = pg.evaluate("window.__bfClick")
                        if h1.get(path):
                            pg.locator("h1", has_text=h1[path]).first.wait_for(timeout=TIMEOUT_MS)
                        t, page = rendered(pg, t0), pg
                    else:
                        t0, page = 0.0, ctx.new_page()
                        page.goto(f"{srv.base}/{path}", wait_until="commit")
                        page.wait_for_selector(FIRST_ELEMENT, state="attached", timeout=TIMEOUT_MS)
                        t = rendered(page, t0)
                    events = [(e[0] - round(t0), e[1], e[2]) for e in page.evaluate("window.__ev")]
                    last, shown = page.evaluate("[window.__lastTarget, window.__lastShown]")
                    last[0] -= round(t0)
                    shown[0] -= round(t0)
                    print(f"/{path} {'switch' if args.switch else 'new tab'} {run + 1}: {t[0]:.2f} s shown, "
                          f"{t[1]:.2f} s last DOM change\n"
                          f"  events (ms): {events}\n  last DOM change: {last}\n  last change shown: {shown}", flush=True)
                    if args.switch:  # back to the overview for the next click
                        pg.wait_for_function(CLICK_JS, arg="/", timeout=TIMEOUT_MS)
                        rendered(pg, pg.evaluate("window.__bfClick"))
                    else:
                        page.close()
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
