"""帮扶责任人监测看板 — the Streamlit entry point: `streamlit run app.py`.

Checks the database once per run (creating demo data on the embedded default database the first
time), signs the user in (ui/auth.py: login form, idle timeout, fail closed without users), shows the
demo banner, and runs the page chosen in the navigation. Database errors anywhere
become one plain sentence (ui.widgets.guard), never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import auth, boot, data, theme
from ui import supervision as ui_sv
from ui.startup import ensure_database, start_maintenance
from ui.widgets import guard

st.set_page_config(page_title="帮扶责任人监测看板", page_icon=str(Path(__file__).parent / "ui" / "static" / "icon.png"), layout="wide",
                   initial_sidebar_state="auto")  # auto: collapsed on a phone, so the page opens on its content

# The tables' and charts' hover toolbar speaks English (Search, Fullscreen, Download as CSV): hidden. Its CSV
# download is also switched off in .streamlit/config.toml (client.disableDataExport); the pages' own
# 下载 CSV / 下载 Excel buttons are the audited, masked way to take data out.
st.html('<style>[data-testid="stElementToolbar"] { display: none !important; }</style>')
st.html(f"<style>{theme.PAGE_CSS}</style>")  # tile labels wrap, never cut (ui/theme.py)

PAGES = {
    # the default page is served at the root URL ("home" only reserves a name; /overview is an alias below)
    "overview": st.Page("pages/overview.py", title="总览", icon=":material/dashboard:", url_path="home", default=True),
    "map": st.Page("pages/map.py", title="地图", icon=":material/map:", url_path="map"),
    "coverage": st.Page("pages/coverage.py", title="结对覆盖", icon=":material/handshake:", url_path="coverage"),
    "cap": st.Page("pages/cap.py", title="帮扶上限", icon=":material/balance:", url_path="cap"),
    "cadence": st.Page("pages/cadence.py", title="走访频次", icon=":material/home_work:", url_path="cadence"),
    "ratings": st.Page("pages/ratings.py", title="年度考核", icon=":material/fact_check:", url_path="ratings"),
    "units": st.Page("pages/units.py", title="单位/责任人", icon=":material/apartment:", url_path="units"),
    "supervision": st.Page("pages/supervision.py", title="督办整改", icon=":material/assignment_late:",
                           url_path="supervision"),
    "meeting": st.Page("pages/meeting.py", title="会议大屏", icon=":material/tv:", url_path="meeting"),
}


def _overview_alias() -> None:
    """/overview (a bookmark, or a first request after a server start) shows the overview at the root URL."""
    st.switch_page(PAGES["overview"], query_params=st.query_params.to_dict())


ALIAS = st.Page(_overview_alias, title="总览", url_path="overview", visibility="hidden")

# The navigation is drawn for what the previous run found (ui/auth.py keeps it in the session: nothing
# before sign-in, the audit log only for province users). That is cosmetic: ui.auth.require_login below
# decides who may see anything, and the audit page checks the role itself.
nav = auth.nav_mode()
if nav == "unit":  # a unit user sees how many orders addressed to the unit still have open items
    PAGES["supervision"] = st.Page("pages/supervision.py", title=ui_sv.nav_title(data.db_url()),
                                   icon=":material/assignment_late:", url_path="supervision")
AUDIT = st.Page("pages/audit.py", title="审计日志", icon=":material/policy:", url_path="audit",
                visibility="visible" if nav == "province" else "hidden")
page = st.navigation([*PAGES.values(), AUDIT, ALIAS], position="sidebar" if nav else "hidden")
if page.url_path == "overview":
    page.run()
url = data.db_url()
boot.app_started()
try:
    with guard():
        ensure_database(url)
        start_maintenance(url)  # once per process: keeps today's stored summaries current by itself
        user = auth.require_login(url)  # the login form (or the fail-closed message) stops here
        if auth.is_screen() and page.url_path != "meeting":
            st.switch_page(PAGES["meeting"])  # a meeting screen session (投屏模式) shows the meeting page only
        if page.url_path != "meeting":
            st.sidebar.markdown("### 帮扶责任人监测看板")
            auth.user_box(url, user)
            if data.is_demo(url):
                st.warning("**演示数据**：当前显示的是程序生成的模拟数据，不代表河北省的真实情况，不得用于工作部署。",
                           icon=":material/science:")
        page.run()
finally:
    boot.app_finished()
