"""Sessions that survive a reload (data_access/sessions.py, ui/auth.py): on SQLite and PostgreSQL the
server side (only the token's hash stored, expiry, idle timeout, revocation, `user disable`/`passwd`),
and under AppTest the flows a browser goes through — AppTest cannot send a cookie, so a "reload" is a new
AppTest whose cookie is played through ui.auth's documented test hook ``browser_cookies``."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from data_access import audit, sessions, users
from data_access.schema import sessions as sessions_t
from data_access.schema import users as users_t

from .test_auth_ui import APP, D, PW, app_db, auth_db, has_login_form, login, ok  # noqa: F401 - fixtures

T0 = dt.datetime(2026, 3, 2, 1, 0, 0)  # naive UTC
IDLE = dt.timedelta(minutes=30)


def _row(engine, token):
    with engine.connect() as conn:
        return conn.execute(select(sessions_t).where(sessions_t.c.token_hash == sessions.hash_token(token))).first()


@pytest.fixture
def two_users(engine):
    users.add_user(engine, "alice", PW, "province")
    users.add_user(engine, "bob", PW, "province")
    return engine


# ------------------------------------------------------------------------------------------- server side


def test_create_stores_only_the_hash_of_a_random_token(two_users, monkeypatch):
    engine = two_users
    monkeypatch.setenv("BANGFU_SESSION_HOURS", "8")
    token, s = sessions.create(engine, "alice", client="10.0.0.7", now=T0)
    token2, _ = sessions.create(engine, "alice", now=T0)
    assert token != token2 and sessions.token_ok(token) and len(token) >= 43
    row = _row(engine, token)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() == s.token_hash
    with engine.connect() as conn:
        every_value = [str(v) for r in conn.execute(select(sessions_t)).all() for v in r]
    assert not any(token in v or token2 in v for v in every_value)  # the token itself is nowhere in the table
    assert (row.username, row.kind, row.client, row.revoked_at) == ("alice", "user", "10.0.0.7", None)
    assert row.created_at == row.last_seen_at == T0 and row.expires_at == T0 + dt.timedelta(hours=8)
    assert s.seconds_left(T0) == 8 * 3600
    with pytest.raises(ValueError):
        sessions.create(engine, "alice", kind="admin")


def test_resume_touches_at_most_once_a_minute(two_users):
    engine = two_users
    token, _ = sessions.create(engine, "alice", now=T0)
    res = sessions.resume(engine, token, now=T0 + dt.timedelta(seconds=30), idle_timeout=IDLE)
    assert res.ok and res.reason == "ok" and res.session.username == "alice"
    assert _row(engine, token).last_seen_at == T0  # 30 s: no write
    res = sessions.resume(engine, token, now=T0 + dt.timedelta(seconds=61), idle_timeout=IDLE)
    assert res.ok and _row(engine, token).last_seen_at == T0 + dt.timedelta(seconds=61)
    # check() alone never writes
    assert sessions.check(engine, token, now=T0 + dt.timedelta(minutes=10), idle_timeout=IDLE).ok
    assert _row(engine, token).last_seen_at == T0 + dt.timedelta(seconds=61)
    # a short idle timeout (one minute): touched every tenth of it, so a reload is not judged idle early
    short = dt.timedelta(minutes=1)
    at = T0 + dt.timedelta(seconds=61 + 50)  # 50 s after the last touch: within the minute
    assert sessions.resume(engine, token, now=at, idle_timeout=short).ok
    assert _row(engine, token).last_seen_at == at
    assert sessions.resume(engine, token, now=at + dt.timedelta(seconds=3), idle_timeout=short).ok
    assert _row(engine, token).last_seen_at == at  # 3 s: no write
    assert sessions.resume(engine, token, now=at + dt.timedelta(seconds=55), idle_timeout=short).ok


def test_idle_timeout_counts_last_seen_and_the_callers_activity_and_revokes(two_users):
    engine = two_users
    token, _ = sessions.create(engine, "alice", now=T0)
    late = T0 + IDLE + dt.timedelta(seconds=1)
    # activity the caller saw (a tab's own last action) keeps it alive though last_seen_at is older
    assert sessions.check(engine, token, now=late, idle_timeout=IDLE, activity=T0 + dt.timedelta(minutes=5)).ok
    res = sessions.resume(engine, token, now=late, idle_timeout=IDLE)
    assert (res.ok, res.reason, res.ended) == (False, "idle", True)
    assert _row(engine, token).revoked_at == late
    # once idle, always gone: a longer idle timeout later does not revive it
    res = sessions.resume(engine, token, now=late, idle_timeout=dt.timedelta(hours=5))
    assert (res.ok, res.reason, res.ended) == (False, "revoked", False)


def test_absolute_expiry_for_user_and_screen_sessions(two_users, monkeypatch):
    engine = two_users
    monkeypatch.setenv("BANGFU_SESSION_HOURS", "2")
    monkeypatch.setenv("BANGFU_SCREEN_HOURS", "4")
    user_tok, _ = sessions.create(engine, "alice", now=T0)
    screen_tok, s = sessions.create(engine, "alice", kind=sessions.SCREEN, now=T0)
    assert s.expires_at == T0 + dt.timedelta(hours=4)
    # a screen has no idle timeout: three hours without a touch, still on
    assert sessions.resume(engine, screen_tok, now=T0 + dt.timedelta(hours=3), idle_timeout=IDLE).ok
    # a user session kept active to the end of its lifetime still ends there
    for minutes in range(20, 120, 20):
        assert sessions.resume(engine, user_tok, now=T0 + dt.timedelta(minutes=minutes), idle_timeout=IDLE).ok
    res = sessions.resume(engine, user_tok, now=T0 + dt.timedelta(hours=2), idle_timeout=IDLE)
    assert (res.ok, res.reason, res.ended) == (False, "expired", True)
    res = sessions.resume(engine, screen_tok, now=T0 + dt.timedelta(hours=4, seconds=1), idle_timeout=IDLE)
    assert (res.ok, res.reason) == (False, "expired")
    assert _row(engine, screen_tok).revoked_at is not None


def test_revoke_unknown_and_malformed_tokens(two_users):
    engine = two_users
    token, _ = sessions.create(engine, "alice", now=T0)
    other, _ = sessions.create(engine, "alice", now=T0)
    assert sessions.revoke(engine, token, now=T0) is True
    assert sessions.revoke(engine, token, now=T0) is False  # already revoked
    assert sessions.check(engine, token, now=T0).reason == "revoked"
    assert sessions.check(engine, other, now=T0).ok  # only that one
    for bad in (None, "", "short", "x" * 43 + "'; DROP TABLE sessions; --", 12345, "é" * 43):
        assert sessions.check(engine, bad, now=T0).reason == "missing"
        assert sessions.revoke(engine, bad, now=T0) is False
    unknown = "A" * 43
    assert sessions.token_ok(unknown) and sessions.check(engine, unknown, now=T0).reason == "missing"


def test_disable_and_passwd_revoke_the_users_sessions(two_users):
    engine = two_users
    a_user, _ = sessions.create(engine, "alice")
    a_screen, _ = sessions.create(engine, "alice", kind=sessions.SCREEN)
    b_user, _ = sessions.create(engine, "bob")
    users.disable_user(engine, "alice")
    assert _row(engine, a_user).revoked_at is not None and _row(engine, a_screen).revoked_at is not None
    assert sessions.check(engine, a_screen).reason == "revoked"
    assert sessions.check(engine, b_user).ok  # bob is untouched
    users.enable_user(engine, "alice")  # enabling again does not bring old sessions back
    assert sessions.check(engine, a_user).reason == "revoked"
    # a new password ends every session of the user
    b_screen, _ = sessions.create(engine, "bob", kind=sessions.SCREEN)
    users.set_password(engine, "bob", "another-pass-2")
    assert sessions.check(engine, b_user).reason == "revoked" and sessions.check(engine, b_screen).reason == "revoked"
    assert all(s.revoked_at is not None for s in sessions.sessions_of(engine, "bob"))
    # a session of a user disabled or deleted by other means is not valid either (and resume revokes it)
    c, _ = sessions.create(engine, "alice")
    with engine.begin() as conn:
        conn.execute(users_t.update().where(users_t.c.username == "alice").values(disabled=True))
    res = sessions.resume(engine, c)
    assert (res.ok, res.reason, res.ended) == (False, "disabled", True)
    d, _ = sessions.create(engine, "ghost")
    assert sessions.check(engine, d).reason == "disabled"


def test_revoke_user_counts_open_sessions_only(two_users):
    engine = two_users
    t1, _ = sessions.create(engine, "alice")
    sessions.create(engine, "alice", kind=sessions.SCREEN)
    sessions.revoke(engine, t1)
    assert sessions.revoke_user(engine, "alice") == 1
    assert sessions.revoke_user(engine, "alice") == 0


def test_session_lifetimes_from_settings(monkeypatch):
    from data_access import settings

    for value, hours in (("6", 6.0), ("0.5", 0.5), ("junk", 12.0), ("", 12.0), ("-3", 0.01), ("99999", 720.0)):
        monkeypatch.setenv("BANGFU_SESSION_HOURS", value)
        assert settings.session_hours() == hours, value
    monkeypatch.delenv("BANGFU_SCREEN_HOURS", raising=False)
    assert settings.screen_hours() == 4.0 and sessions.lifetime(sessions.SCREEN) == dt.timedelta(hours=4)
    monkeypatch.setenv("BANGFU_SCREEN_HOURS", "nan")
    assert settings.screen_hours() == 4.0


# ------------------------------------------------------------------------------------------- the dashboard

TOKEN_IN_HTML = re.compile(r'"bangfu_session=([A-Za-z0-9_-]+); Max-Age=(\d+)"')


def cookie_written(at: AppTest) -> tuple[str, int] | None:
    """The token and Max-Age the page's script stores in the browser's cookie (None: nothing written)."""
    for el in at.get("html"):
        m = TOKEN_IN_HTML.search(el.proto.body)
        if m:
            assert el.proto.unsafe_allow_javascript and "SameSite=Strict" in el.proto.body and "Path=/" in el.proto.body
            return m.group(1), int(m.group(2))
    return None


def cookie_cleared(at: AppTest) -> list[str]:
    """The tokens the page's script deletes from the cookie."""
    out = []
    for el in at.get("html"):
        if "Max-Age=0" in el.proto.body:
            m = re.search(r"(\[[^\]]*\])\.indexOf", el.proto.body)
            out += re.findall(r'"([A-Za-z0-9_-]+)"', m.group(1))
    return out


