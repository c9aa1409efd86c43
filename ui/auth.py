"""Sign-in, the signed-in user of this run, idle timeout, sign-out and the audit of page views,
exports and unmask requests.

The one entry point is ``require_login(url)`` (called by app.py before any page): it returns the
user of this run or shows the login form (or the fail-closed message) and stops the script. Pages
read that user with ``current_user()``. Tests sign in through the real form (keys ``login_user``,
``login_password``, button ``登录``).

Rules (see data_access.users):

* a database with users: login required (password form; optionally 统一身份认证 through ``st.login``
  when ``st.secrets`` holds an ``[auth]`` section — its e-mail is mapped with ``users.login_oidc``);
* a database without users: no data at all, only how to create the first user — except a database
  marked demo (``db.is_demo``), which runs as an implicit read-only demo viewer (role province,
  masked, no unmasking) under a visible "演示模式（免登录）" banner;
* every run re-reads the user (a disabled or deleted user is signed out) and enforces the idle timeout
  (``users.IDLE_TIMEOUT``): the session is ended with reason "idle".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable

import streamlit as st

from data_access import audit, db, users
from data_access import sessions, settings
from data_access.scope import Scope
from data_access.users import User

from . import data
from .format import md_text

USER_KEY = "_bf_user"  # the signed-in username
LAST_KEY = "_bf_last"  # last activity (naive UTC)
RUN_USER = "_bf_run_user"  # the User of this run (re-read from the database on every run)
NAV_KEY = "_bf_nav"  # what the navigation was drawn for ("demo" or a role); cosmetic only
NOTICE_KEY = "_bf_auth_notice"  # a message for the login form after a sign-out
VIEW_KEY = "_bf_last_view"  # the last (page, scope) recorded as a page view
OIDC_KEY = "_bf_oidc"  # signed in through OIDC
TOKEN_KEY = "_bf_token"  # the session token (data_access.sessions; its hash is in the database, it is in the cookie)
KIND_KEY = "_bf_kind"  # the session's kind: "user" or "screen" (投屏模式)
COOKIE_AGE_KEY = "_bf_cookie_age"  # the cookie's Max-Age (seconds left of the session when this tab took it)
SEEN_KEY = "_bf_cookie_seen"  # the browser's cookie token already tried in this tab (not looked up again)
CLEAR_KEY = "_bf_cookie_clear"  # tokens to delete from the browser's cookie (signed out in this tab)
CLIENT_KEY = "_bf_login_client"  # this browser session's client key for sign-in throttling (no address known)
DENIED_AUDIT_KEY = "_bf_denied"  # the out-of-scope request last audited (once per request, not per rerun)

IDLE_MESSAGE = "长时间未操作，已自动退出，请重新登录"
EXPIRED_MESSAGE = "登录已超过有效期，请重新登录"
REVOKED_MESSAGE = "您的登录已结束（已在其他窗口退出，或被管理员结束），请重新登录"
DISABLED_MESSAGE = "您的账号已停用或已删除，请联系管理员。"
SCREEN_EXPIRED = "投屏时间已到，已自动退出。如需继续投屏，请重新登录后再开启投屏模式"
SCREEN_LABEL = "投屏模式"
SCREEN_END_LABEL = "结束投屏"
BAD_LOGIN = "用户名或密码错误"
DEMO_BANNER = ("演示模式（免登录）：数据库中还没有用户，当前以只读的演示身份浏览，个人信息已脱敏。"
               "管理员创建用户后即需要登录。")
NO_USERS = ("尚未创建任何看板用户，暂不显示数据。请管理员在服务器上运行 "
            "`bangfu user add admin --role province` 创建第一个用户，然后刷新本页登录。")
DENIED = "您无权查看该范围的数据，已显示您有权查看的范围为空。"
UNMASK_LABEL = "显示完整个人信息"
BEIJING = dt.timedelta(hours=8)

_EPOCH = dt.datetime(2000, 1, 1)
DEMO_USER = User(username="demo", display_name="演示用户", role="province", region_code=None, unit_id=None,
                 can_unmask=False, email=None, disabled=False, failed_attempts=0, locked_until=None,
                 created_at=_EPOCH, updated_at=_EPOCH)


def now() -> dt.datetime:
    """Naive UTC now (tests may replace it)."""
    return audit.utcnow()


def current_user() -> User | None:
    """The user of this run (set by require_login); None outside an authenticated run."""
    return st.session_state.get(RUN_USER)


def is_demo_viewer(user: User | None = None) -> bool:
    user = user if user is not None else current_user()
    return user is DEMO_USER or (user is not None and user == DEMO_USER)


def nav_mode() -> str | None:
    """What the navigation should show (from the previous run): None (login), "demo" or a role."""
    return st.session_state.get(NAV_KEY)


# ------------------------------------------------------------------------------------------- sign-in


def require_login(url: str) -> User:
    """The user of this run, or the login form / fail-closed message and st.stop()."""
    engine = data.engine(url)
    if users.count_users(engine) == 0:
        if db.is_demo(engine):  # read every run, never cached: an import clears the marker (fail closed at once)
            return _run_as(DEMO_USER, "demo")
        _forget()
        st.error(NO_USERS, icon=":material/lock:")
        st.stop()
    name = st.session_state.get(USER_KEY) or _resume_from_cookie(engine)  # a reload or a new tab: the cookie
    if name:
        user = users.get_user(engine, name)
        if user is None or user.disabled:
            end_session(user or name, "disabled", DISABLED_MESSAGE)
        _check_session(engine, user)  # revoked, expired or idle on the server: signed out here
        st.session_state[LAST_KEY] = now()
        user = _run_as(_screen_user(user), "screen") if is_screen() else _run_as(user, user.role)
        _write_cookie()
        return user
    _clear_cookie()
    _oidc_sign_in(engine)
    _login_form(engine)
    st.stop()
    raise AssertionError("unreachable")  # pragma: no cover


def _run_as(user: User, nav: str) -> User:
    st.session_state[RUN_USER] = user
    if st.session_state.get(NAV_KEY) != nav:
        st.session_state[NAV_KEY] = nav
        st.rerun()  # draw the navigation for this user
    return user


def _forget() -> None:
    for k in (RUN_USER, NAV_KEY, USER_KEY, LAST_KEY, TOKEN_KEY, KIND_KEY, COOKIE_AGE_KEY):
        st.session_state.pop(k, None)


def _start(user: User, oidc: bool = False) -> None:
    st.session_state.clear()  # nothing (a typed password, another user's widgets) survives a sign-in
    token, session = sessions.create(data.engine(data.db_url()), user.username, sessions.USER,
                                     client=client_address(), now=now())
    _adopt(token, session)
    if oidc:
        st.session_state[OIDC_KEY] = True
    st.rerun()


def end_session(user, reason: str | None = None, notice: str | None = None) -> None:
    """Record the logout, clear the whole session state and show the login form (st.rerun)."""
    _logout(user, reason, notice)
    st.rerun()


def _logout(user, reason: str | None = None, notice: str | None = None) -> None:
    oidc = st.session_state.get(OIDC_KEY)
    token = st.session_state.get(TOKEN_KEY)
    if user is not None and not is_demo_viewer(user):
        users.logout(data.engine(data.db_url()), user, reason)
    if token:
        sessions.revoke(data.engine(data.db_url()), token, now=now())
    seen = cookie_token()
    st.session_state.clear()
    st.session_state[CLEAR_KEY] = [t for t in (token, seen) if t]  # the login form deletes the cookie
    if seen:
        st.session_state[SEEN_KEY] = seen
    if notice:
        st.session_state[NOTICE_KEY] = notice
    if oidc:
        try:
            st.logout()
        except Exception:  # noqa: BLE001 - no OIDC configured any more
            pass


def session_expired() -> bool:
    """For runs that do not go through app.py (a fragment's own reruns, e.g. the meeting screen): the
    session's user is gone, disabled or idle — the caller should rerun the whole app (which signs out)."""
    user = current_user()
    if user is None:
        return True
    if is_demo_viewer(user):
        return False
    engine = data.engine(data.db_url())
    token = st.session_state.get(TOKEN_KEY)
    if token is None:
        return True
    # the same test as a whole run's (user gone or disabled, revoked, expired, idle for a user session)
    # without counting the fragment's rerun as activity; a screen session is only touched (seen alive)
    res = sessions.check(engine, token, now=now(), idle_timeout=users.IDLE_TIMEOUT,
                         activity=st.session_state.get(LAST_KEY))
    if res.ok and res.session.kind == sessions.SCREEN:
        sessions.touch(engine, res.session, now=now())
    return not res.ok


def logout_clicked() -> None:
    """The sidebar's 退出登录 button (a callback: the rerun that follows shows the login form)."""
    _logout(current_user(), "user")


def locked_text(until: dt.datetime | None) -> str:
    """The one answer for a locked name and a blocked client (it tells nothing about the name)."""
    if until is None:
        return "登录失败次数过多，已暂停登录，请稍后再试。"
    local = until + BEIJING
    return f"登录失败次数过多，已暂停登录，请于 {local:%Y-%m-%d %H:%M}（北京时间）后再试。"


def login_client() -> str:
    """The client key sign-in failures are counted under (users.authenticate): the browser's address, or,
    when it is unknown (localhost, some proxies), a key of this browser session."""
    try:
        ip = st.context.ip_address  # None on localhost (and without a client context, e.g. under AppTest)
    except Exception:  # noqa: BLE001
        ip = None
    if isinstance(ip, str) and ip:
        return f"ip:{ip}"
    if CLIENT_KEY not in st.session_state:
        st.session_state[CLIENT_KEY] = f"session:{uuid.uuid4().hex}"
    return st.session_state[CLIENT_KEY]


def _message(res: users.AuthResult) -> str:
    if res.reason in ("locked", "throttled"):
        return locked_text(res.locked_until)
    if res.reason == "disabled":
        return "该账号已停用，请联系管理员。"
    return BAD_LOGIN


def _login_form(engine) -> None:
    st.title("帮扶责任人监测看板")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(notice, icon=":material/info:")
    with st.form("login"):
        st.markdown("#### 请登录")
        st.text_input("用户名", key="login_user", autocomplete="username")
        st.text_input("密码", type="password", key="login_password", autocomplete="current-password")
        submitted = st.form_submit_button("登录", type="primary")
    if submitted:
        res = users.authenticate(engine, st.session_state.get("login_user") or "",
                                 st.session_state.get("login_password") or "", now=now(), client=login_client())
        if res.ok:
            _start(res.user)
        st.error(_message(res), icon=":material/error:")
    if oidc_configured():
        st.button("统一身份认证登录", on_click=st.login, key="login_oidc")


# ------------------------------------------------------------------------------------------- sessions
#
# A sign-in creates a server session (data_access.sessions) and puts its token in the cookie
# ``bangfu_session`` (SameSite=Strict, Path=/, Secure over https, Max-Age = what is left of the session;
# HttpOnly is impossible: Streamlit can write a cookie only from the page's JavaScript). A run without a
# signed-in user reads the cookie the browser sent when it opened the session (st.context.cookies) and
# resumes a valid session: a reload or a new tab stays signed in. Every run checks the session on the
# server, so a sign-out in one tab, `bangfu user disable`/`passwd` or the idle timeout ends it everywhere.


def browser_cookies():
    """The cookies the browser sent when it opened this session (``st.context.cookies``).

    Test hook: AppTest cannot send cookies, so tests replace this function (``monkeypatch.setattr(auth,
    "browser_cookies", lambda: {sessions.COOKIE_NAME: token})``) to play a browser that holds the cookie."""
    return st.context.cookies


def cookie_token() -> str | None:
    """The session token in the browser's cookie, when it looks like one (a cookie is user input)."""
    try:
        value = browser_cookies().get(sessions.COOKIE_NAME)
    except Exception:  # noqa: BLE001 - no client context
        return None
    return value if sessions.token_ok(value) else None


def client_address() -> str | None:
    try:
        ip = st.context.ip_address
    except Exception:  # noqa: BLE001
        return None
    return ip if isinstance(ip, str) and ip else None


_HIDE = ('<span class="bf-cookie"></span>'
         '<style>[data-testid="stElementContainer"]:has(.bf-cookie){display:none !important}</style>')
_ATTRS = "'; Path=/; SameSite=Strict' + (window.location.protocol === 'https:' ? '; Secure' : '')"


def cookie_set_html(token: str, max_age: int) -> str:
    """The page snippet that stores the token in the browser's cookie (st.html runs it in the page)."""
    value = json.dumps(f"{sessions.COOKIE_NAME}={token}; Max-Age={int(max_age)}")
    return f"{_HIDE}<script>document.cookie = {value} + {_ATTRS};</script>"


def cookie_clear_html(tokens: list[str]) -> str:
    """The snippet that deletes the cookie when it still holds one of ``tokens`` (never a newer session's
    token that another tab has written meanwhile)."""
    name = sessions.COOKIE_NAME
    return (f"{_HIDE}<script>(function(){{var m = document.cookie.match(/(?:^|;\\s*){name}=([^;]*)/);"
            f"if (m && {json.dumps(list(tokens))}.indexOf(m[1]) >= 0) "
            f"document.cookie = '{name}=; Max-Age=0' + {_ATTRS};}})();</script>")


def _write_cookie() -> None:
    token, age = st.session_state.get(TOKEN_KEY), st.session_state.get(COOKIE_AGE_KEY)
    if token and age:
        st.html(cookie_set_html(token, age), unsafe_allow_javascript=True)


def _clear_cookie() -> None:
    tokens = list(st.session_state.get(CLEAR_KEY) or [])
    seen = cookie_token()
    if seen and seen not in tokens:
        tokens.append(seen)  # the browser came with a token that is no longer valid
    if tokens:
        st.html(cookie_clear_html(tokens), unsafe_allow_javascript=True)


def _adopt(token: str, session: sessions.Session) -> None:
    st.session_state[USER_KEY] = session.username
    st.session_state[TOKEN_KEY] = token
    st.session_state[KIND_KEY] = session.kind
    st.session_state[COOKIE_AGE_KEY] = max(1, session.seconds_left(now()))
    st.session_state[SEEN_KEY] = token
    st.session_state[LAST_KEY] = now()


def _ended_text(reason: str, kind: str | None) -> str:
    if reason == "idle":
        return IDLE_MESSAGE
    if reason == "expired":
        return SCREEN_EXPIRED if kind == sessions.SCREEN else EXPIRED_MESSAGE
    if reason == "disabled":
        return DISABLED_MESSAGE
    return REVOKED_MESSAGE


def _resume_from_cookie(engine) -> str | None:
    """Resume the session of the browser's cookie (once per tab); its username, or None."""
    token = cookie_token()
    if token is None or st.session_state.get(SEEN_KEY) == token:
        return None
    st.session_state[SEEN_KEY] = token
    res = sessions.resume(engine, token, now=now(), idle_timeout=users.IDLE_TIMEOUT)
    if not res.ok:
        if res.ended:  # ended by this look-up (idle or past its lifetime): audited as the sign-out it is
            users.logout(engine, users.get_user(engine, res.session.username) or res.session.username, res.reason)
            st.session_state[NOTICE_KEY] = _ended_text(res.reason, res.session.kind)
        return None
    _adopt(token, res.session)
    if oidc_configured():
        try:
            st.session_state[OIDC_KEY] = bool(st.user.is_logged_in)  # sign-out then also ends the OIDC login
        except Exception:  # noqa: BLE001
            pass
    return res.session.username


def _check_session(engine, user: User) -> None:
    """The session of this tab on the server: revoked, expired or idle ends it (end_session)."""
    token = st.session_state.get(TOKEN_KEY)
    kind = st.session_state.get(KIND_KEY)
    if token is None:  # signed in without a server session: not one of ours
        end_session(user, "missing", REVOKED_MESSAGE)
    res = sessions.resume(engine, token, now=now(), idle_timeout=users.IDLE_TIMEOUT,
                          activity=st.session_state.get(LAST_KEY))
    if not res.ok:
        end_session(user, res.reason, _ended_text(res.reason, kind))


# ------------------------------------------------------------------------------------------- meeting screen


def is_screen() -> bool:
    """This tab runs a meeting screen session (投屏模式): the meeting page only, read-only, masked."""
    return st.session_state.get(KIND_KEY) == sessions.SCREEN


def _screen_user(user: User) -> User:
    return dataclasses.replace(user, can_unmask=False)


def _beijing(at: dt.datetime) -> str:
    return f"{at + BEIJING:%H:%M}"


def screen_controls() -> None:
    """Below the meeting screen: 投屏模式 for a signed-in user; in screen mode, until when it runs and
    结束投屏. (The meeting page's own CSS gives ``bf-note`` its colour.)"""
    user = current_user()
    if user is None or is_demo_viewer(user):
        return
    if is_screen():
        token = st.session_state.get(TOKEN_KEY)
        res = sessions.check(data.engine(data.db_url()), token, now=now()) if token else None
        until = f"，{_beijing(res.session.expires_at)}（北京时间）自动结束" if res and res.session else ""
        st.markdown(f'<div class="bf-note">投屏模式：只读、脱敏{until}</div>', unsafe_allow_html=True)
        st.button(SCREEN_END_LABEL, key="screen_end", icon=":material/cancel_presentation:", on_click=_end_screen,
                  type="tertiary")  # a text button: readable on the dark screen
        return
    hours = f"{settings.screen_hours():g}"
    st.button(SCREEN_LABEL, key="screen_start", icon=":material/cast:", on_click=start_screen, type="tertiary",
              help=f"把本浏览器转为会议大屏：只显示本页，只读，个人信息脱敏，不因无人操作而退出，{hours}小时后自动结束；"
                   "同时退出您在本浏览器的个人登录。")


def start_screen() -> None:
    """The 投屏模式 button's on_click: turn this browser's signed-in session into a meeting screen session
    (same user and scope); the personal session ends (audited as logout "screen", the screen as login_ok
    "screen"). The run that follows shows the meeting page as the screen."""
    user = current_user()
    if user is None or is_demo_viewer(user) or is_screen():
        return
    engine = data.engine(data.db_url())
    old = st.session_state.get(TOKEN_KEY)
    with engine.begin() as conn:
        if old:
            sessions.revoke(conn, old, now=now())
        users.logout(conn, user, "screen")
        token, session = sessions.create(conn, user.username, sessions.SCREEN, client=client_address(), now=now())
        audit.record(conn, user.username, audit.LOGIN_OK, object=user.username, scope=users.user_scope(user),
                     detail="screen", at=now())
    st.session_state.clear()
    _adopt(token, session)


def _end_screen() -> None:
    _logout(current_user(), "screen_end")


# ------------------------------------------------------------------------------------------- OIDC


def oidc_configured() -> bool:
    """st.login is usable: secrets.toml exists and has an [auth] section."""
    try:
        return bool(st.secrets.load_if_toml_exists() and "auth" in st.secrets)
    except Exception:  # noqa: BLE001 - a broken secrets file: no OIDC
        return False


def _oidc_sign_in(engine) -> None:
    if not oidc_configured():
        return
    try:
        logged_in = bool(st.user.is_logged_in)
        email = st.user.get("email")
    except Exception:  # noqa: BLE001
        return
    if not logged_in:
        return
    res = users.login_oidc(engine, email or "", now=now())
    if res.ok:
        _start(res.user, oidc=True)
    msg = _message(res) if res.reason in ("locked", "disabled") else "该统一身份认证账号未登记为看板用户，请联系管理员。"
    st.error(msg, icon=":material/error:")
    st.button("退出统一身份认证", on_click=st.logout, key="logout_oidc")


# ------------------------------------------------------------------------------------------- sidebar


def scope_name(url: str, user: User) -> str:
    if user.role == "province":
        return "全省"
    if user.role == "unit":
        info = data.unit_info(url, user.unit_id)
        return info["name"] if info else str(user.unit_id)
    info = data.region_info(url, user.region_code)
    return info["name"] if info else str(user.region_code)


def user_box(url: str, user: User) -> None:
    """当前用户 and the logout button (sidebar); the demo-mode banner for the implicit demo viewer."""
    if is_demo_viewer(user):
        st.info(DEMO_BANNER, icon=":material/visibility:")
        return
    name = user.display_name or user.username
    # the names (a unit's or region's from the ledger) are shown as text, never as Markdown
    st.sidebar.caption(f"当前用户：{md_text(name)} · {users.ROLE_ZH.get(user.role, user.role)} · "
                       f"{md_text(scope_name(url, user))}")
    st.sidebar.button("退出登录", on_click=logout_clicked, key="logout", icon=":material/logout:")


# ------------------------------------------------------------------------------------------- audit


def _audited_user() -> User | None:
    user = current_user()
    return None if user is None or is_demo_viewer(user) else user


def record_page_view(page: str, scope: Scope) -> None:
    """One page_view row per (page, scope) change, not one per rerun."""
    user = _audited_user()
    if user is None:
        return
    key = (page, audit.scope_text(scope))
    st.session_state.pop(DENIED_AUDIT_KEY, None)  # an allowed view ends a denied request
    if st.session_state.get(VIEW_KEY) == key:
        return
    st.session_state[VIEW_KEY] = key
    audit.record_page_view(data.engine(data.db_url()), user.username, page, scope)


def record_denied(asked: Scope) -> None:
    """A URL asked for a region or unit outside the user's scope (the 无权查看 message): one ``denied``
    audit row per such request, not one per rerun of it."""
    user = _audited_user()
    if user is None:
        return
    key = audit.scope_text(asked)
    if st.session_state.get(DENIED_AUDIT_KEY) == key:
        return
    st.session_state[DENIED_AUDIT_KEY] = key
    st.session_state.pop(VIEW_KEY, None)  # the next allowed view is a new one
    audit.record_denied(data.engine(data.db_url()), user.username, asked, scope=user.scope)


def audited_file(build: Callable[[], bytes], list_name: str, rows: int, masked: bool, scope: Scope | None = None,
                 fmt: str | None = None) -> Callable[[], bytes]:
    """A download button's data callable (its button takes ``on_click="ignore"``): builds the file when the browser
    asks for it and records the export for the user who saw the page; the file is handed out only once its audit
    row is written (an audit failure fails the download). No rerun on the click: Streamlit 1.67 drops a deferred
    file's id when a click's rerun ends before the file request, and the user got no file."""
    user = _audited_user()  # read now: the callable runs outside the script (a worker thread)
    engine = data.engine(data.db_url()) if user is not None else None

    def deliver() -> bytes:
        content = build()
        if user is not None:
            audit.record_export(engine, user.username, list_name, rows, masked, scope=scope, fmt=fmt)
        return content

    return deliver


def unmask_toggle(view: str, key: str, scope: Scope | None = None) -> bool:
    """For a user with the permission: the per-view toggle 显示完整个人信息 (default off). Turning it on
    asks users.request_unmask (audited, once per turning on). True: fetch this view unmasked."""
    user = current_user()
    if not users.may_unmask(user) or is_demo_viewer(user):
        return False
    on = st.toggle(UNMASK_LABEL, key=key, value=False, help="打开后本列表显示完整的身份证号、电话和姓名；每次打开均记入审计日志。")
    granted = f"{key}#granted"
    if not on:
        st.session_state.pop(granted, None)
        return False
    if granted not in st.session_state:
        st.session_state[granted] = users.request_unmask(data.engine(data.db_url()), user, view, scope=scope)
    return bool(st.session_state[granted])
