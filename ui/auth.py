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

import datetime as dt
import uuid

import streamlit as st

from data_access import audit, users
from data_access.metrics import Scope
from data_access.users import User

from . import data

USER_KEY = "_bf_user"  # the signed-in username
LAST_KEY = "_bf_last"  # last activity (naive UTC)
RUN_USER = "_bf_run_user"  # the User of this run (re-read from the database on every run)
NAV_KEY = "_bf_nav"  # what the navigation was drawn for ("demo" or a role); cosmetic only
NOTICE_KEY = "_bf_auth_notice"  # a message for the login form after a sign-out
VIEW_KEY = "_bf_last_view"  # the last (page, scope) recorded as a page view
OIDC_KEY = "_bf_oidc"  # signed in through OIDC
CLIENT_KEY = "_bf_login_client"  # this browser session's client key for sign-in throttling (no address known)
DENIED_AUDIT_KEY = "_bf_denied"  # the out-of-scope request last audited (once per request, not per rerun)

IDLE_MESSAGE = "长时间未操作，已自动退出，请重新登录"
BAD_LOGIN = "用户名或密码错误"
DEMO_BANNER = ("演示模式（免登录）：数据库中还没有用户，当前以只读的演示身份浏览，个人信息已脱敏。"
               "创建第一个用户（bangfu user add）后即需要登录。")
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
        if data.is_demo(url):
            return _run_as(DEMO_USER, "demo")
        _forget()
        st.error(NO_USERS, icon=":material/lock:")
        st.stop()
    name = st.session_state.get(USER_KEY)
    if name:
        user = users.get_user(engine, name)
        if user is None or user.disabled:
            end_session(user or name, "disabled", "您的账号已停用或已删除，请联系管理员。")
        if users.idle_expired(st.session_state.get(LAST_KEY), now()):
            end_session(user, "idle", IDLE_MESSAGE)
        st.session_state[LAST_KEY] = now()
        return _run_as(user, user.role)
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
    for k in (RUN_USER, NAV_KEY, USER_KEY, LAST_KEY):
        st.session_state.pop(k, None)


def _start(user: User, oidc: bool = False) -> None:
    st.session_state.clear()  # nothing (a typed password, another user's widgets) survives a sign-in
    st.session_state[USER_KEY] = user.username
    st.session_state[LAST_KEY] = now()
    if oidc:
        st.session_state[OIDC_KEY] = True
    st.rerun()


def end_session(user, reason: str | None = None, notice: str | None = None) -> None:
    """Record the logout, clear the whole session state and show the login form (st.rerun)."""
    _logout(user, reason, notice)
    st.rerun()


def _logout(user, reason: str | None = None, notice: str | None = None) -> None:
    oidc = st.session_state.get(OIDC_KEY)
    if user is not None and not is_demo_viewer(user):
        users.logout(data.engine(data.db_url()), user, reason)
    st.session_state.clear()
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
    fresh = users.get_user(data.engine(data.db_url()), user.username)
    return fresh is None or fresh.disabled or users.idle_expired(st.session_state.get(LAST_KEY), now())


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
    st.sidebar.caption(f"当前用户：{name} · {users.ROLE_ZH.get(user.role, user.role)} · {scope_name(url, user)}")
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


def record_export(list_name: str, rows: int, masked: bool, scope: Scope | None = None, fmt: str | None = None) -> None:
    """A download button's on_click."""
    user = _audited_user()
    if user is None:
        return
    audit.record_export(data.engine(data.db_url()), user.username, list_name, rows, masked, scope=scope, fmt=fmt)


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
