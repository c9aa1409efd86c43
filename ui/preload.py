"""Chart scripts loaded while the server runs the page (issue 14: a new tab of a chart page ≤ 2 s).

Streamlit's front end loads the script of a plotly chart (a 4.7 MB chunk, about 0.7 s of the browser's main thread
on this machine) only when the first chart of the page arrives, and the page's elements wait for it: on the
cadence page the script run ends at ~0.9 s and the tiles appear at ~1.9 s. This ASGI middleware of `bangfu serve`
(serve_app.py) adds a small script to the HTML document that imports the chart (and data table) chunks as soon as
the page's script run starts — the moment the browser would otherwise sit idle waiting for the server — so that
both run side by side. Not earlier: imported while the page boots, the chunk holds back the WebSocket and the
server starts later (measured: no gain on a chart page, +0.7 s on the units page).

Pages whose first view has no plotly chart (NO_CHART_PAGES, kept true by tests/test_preload.py) get only the data
table's chunk. The chunk names are read from Streamlit's static folder at start; when a Streamlit upgrade renames
them, nothing is added (the page loads as before) and the test fails. BANGFU_CHART_PRELOAD=0 turns it off.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from data_access import settings

# url paths (app.py) whose first view draws no plotly chart: they preload only the data table
NO_CHART_PAGES = frozenset({"units", "supervision", "audit"})
CHUNKS = {"plotly": r"PlotlyChart\.[\w-]+\.js", "table": r"DataFrame\.[\w-]+\.js"}

# Runs in the document's head. The chunks are imported relative to Streamlit's own entry script (where its
# lazy imports resolve them, so the same modules are reused) once the app's script state turns "running".
_JS = """<script>(() => {
  const names = %s;
  const entry = document.querySelector('script[type="module"][src*="/js/index."]');
  const urls = names.map((n) => new URL(n, entry ? entry.src : document.baseURI).href);
  const go = () => urls.forEach((u) => import(u).catch(() => {}));
  const watch = new MutationObserver(() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (app && app.getAttribute('data-test-script-state') === 'running') { watch.disconnect(); go(); }
  });
  watch.observe(document, {subtree: true, childList: true, attributes: true,
                           attributeFilter: ['data-test-script-state']});
})();</script>"""
_REQUEST_DROPPED = {b"accept-encoding", b"if-none-match", b"if-modified-since"}
_RESPONSE_DROPPED = {b"content-length", b"etag", b"last-modified"}


def chunk_names(static_js: Path | None = None) -> dict[str, str]:
    """{"plotly": file name, "table": file name} of Streamlit's lazily loaded chunks, those found."""
    if static_js is None:
        import streamlit

        static_js = Path(streamlit.__file__).parent / "static" / "static" / "js"
    files = sorted(p.name for p in static_js.glob("*.js")) if static_js.is_dir() else []
    found = {}
    for kind, pattern in CHUNKS.items():
        hits = [f for f in files if re.fullmatch(pattern, f)]
        if len(hits) == 1:
            found[kind] = hits[0]
    return found


def page_of(path: str) -> str:
    """The page's url path (app.py) of a request path: its last segment ("" for the overview)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def _document(path: str) -> bool:
    """May the request path be a page's HTML document (not an API endpoint, a script or a media file)?"""
    return "." not in page_of(path) and not any(f"/{p}/" in path + "/" for p in ("_stcore", "static", "media",
                                                                                 "component"))


def tag_for(path: str, chunks: dict[str, str]) -> bytes:
    """The script tag for the HTML document at request path ``path`` (b"" when there is nothing to load)."""
    names = [chunks[k] for k in ("plotly", "table")
             if k in chunks and not (k == "plotly" and page_of(path) in NO_CHART_PAGES)]
    links = "".join(f'<link rel="modulepreload" crossorigin href="./static/js/{n}">' for n in names)
    return (links + _JS % json.dumps(names)).encode() if names else b""


class ChartPreload:
    """ASGI middleware: the preload script added before ``</head>`` of every HTML document Streamlit serves."""

    def __init__(self, app, chunks: dict[str, str] | None = None):
        self.app = app
        self.chunks = chunk_names() if chunks is None else chunks

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "GET" or not self.chunks or not _document(scope["path"]):
            await self.app(scope, receive, send)
            return
        # the document uncompressed, to be edited (Streamlit serves its root document uncompressed anyway)
        # and sent as body messages (a server offering "pathsend" would get the file's path instead)
        # whole each time (no validators: a 304 would keep a document edited by an earlier version)
        scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k.lower() not in _REQUEST_DROPPED],
                     extensions={k: v for k, v in (scope.get("extensions") or {}).items() if k != "http.response.pathsend"})
        tag = tag_for(scope.get("path", ""), self.chunks)
        held: dict | None = None
        body: list[bytes] = []

        async def send_edited(message):
            nonlocal held
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                html = headers.get(b"content-type", b"").startswith(b"text/html")
                if tag and html and b"content-encoding" not in headers:
                    held = message  # hold the start until the whole body is here
                    return
                await send(message)
            elif message["type"] == "http.response.body" and held is not None:
                body.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                doc = b"".join(body)
                if b"</head>" in doc:
                    doc = doc.replace(b"</head>", tag + b"</head>", 1)
                headers = [(k, v) for k, v in held.get("headers", []) if k.lower() not in _RESPONSE_DROPPED]
                headers.append((b"content-length", str(len(doc)).encode()))
                await send(dict(held, headers=headers))
                await send({"type": "http.response.body", "body": doc})
            else:
                await send(message)

        await self.app(scope, receive, send_edited)


def middleware() -> list:
    """The middleware list for serve_app.py's st.App (empty with BANGFU_CHART_PRELOAD=0)."""
    if not settings.chart_preload_enabled():
        return []
    from starlette.middleware import Middleware

    return [Middleware(ChartPreload)]