def reload_with(monkeypatch, token: str | None, page: str | None = None, **params) -> AppTest:
    """A new tab or a reload: a fresh session whose browser sends the cookie ``token``."""
    from ui import auth

    jar = {sessions.COOKIE_NAME: token} if token else {}
    monkeypatch.setattr(auth, "browser_cookies", lambda: jar)
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    ok(at.run())
    if page:
        ok(at.switch_page(f"pages/{page}.py").run())
    return at


def signed_in_as(at: AppTest, name: str) -> bool:
    def plain(text: str) -> str:  # the caption shows names as text (Markdown escapes, word joiners)
        return text.replace("\u2060", "").replace("\\", "")

    return (not has_login_form(at) and bool(at.metric)
            and any(f"当前用户：{name}" in plain(c.value) for c in at.caption))


def test_reload_and_new_tab_stay_signed_in(app_db, monkeypatch):
    _, engine = app_db
    monkeypatch.setenv("BANGFU_SESSION_HOURS", "12")
    at = login("county_a", as_of=D)
    written = cookie_written(at)
    assert written, "no cookie written after sign-in"
    token, max_age = written
    assert 12 * 3600 - 120 <= max_age <= 12 * 3600
    row = _row(engine, token)
    assert row is not None and row.username == "county_a" and row.kind == "user" and row.revoked_at is None
    # the same browser reloads (or opens a new tab): signed in, no form, no new login audited
    logins = len(audit.query(engine, username="county_a", event=audit.LOGIN_OK))
    again = reload_with(monkeypatch, token, as_of=D)
    assert signed_in_as(again, "长安用户")
    assert cookie_written(again)[0] == token
    assert len(audit.query(engine, username="county_a", event=audit.LOGIN_OK)) == logins
    # a deep link in a new tab
    tab = reload_with(monkeypatch, token, page="coverage", as_of=D)
    assert not has_login_form(tab) and tab.title[0].value.startswith("结对覆盖")
    # without the cookie (another browser) or with a forged one: the login form
    assert has_login_form(reload_with(monkeypatch, None))
    assert has_login_form(reload_with(monkeypatch, "B" * 43))
    assert has_login_form(reload_with(monkeypatch, token[:-1] + ("A" if token[-1] != "A" else "B")))


