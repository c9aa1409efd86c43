"""`bangfu serve`'s entry point: app.py as an ``st.App`` whose lifespan warms the server up (issue 15).

`streamlit run serve_app.py` finds the ``app`` below and serves app.py through uvicorn, as `streamlit run app.py`
would, except that uvicorn runs the lifespan's start-up before it answers any request, /_stcore/health
included: the pages' imports, the map geometry, the connection pool and today's overview are ready before
the first user comes (ui/startup.warm_up). BANGFU_WARM_UP=0 starts without the warm-up.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import asynccontextmanager

import streamlit as st

from data_access import settings
from ui.preload import middleware


_log = logging.getLogger("bangfu")
if not _log.handlers:  # the service's own lines (warm-up, maintenance) on stderr, beside Streamlit's
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(logging.INFO)


@asynccontextmanager
async def lifespan(_app):
    if settings.warm_up_enabled():
        from ui.startup import warm_up

        await asyncio.to_thread(warm_up)  # off the event loop: the runtime keeps running meanwhile
    yield


app = st.App("app.py", lifespan=lifespan, middleware=middleware())
