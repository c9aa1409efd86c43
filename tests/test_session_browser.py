"""Sessions in a real browser (headless Chromium, the real `streamlit run app.py`): a reload and a new tab
stay signed in; after 退出登录 a reload shows the login form; with BANGFU_IDLE_TIMEOUT_MIN=1 a meeting screen
in 投屏模式 stays on past the idle timeout while an ordinary session on the meeting page and on a normal page
is signed out. Screenshots go to ``screenshots/session-*.png``.

Run: ``.venv/bin/pytest -m browser -s tests/test_session_browser.py`` (about two and a half minutes).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from data_access import sessions, users

from .conftest import CHROMIUM, streamlit_server
from .test_browser import QUIET_JS, READY, SHOTS, TIMEOUT, VIEWPORT, screenshot, wait_ready

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():  # pragma: no cover - depends on the machine
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True)

PW = "leader-pass-1"
LOGIN_FORM = 'input[aria-label="用户名"]'


@pytest.fixture(scope="module")
def session_db(tmp_path_factory):
    """Demo data with two users: the login is required."""
    from data_access.db import make_engine, upgrade
    from data_access.demo import generate

    path = tmp_path_factory.mktemp("sessions") / "sessions.sqlite"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    generate(engine, households=600, seed=3)
    users.add_user(engine, "leader", PW, "province", display_name="省领导")
    users.add_user(engine, "staff", PW, "province", display_name="办公室")
    yield url, engine
    engine.dispose()


def _server(url: str, log: Path, env: dict[str, str]):
    return streamlit_server(url, log, env={"BANGFU_SELF_REFRESH": "0", **env})


@pytest.fixture
def server(session_db, tmp_path):
    """The dashboard with the default idle timeout (30 minutes)."""
    with _server(session_db[0], tmp_path / "streamlit.log", {"BANGFU_IDLE_TIMEOUT_MIN": "30"}) as base:
        yield base


@pytest.fixture
def idle_server(session_db, tmp_path):
    """The dashboard with a one-minute idle timeout."""
    with _server(session_db[0], tmp_path / "streamlit.log",
                 {"BANGFU_IDLE_TIMEOUT_MIN": "1", "BANGFU_SCREEN_HOURS": "4"}) as base:
        yield base


@pytest.fixture(scope="module")
def shots():
    SHOTS.mkdir(exist_ok=True)
    return SHOTS


def _context(browser):
    ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    ctx.set_default_timeout(TIMEOUT)
    ctx.add_init_script(QUIET_JS)
    return ctx


def _cookie(ctx) -> dict | None:
    return next((c for c in ctx.cookies() if c["name"] == sessions.COOKIE_NAME), None)


def login_form_shown(page) -> bool:
    return page.locator(LOGIN_FORM).count() > 0


def sign_in(page, base: str, username: str, path: str = "/") -> None:
    page.goto(base + path)
    page.locator(LOGIN_FORM).wait_for(timeout=TIMEOUT)
    page.get_by_label("用户名", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(PW)
    page.get_by_role("button", name="登录").click()
    page.locator(LOGIN_FORM).wait_for(state="detached", timeout=TIMEOUT)
    wait_ready(page)


def signed_in(page, name: str, timeout_s: float = 20, shot: bool = True) -> bool:
    """The sidebar names the user (polled: the navigation is drawn by a rerun after the session resumes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        sidebar = page.locator('[data-testid="stSidebar"]')
        text = sidebar.first.inner_text().replace("\u2060", "") if sidebar.count() else ""
        if f"当前用户：{name}" in text and not login_form_shown(page):
            return True
        if time.monotonic() > deadline:
            if shot:  # for the failure's diagnosis
                SHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SHOTS / "session-not-signed-in.png"))
            return False
        page.wait_for_timeout(300)


def test_reload_and_new_tab_keep_the_session_and_sign_out_ends_it(browser, server, session_db, shots):
    _, engine = session_db
    ctx = _context(browser)
    try:
        page = ctx.new_page()
        sign_in(page, server, "staff")
        assert signed_in(page, "办公室")
        cookie = _cookie(ctx)
        assert cookie, f"no {sessions.COOKIE_NAME} cookie after sign-in: {ctx.cookies()}"
        assert cookie["sameSite"] == "Strict" and cookie["path"] == "/" and not cookie["secure"]  # http here
        left = cookie["expires"] - time.time()
        assert 11.9 * 3600 < left <= 12 * 3600 + 5, left  # Max-Age = the session's 12 hours
        row = sessions.check(engine, cookie["value"])
        assert row.ok and row.session.username == "staff" and row.session.kind == "user"
        # the token's hash is in the database, not the token
        assert sessions.hash_token(cookie["value"]) == row.session.token_hash

        page.reload()
        wait_ready(page)
        assert signed_in(page, "办公室"), "a reload signed the user out"
        page.locator('[data-testid="stMetricValue"]').first.wait_for()
        wait_ready(page)
        screenshot(page, shots, "session-after-reload")
        tab = ctx.new_page()  # a new tab, straight to a deep link
        tab.goto(server + "/coverage")
        wait_ready(tab, "结对覆盖")
        assert signed_in(tab, "办公室")
        tab.close()

        page.get_by_role("button", name="退出登录").click()
        page.locator(LOGIN_FORM).wait_for(timeout=TIMEOUT)
        wait_ready(page)
        deadline = time.monotonic() + 10
        while _cookie(ctx) and time.monotonic() < deadline:  # the login form's script deletes it
            page.wait_for_timeout(200)
        assert _cookie(ctx) is None, ctx.cookies()
        assert sessions.check(engine, cookie["value"]).reason == "revoked"
        page.reload()
        wait_ready(page)
        assert login_form_shown(page) and not signed_in(page, "办公室", timeout_s=2, shot=False)
        screenshot(page, shots, "session-after-sign-out-reload")
        # an old copy of the cookie (copied before the sign-out) opens nothing either
        ctx.add_cookies([{k: cookie[k] for k in ("name", "value", "domain", "path", "expires", "sameSite")}])
        page.reload()
        wait_ready(page)
        assert login_form_shown(page)
    finally:
        ctx.close()