def test_sign_out_revokes_and_clears_the_cookie_everywhere(app_db, monkeypatch):
    _, engine = app_db
    at = login("county_a", as_of=D)
    token, _ = cookie_written(at)
    other_tab = reload_with(monkeypatch, token, as_of=D)
    assert signed_in_as(other_tab, "长安用户")
    ok(at.button(key="logout").click().run())
    assert has_login_form(at) and _row(engine, token).revoked_at is not None
    assert token in cookie_cleared(at)  # the login form deletes the cookie (only if it still holds this token)
    # a reload after the sign-out: the login form, and the stale cookie is deleted
    after = reload_with(monkeypatch, token, as_of=D)
    assert has_login_form(after) and not after.metric and token in cookie_cleared(after)
    # the other tab is signed out on its next run, and told why
    ok(other_tab.run())
    assert has_login_form(other_tab) and not other_tab.metric
    assert any("登录已结束" in x.value for x in other_tab.info)


def test_reload_after_the_idle_timeout_shows_the_login_form(app_db, monkeypatch):
    from ui import auth

    _, engine = app_db
    at = login("county_a", as_of=D)
    token, _ = cookie_written(at)
    t0 = audit.utcnow()
    later = auth.now() + users.IDLE_TIMEOUT + dt.timedelta(minutes=1)
    monkeypatch.setattr(auth, "now", lambda: later)
    after = reload_with(monkeypatch, token, as_of=D)
    assert has_login_form(after) and not after.metric
    assert any("长时间未操作" in x.value for x in after.info)
    assert _row(engine, token).revoked_at == later
    rows = audit.query(engine, since=t0, username="county_a", event=audit.LOGOUT)
    assert list(rows["detail"]) == ["idle"]


