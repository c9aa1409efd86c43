"""Make sure every page runs inside app.py's st.navigation.

Streamlit treats an app with a ``pages/`` folder as a "v1" multipage app until the first
``st.navigation`` call of the process. So the first request after a server start that opens a deep
link (``/coverage?region=…``) would run ``pages/coverage.py`` alone — without app.py's database check,
demo banner, page list and error handling. Each page calls ``require_app()`` first: when app.py has not
run in this script run, it switches Streamlit to st.navigation mode and reruns, which runs app.py and
then the same page (the URL and its query parameters are kept).
"""

from __future__ import annotations

import threading

import streamlit as st

_local = threading.local()
_RERUN_KEY = "_bangfu_boot_rerun"


def app_started() -> None:
    """Called by app.py at the start of each run."""
    _local.app_running = True
    st.session_state[_RERUN_KEY] = False


def app_finished() -> None:
    """Called by app.py at the end of each run (also after an exception)."""
    _local.app_running = False


def require_app() -> None:
    if getattr(_local, "app_running", False):
        return
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - a future Streamlit without the v1 switch
        PagesManager = None  # noqa: N806
    if PagesManager is not None and getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False  # what st.navigation itself does
        st.rerun()
    if not st.session_state.get(_RERUN_KEY):
        # another session's first run switched the mode while this run had already started outside
        # app.py (several deep links opened at once after a server start): one rerun goes through it
        st.session_state[_RERUN_KEY] = True
        st.rerun()
    st.error("请从看板首页打开本页。", icon=":material/error:")
    st.page_link("app.py", label="打开看板首页")
    st.stop()