def test_screen_mode_outlasts_the_idle_timeout(browser, idle_server, session_db, shots):
    """With BANGFU_IDLE_TIMEOUT_MIN=1: a screen session on the meeting page (refresh=5) is still on after
    75 s; an ordinary session on the meeting page has been signed out by its own refresh, and one on a
    normal page finds the login form at its next reload."""
    _, engine = session_db
    screen_ctx, meeting_ctx, normal_ctx = _context(browser), _context(browser), _context(browser)
    try:
        screen = screen_ctx.new_page()
        sign_in(screen, idle_server, "leader", "/meeting?refresh=5")
        screen.locator(".bf-tile").first.wait_for()
        user_token = _cookie(screen_ctx)["value"]
        screen.get_by_role("button", name="投屏模式").wait_for()
        screenshot(screen, shots, "session-meeting-before-screen-mode")
        screen.get_by_role("button", name="投屏模式").click()
        screen.get_by_role("button", name="结束投屏").wait_for(timeout=TIMEOUT)
        wait_ready(screen)
        screen.locator(".bf-tile").first.wait_for()
        tiles = screen.locator(".bf-tile").count()
        assert tiles >= 4
        assert "投屏模式" in screen.locator(".bf-note", has_text="投屏模式").first.inner_text()
        deadline = time.monotonic() + 10
        while _cookie(screen_ctx)["value"] == user_token and time.monotonic() < deadline:
            screen.wait_for_timeout(200)
        screen_cookie = _cookie(screen_ctx)
        assert screen_cookie["value"] != user_token
        assert 3.9 * 3600 < screen_cookie["expires"] - time.time() <= 4 * 3600 + 5
        assert sessions.check(engine, screen_cookie["value"]).session.kind == "screen"
        assert sessions.check(engine, user_token).reason == "revoked"
        started = time.monotonic()

        meeting = meeting_ctx.new_page()
        sign_in(meeting, idle_server, "staff", "/meeting?refresh=5")
        meeting.locator(".bf-tile").first.wait_for()
        normal = normal_ctx.new_page()
        sign_in(normal, idle_server, "staff")
        assert signed_in(normal, "办公室")
        normal_last_run = time.monotonic()  # nothing runs on a normal page until its user acts

        # past the one-minute idle timeout (and the minute by which last_seen_at may lag)
        meeting.locator(LOGIN_FORM).wait_for(timeout=130_000)  # the meeting page's own refresh signs it out
        assert meeting.get_by_text("长时间未操作，已自动退出，请重新登录").count() == 1
        screenshot(meeting, shots, "session-meeting-idle-signed-out")
        left = max(75 - (time.monotonic() - started), 70 - (time.monotonic() - normal_last_run))
        if left > 0:
            screen.wait_for_timeout(left * 1000)
        screen.wait_for_selector(READY, timeout=TIMEOUT)
        assert not login_form_shown(screen), "the meeting screen was signed out"
        assert screen.locator(".bf-tile").count() == tiles
        runs = screen.evaluate("window.__bfRuns")
        screen.wait_for_timeout(6_000)
        assert screen.evaluate("window.__bfRuns") > runs, "the screen stopped refreshing"
        assert not login_form_shown(screen)
        screenshot(screen, shots, "session-screen-after-idle")
        normal.reload()
        wait_ready(normal)
        assert login_form_shown(normal), "a normal page kept its session past the idle timeout"
        assert normal.get_by_text("长时间未操作，已自动退出，请重新登录").count() == 1

        # the screen survives a reload too, and shows only the meeting page
        screen.reload()
        wait_ready(screen)
        screen.locator(".bf-tile").first.wait_for()
        screen.goto(idle_server + "/coverage")
        wait_ready(screen)
        screen.locator(".bf-tile").first.wait_for()
        assert "/meeting" in screen.url and not login_form_shown(screen)
        assert screen.get_by_role("button", name="退出登录").count() == 0
        # 结束投屏: signed out, the cookie deleted
        screen.get_by_role("button", name="结束投屏").click()
        screen.locator(LOGIN_FORM).wait_for(timeout=TIMEOUT)
        assert sessions.check(engine, screen_cookie["value"]).reason == "revoked"
        deadline = time.monotonic() + 10
        while _cookie(screen_ctx) and time.monotonic() < deadline:
            screen.wait_for_timeout(200)
        assert _cookie(screen_ctx) is None
    finally:
        for c in (screen_ctx, meeting_ctx, normal_ctx):
            c.close()