def test_reload_within_the_idle_timeout_keeps_the_session(app_db, monkeypatch):
    from ui import auth

    _, engine = app_db
    at = login("county_a", as_of=D)
    token, _ = cookie_written(at)
    later = auth.now() + users.IDLE_TIMEOUT - dt.timedelta(minutes=2)
    monkeypatch.setattr(auth, "now", lambda: later)
    assert signed_in_as(reload_with(monkeypatch, token, as_of=D), "长安用户")
    assert _row(engine, token).last_seen_at == later  # touched: the idle clock starts again


def test_disable_and_passwd_end_open_and_stored_sessions(app_db, monkeypatch):
    _, engine = app_db
    if users.get_user(engine, "temp_sess") is None:
        users.add_user(engine, "temp_sess", PW, "province")
    users.enable_user(engine, "temp_sess")
    at = login("temp_sess", as_of=D)
    token, _ = cookie_written(at)
    users.set_password(engine, "temp_sess", PW)  # e.g. `bangfu user passwd` after a leaked password
    ok(at.run())
    assert has_login_form(at) and not at.metric
    assert has_login_form(reload_with(monkeypatch, token, as_of=D))
    at = login("temp_sess", as_of=D)
    token, _ = cookie_written(at)
    users.disable_user(engine, "temp_sess")
    assert has_login_form(reload_with(monkeypatch, token, as_of=D))


def test_meeting_screen_mode(app_db, monkeypatch):
    """投屏模式: the browser turns into a masked, read-only meeting screen with no idle timeout, on the
    meeting page only, that ends after BANGFU_SCREEN_HOURS or with 结束投屏."""
    from ui import auth

    _, engine = app_db
    monkeypatch.setenv("BANGFU_SCREEN_HOURS", "4")
    t0 = audit.utcnow()
    at = login("prov", as_of=D)  # a province user who may unmask
    user_token, _ = cookie_written(at)
    ok(at.switch_page("pages/meeting.py").run())
    assert [b.label for b in at.button if b.key == "screen_start"] == ["投屏模式"]
    ok(at.button(key="screen_start").click().run())
    screen_token, max_age = cookie_written(at)
    assert screen_token != user_token and 4 * 3600 - 120 <= max_age <= 4 * 3600
    assert _row(engine, user_token).revoked_at is not None  # the personal session ended
    row = _row(engine, screen_token)
    assert row.kind == "screen" and row.username == "prov" and row.revoked_at is None
    assert not has_login_form(at) and any("投屏模式" in m.value for m in at.markdown)
    assert [b.label for b in at.button if b.key == "screen_end"] == ["结束投屏"]
    assert "bf-tile" in "".join(m.value for m in at.markdown)
    events = audit.query(engine, since=t0, username="prov")
    assert ("logout", "screen") in set(zip(events["event"], events["detail"]))
    assert ("login_ok", "screen") in set(zip(events["event"], events["detail"]))

    # two hours without anyone touching it (far past the idle timeout): still on, reload included
    later = auth.now() + dt.timedelta(hours=2)
    monkeypatch.setattr(auth, "now", lambda: later)
    ok(at.run())
    assert not has_login_form(at) and "bf-tile" in "".join(m.value for m in at.markdown)
    tab = reload_with(monkeypatch, screen_token, page="meeting", as_of=D)
    assert not has_login_form(tab) and "bf-tile" in "".join(m.value for m in tab.markdown)
    # the meeting page only: any other page (typed URL) shows the meeting screen, without unmasking
    for page in ("coverage", "cap", "audit"):
        ok(tab.switch_page(f"pages/{page}.py").run())
        assert "bf-tile" in "".join(m.value for m in tab.markdown), page
        assert not tab.toggle and not tab.dataframe and not tab.download_button, page
    # past its four hours: signed out, with the reason
    end = auth.now() + dt.timedelta(hours=2, minutes=1)
    monkeypatch.setattr(auth, "now", lambda: end)
    ok(tab.run())
    assert has_login_form(tab) and any("投屏时间已到" in x.value for x in tab.info)
    assert _row(engine, screen_token).revoked_at is not None


def test_end_screen_button_signs_the_screen_out(app_db, monkeypatch):
    _, engine = app_db
    at = login("county_a", as_of=D)
    ok(at.switch_page("pages/meeting.py").run())
    ok(at.button(key="screen_start").click().run())
    token, _ = cookie_written(at)
    ok(at.button(key="screen_end").click().run())
    assert has_login_form(at) and _row(engine, token).revoked_at is not None and token in cookie_cleared(at)
    assert has_login_form(reload_with(monkeypatch, token, as_of=D))


# ------------------------------------------------------------------------------------------- clean-up


def test_purge_deletes_only_sessions_that_ended_long_ago(two_users):
    """`sessions.purge` (run by `bangfu refresh`): rows of sessions revoked or expired more than 30 days ago go;
    an open session, one revoked a week ago and one expiring later stay, and the open one still works."""
    engine = two_users
    old = T0 - dt.timedelta(days=40)
    revoked_long_ago, _ = sessions.create(engine, "alice", now=old)
    sessions.revoke(engine, revoked_long_ago, now=old + dt.timedelta(hours=1))
    expired_long_ago, _ = sessions.create(engine, "bob", now=old)  # 12 h lifetime: expired 40 days ago
    revoked_lately, _ = sessions.create(engine, "alice", now=T0 - dt.timedelta(days=7))
    sessions.revoke(engine, revoked_lately, now=T0 - dt.timedelta(days=7))
    screen_long, _ = sessions.create(engine, "bob", kind="screen", now=T0 - dt.timedelta(days=29, hours=23))
    open_now, _ = sessions.create(engine, "alice", now=T0)
    assert sessions.purge(engine, now=T0) == 2
    assert _row(engine, revoked_long_ago) is None and _row(engine, expired_long_ago) is None
    assert all(_row(engine, t) is not None for t in (revoked_lately, screen_long, open_now))
    assert sessions.check(engine, open_now, now=T0 + dt.timedelta(minutes=1), idle_timeout=IDLE).reason == "ok"
    assert sessions.purge(engine, now=T0) == 0


def test_refresh_command_purges_ended_sessions(two_users, capsys):
    from data_access.cli import main

    engine = two_users
    url = engine.url.render_as_string(hide_password=False)
    gone, _ = sessions.create(engine, "alice", now=dt.datetime(2020, 1, 1))
    kept, _ = sessions.create(engine, "bob")
    assert main(["refresh", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "已删除 1 个结束超过 30 天的登录会话记录" in out
    assert _row(engine, gone) is None and _row(engine, kept) is not None
