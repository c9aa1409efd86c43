"""Access control in the dashboard (ui/auth.py, ui/filters.py) under Streamlit's AppTest, signing in
through the real login form: login, lockout, idle timeout, logout, fail closed without users, the demo
mode, scope enforcement against adversarial URLs, no cache shared across users, no unmasked personal
data for the default roles (pages and download payloads), the per-view unmask toggle and the audit
rows written by the pages."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from data_access import audit, db, users
from data_access.ledger import import_ledger

from .cheap_hash import cheap_hash  # noqa: F401 - a fixture
from .conftest import write_ledger
from .pages_ledger import AS_OF, tables

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
D = AS_OF.isoformat()
CHANG_AN, LUNAN, PROVINCE = "130102", "130202", "130000"
PW = "correct-horse-1"
PAGES = ["overview", "map", "coverage", "cap", "cadence", "ratings", "units", "meeting"]
ID_RE = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dXx])")
PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
# what county A (长安区) must never see of county B (路南区): names, households H8–H11, helper F (郑一),
# unit U4 and its village
LUNAN_TEXT = ["路南区", "唐山市", "学院南路街道", "南村", "郑一", "路南区民政局"]
LUNAN_RE = re.compile(r"(?<![A-Za-z0-9])(H8|H9|H10|H11|U4)(?![0-9])")


def id_number(body17: str) -> str:
    """A citizen id with a valid GB 11643 check digit."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body17, weights)) % 11]
    return body17 + check


def ledger() -> dict:
    t = copy.deepcopy(tables())  # tables() shares the dicts of tests/ledgers.py
    for i, h in enumerate(t["households"]):
        h["id_number"] = id_number(f"{h['village_code'][:6]}1980{(i % 12) + 1:02d}{(i % 28) + 1:02d}{i:03d}")
    for i, h in enumerate(t["helpers"]):
        h["phone"] = f"139{i + 1:08d}"
    return t


@pytest.fixture(scope="module")
def auth_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth")
    url = f"sqlite:///{folder / 'auth.sqlite'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    import_ledger(engine, write_ledger(folder / "ledger", ledger()))
    users.add_user(engine, "county_a", PW, "county", region=CHANG_AN, display_name="长安用户")
    users.add_user(engine, "county_b", PW, "county", region=LUNAN, display_name="路南用户")
    users.add_user(engine, "prov", PW, "province", can_unmask=True, display_name="省级审计员")
    users.add_user(engine, "prov_plain", PW, "province")
    users.add_user(engine, "unit_u3", PW, "unit", unit="U3")
    yield url, engine
    engine.dispose()


def _clear_caches():
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app_db(auth_db, monkeypatch):
    url, engine = auth_db
    monkeypatch.setenv("DATABASE_URL", url)
    with engine.begin() as conn:  # fresh lockout counters
        from data_access.schema import login_throttle
        from data_access.schema import users as t
        conn.execute(t.update().values(failed_attempts=0, locked_until=None))
        conn.execute(login_throttle.delete())
    _clear_caches()
    yield url, engine
    _clear_caches()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    return at


def has_login_form(at: AppTest) -> bool:
    return any(t.key == "login_user" for t in at.text_input)


def login(username: str, password: str = PW, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    ok(at.run())
    assert has_login_form(at) and not at.metric and not at.dataframe
    at.text_input(key="login_user").input(username)
    at.text_input(key="login_password").input(password)
    ok(at.button[0].click().run())
    return at


def goto(at: AppTest, page: str, **params) -> AppTest:
    for k in ("region", "unit", "helper"):
        if k in at.query_params:
            del at.query_params[k]
    for k, v in params.items():
        at.query_params[k] = v
    return ok(at.switch_page(f"pages/{page}.py").run())


def chart_data(at: AppTest) -> str:
    import json

    out = []
    for chart in at.get("plotly_chart"):
        fig = json.loads(chart.proto.spec)
        for tr in fig.get("data", []):
            tr = {k: v for k, v in tr.items() if k != "geojson"}
            out.append(json.dumps(tr, ensure_ascii=False))
        out.append(json.dumps(fig.get("layout", {}).get("title", ""), ensure_ascii=False))
    return "\n".join(out)


def scan_text(at: AppTest, options: bool = True) -> str:
    parts = [x.value for x in at.markdown] + [x.value for x in at.title] + [x.value for x in at.caption]
    parts += [x.value for x in at.subheader] + [x.value for x in at.warning] + [x.value for x in at.info]
    parts += [x.value for x in at.error] + [x.value for x in at.success]
    parts += [f"{x.label} {x.value} {x.help}" for x in at.metric]
    parts += [df.value.to_csv() for df in at.dataframe]
    for sb in at.selectbox if options else []:
        parts += [str(o) for o in sb.options]
    parts.append(chart_data(at))
    return "\n".join(str(p) for p in parts)


def warnings(at: AppTest) -> str:
    return "\n".join(w.value for w in at.warning)


def no_lunan(text: str) -> None:
    for word in LUNAN_TEXT:
        assert word not in text, word
    assert not LUNAN_RE.search(text), LUNAN_RE.search(text).group(0)


def audit_rows(engine, **kw):
    return audit.query(engine, **kw)


# ------------------------------------------------------------------------------------------- sign-in


def _try(at: AppTest, name: str, password: str) -> str:
    at.text_input(key="login_user").input(name)
    at.text_input(key="login_password").input(password)
    ok(at.button[0].click().run())
    return at.error[0].value if at.error else ""


def test_login_form_before_any_page_one_answer_and_throttling_by_client(app_db, cheap_hash):
    _, engine = app_db
    if users.get_user(engine, "lock_me") is None:
        users.add_user(engine, "lock_me", PW, "county", region=CHANG_AN)
    t0 = audit.utcnow()
    answers = {}
    for name in ("nobody", "lock_me"):
        at = ok(AppTest.from_file(APP, default_timeout=60).run())  # a browser of its own (its own client)
        assert has_login_form(at) and not at.metric and not at.dataframe and not at.get("plotly_chart")
        assert [b.label for b in at.button] == ["登录"]
        answers[name] = [re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "<time>", _try(at, name, "wrong-password"))
                         for _ in range(users.CLIENT_THRESHOLD + 2)]
    # whether the name exists or not: the same answers, attempt by attempt
    assert answers["nobody"] == answers["lock_me"]
    first = users.CLIENT_THRESHOLD - 1
    assert answers["lock_me"][:first] == ["用户名或密码错误"] * first
    assert answers["lock_me"][first:] == ["登录失败次数过多，已暂停登录，请于 <time>（北京时间）后再试。"] * 3
    # this browser is blocked, even with the right password ...
    assert "登录失败次数过多" in _try(at, "lock_me", PW) and not at.metric
    # ... but the account is not locked: the user signs in from another browser
    other = login("lock_me", as_of=D)
    assert other.metric and not has_login_form(other)
    throttled = audit_rows(engine, since=t0, event=audit.LOGIN_THROTTLED)
    assert len(throttled) == 2 and all(o.startswith("session:") for o in throttled["object"])
    refused = audit_rows(engine, since=t0, username="lock_me", event=audit.LOGIN_FAILED, outcome="denied")
    assert list(refused["detail"]) == ["throttled"] * 3


def test_login_shows_user_and_logout_clears_the_session(app_db):
    _, engine = app_db
    at = login("county_a", as_of=D)
    assert at.metric and not has_login_form(at)
    assert any("当前用户：长安用户 · 县级 · 长安区" in c.value for c in at.caption)
    assert at.session_state["_bf_user"] == "county_a"
    ok(at.button(key="logout").click().run())
    assert has_login_form(at) and not at.metric
    assert "_bf_user" not in at.session_state and "_bf_state" not in at.session_state
    rows = audit_rows(engine, username="county_a", event=audit.LOGOUT)
    assert len(rows) >= 1 and rows.iloc[0]["detail"] == "user"


def test_idle_timeout_signs_out(app_db, monkeypatch):
    _, engine = app_db
    from ui import auth

    at = login("county_a", as_of=D)
    assert at.metric
    later = auth.now() + users.IDLE_TIMEOUT + dt.timedelta(minutes=1)
    monkeypatch.setattr(auth, "now", lambda: later)
    ok(at.run())
    assert has_login_form(at) and not at.metric
    assert any("长时间未操作，已自动退出，请重新登录" in x.value for x in at.info)
    assert "_bf_user" not in at.session_state
    assert audit_rows(engine, username="county_a", event=audit.LOGOUT).iloc[0]["detail"] == "idle"


def test_fail_closed_without_users_on_a_real_database(app_db, tmp_path, monkeypatch):
    copy = tmp_path / "nousers.sqlite"
    eng = db.make_engine(f"sqlite:///{copy}")
    db.upgrade(eng)
    import_ledger(eng, write_ledger(tmp_path / "ledger", ledger()))
    eng.dispose()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{copy}")
    _clear_caches()
    for page in (None, "coverage"):
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params["as_of"] = D
        ok(at.run())
        if page:
            ok(at.switch_page(f"pages/{page}.py").run())
        assert at.error and "bangfu user add admin --role province" in at.error[0].value
        assert not at.metric and not at.dataframe and not at.get("plotly_chart") and not has_login_form(at)

    # marked demo and still without users: the implicit, masked demo viewer
    eng = db.make_engine(f"sqlite:///{copy}")
    with eng.begin() as conn:
        db.set_meta(conn, "demo", "1")
    _clear_caches()
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["as_of"] = D
    ok(at.run())
    assert at.metric and any("演示模式（免登录）" in x.value for x in at.info)
    assert not [b for b in at.button if b.key == "logout"]
    ok(at.switch_page("pages/coverage.py").run())
    text = scan_text(at)
    assert not ID_RE.search(text) and not PHONE_RE.search(text)
    assert not at.toggle  # no unmasking in the demo mode
    # one user later, login is required there too
    users.add_user(eng, "first", PW, "province")
    eng.dispose()
    _clear_caches()
    at = ok(AppTest.from_file(APP, default_timeout=60).run())
    assert has_login_form(at) and not at.metric


# ------------------------------------------------------------------------------------------- scope


ADVERSARIAL = [
    ({"region": LUNAN}, "denied"),
    ({"region": "130202001"}, "denied"),
    ({"unit": "U4"}, "denied"),
    ({"unit": "U1"}, "denied"),  # a province unit working in the county: not the county's to open
    ({"region": PROVINCE}, "narrowed"),
    ({"region": "130100"}, "narrowed"),
    ({"helper": "F"}, "helper"),
    ({}, None),
]


@pytest.mark.parametrize("page", PAGES)
def test_county_user_never_sees_another_county(app_db, page):
    _, engine = app_db
    at = login("county_a", as_of=D)
    for params, kind in ADVERSARIAL:
        goto(at, page, **params)
        text = scan_text(at)
        no_lunan(text)
        w = warnings(at)
        if kind == "denied":
            if page != "meeting":
                assert "您无权查看该范围的数据" in w, (page, params)
                assert not at.metric and not at.dataframe, (page, params)
            else:
                assert "您无权查看该范围的数据" in w and "bf-tile" not in text
        elif kind == "narrowed" and page != "meeting":
            assert "超出您的权限" in w, (page, params)
        elif kind == "helper" and page != "meeting":
            assert "无权查看该责任人" in w, (page, params)
        if page != "meeting" and kind != "denied":
            assert at.selectbox(key="f_county").options == ["长安区"]
            assert at.selectbox(key="f_city").options == ["石家庄市"]
            assert all(o in ("全部单位", "长安区农业农村局") for o in at.selectbox(key="f_unit").options)


def test_a_denied_scope_url_is_audited_once_per_request(app_db):
    _, engine = app_db
    t0 = audit.utcnow()
    at = login("county_a", as_of=D)
    goto(at, "coverage", region=LUNAN)
    assert "您无权查看该范围的数据" in warnings(at)
    ok(at.run())
    ok(at.run())  # reruns of the same request write nothing more
    denied = audit_rows(engine, since=t0, username="county_a", event=audit.SCOPE_DENIED)
    assert len(denied) == 1
    r = denied.iloc[0]
    assert (r["object"], r["scope"], r["outcome"]) == (f"region={LUNAN}", f"region={CHANG_AN}", "denied")
    goto(at, "coverage")  # an allowed view, then two more denied requests
    goto(at, "cap", unit="U4")
    assert "您无权查看该范围的数据" in warnings(at)
    goto(at, "meeting", region=LUNAN)
    denied = audit_rows(engine, since=t0, username="county_a", event=audit.SCOPE_DENIED, newest_first=False)
    assert list(denied["object"]) == [f"region={LUNAN}", "unit=U4", f"region={LUNAN}"]
    assert audit.verify(engine).ok


def test_unit_user_and_county_unit_pages(app_db):
    _, engine = app_db
    at = login("unit_u3", as_of=D)
    goto(at, "units")
    assert at.title[0].value == "派出单位：长安区农业农村局"
    assert at.selectbox(key="f_unit").options == ["长安区农业农村局"]
    goto(at, "units", unit="U4")
    assert "您无权查看该范围的数据" in warnings(at) and not at.dataframe
    goto(at, "units", helper="F")
    assert "无权查看该责任人" in warnings(at)
    # a unit user may narrow the unit's figures by any region: the region select boxes stay (names only)
    no_lunan(scan_text(at, options=False))
    # a county user opens a unit of the county and a province-unit helper paired in the county
    at = login("county_a", as_of=D)
    goto(at, "units", unit="U3")
    assert at.title[0].value == "派出单位：长安区农业农村局"
    no_lunan(scan_text(at))
    goto(at, "units", helper="G")
    assert at.title[0].value.startswith("帮扶责任人：")
    no_lunan(scan_text(at))


def test_cached_results_never_cross_users(app_db):
    """County A loads every page; county B, in a fresh session with the same (warm) cache, sees only B."""
    a = login("county_a", as_of=D)
    for page in PAGES:
        goto(a, page)
    ok(a.button(key="logout").click().run()) if any(b.key == "logout" for b in a.button) else None
    b = login("county_b", as_of=D)
    for page in PAGES:
        goto(b, page)
        text = scan_text(b)
        for word in ("长安区", "建北街道", "东村", "西村", "冯十一", "石家庄市"):
            assert word not in text, (page, word)
        assert not re.search(r"(?<![A-Za-z0-9])(H[1-7]|H12|H13|U3)(?![0-9])", text), page


# ------------------------------------------------------------------------------------------- privacy


@pytest.mark.parametrize("username", ["county_a", "county_b", "prov", "unit_u3"])
def test_no_unmasked_id_or_phone_for_the_default_view(app_db, username, monkeypatch):
    """Every rendered text, table, chart and every download payload (the deferred CSV / Excel data the
    download buttons register with Streamlit's media file manager, run here)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    deferred: list = []
    real_add = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        deferred.append((file_name, data_callable))
        return real_add(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    at = login(username, as_of=D)
    for page in PAGES:
        for params in ({}, {"helper": "G"}, {"unit": "U3"}):
            goto(at, page, **params)
            text = scan_text(at)
            assert not ID_RE.search(text), (page, params, ID_RE.search(text))
            assert not PHONE_RE.search(text), (page, params, PHONE_RE.search(text))
    assert deferred
    seen = set()
    for name, fn in deferred:
        if name in seen:  # the same file (name: list or briefing, scope, date) registered on every rerun
            continue
        seen.add(name)
        if name.endswith(".pdf"):  # the same blocks as the briefing's .docx (tests/test_reports.py reads both)
            continue
        data = fn()
        if name.endswith(".xlsx"):
            import io

            import pandas as pd

            sheets = pd.read_excel(io.BytesIO(data), dtype=str, sheet_name=None, header=None)  # every sheet
            t = "\n".join(df.to_csv() for df in sheets.values())
        elif name.endswith(".docx"):  # the 下载通报 briefings (ui/report.py)
            from .test_report_ui import docx_text

            t = docx_text(data)
        else:
            t = data.decode("utf-8-sig")
        assert not ID_RE.search(t) and not PHONE_RE.search(t), (name, t[:300])
        if username == "county_a":
            no_lunan(t)


def test_unmask_toggle_only_for_can_unmask_and_audited(app_db):
    _, engine = app_db
    at = login("prov_plain", as_of=D)
    goto(at, "coverage")
    assert not at.toggle
    at = login("county_a", as_of=D)
    goto(at, "coverage")
    assert not at.toggle
    at = login("prov", as_of=D)
    goto(at, "coverage")
    # the lists' toggles (the 下载通报 panel has its own, tests/test_report_ui.py)
    lists = [t for t in at.toggle if str(t.key).startswith("unmask-")]
    assert lists and {t.label for t in lists} == {"显示完整个人信息"} and "uncovered" in str(lists[0].key)
    assert not ID_RE.search(scan_text(at))
    ok(lists[0].set_value(True).run())
    ids = [x for x in at.dataframe[-2].value.to_csv().split() if ID_RE.search(x)] if len(at.dataframe) > 1 else []
    assert ID_RE.search(scan_text(at)) or ids
    rows = audit_rows(engine, username="prov", event=audit.UNMASK)
    assert len(rows) == 1 and rows.iloc[0]["object"] == "uncovered" and rows.iloc[0]["outcome"] == "ok"
    ok(at.run())  # a rerun does not ask again
    assert len(audit_rows(engine, username="prov", event=audit.UNMASK)) == 1
    # the other views stay masked
    goto(at, "cap")
    assert not PHONE_RE.search(scan_text(at))
    ok(next(t for t in at.toggle if str(t.key).startswith("unmask-")).set_value(True).run())
    assert PHONE_RE.search(scan_text(at))
    assert len(audit_rows(engine, username="prov", event=audit.UNMASK)) == 2


# ------------------------------------------------------------------------------------------- audit


def test_page_views_and_exports_are_audited(app_db, deferred_files):
    _, engine = app_db
    t0 = audit.utcnow()
    at = login("county_a", as_of=D)
    goto(at, "cadence")
    ok(at.run())
    ok(at.run())  # reruns of the same view: one row
    views = audit_rows(engine, since=t0, username="county_a", event=audit.PAGE_VIEW)
    cad = views[views["object"] == "pages/cadence.py"]
    assert len(cad) == 1 and cad.iloc[0]["scope"] == f"region={CHANG_AN}"
    assert len(views) == 2  # the overview after login, then cadence
    goto(at, "cadence", region="130102001")
    views = audit_rows(engine, since=t0, username="county_a", event=audit.PAGE_VIEW)
    assert views.iloc[0]["scope"] == "region=130102001"

    csv = [b for b in at.download_button if b.label == "下载 CSV"]
    assert csv
    assert audit_rows(engine, since=t0, username="county_a", event=audit.EXPORT).empty  # shown, not yet exported
    assert csv[0].proto.ignore_rerun  # the click reruns nothing: the file is audited while it is built
    deferred_files[csv[0].proto.deferred_file_id]()  # what the browser's request for the file runs
    ex = audit_rows(engine, since=t0, username="county_a", event=audit.EXPORT)
    assert len(ex) == 1 and ex.iloc[0]["object"] == "overdue"
    import json
    detail = json.loads(ex.iloc[0]["detail"])
    assert detail["masked"] is True and detail["format"] == "csv" and detail["rows"] >= 0


def test_audit_page_only_for_province(app_db, deferred_files):
    _, engine = app_db
    t0 = audit.utcnow()
    at = login("county_a", as_of=D)
    goto(at, "audit")
    assert at.error and "只有省级用户" in at.error[0].value and not at.dataframe and not at.download_button
    at = login("prov_plain", as_of=D)
    goto(at, "audit")
    assert at.title[0].value == "审计日志"
    df = at.dataframe[0].value
    assert "用户" in df.columns and "事件" in df.columns and len(df) > 0
    at.selectbox(key="audit_event").select(audit.LOGIN_OK).run()
    assert set(at.dataframe[0].value["事件"]) == {"登录成功"}
    at.selectbox(key="audit_user").select("prov_plain").run()
    assert set(at.dataframe[0].value["用户"]) == {"prov_plain"}
    assert audit_rows(engine, since=t0, username="prov_plain", event=audit.EXPORT).empty
    deferred_files[at.download_button[0].proto.deferred_file_id]()  # the browser's request for the file
    ex = audit_rows(engine, since=t0, username="prov_plain", event=audit.EXPORT)
    assert len(ex) == 1 and ex.iloc[0]["object"] == "audit_log"


# ------------------------------------------------------------------------------------------- both databases


def test_login_scope_and_audit_on_sqlite_and_postgresql(engine, tmp_path, monkeypatch):
    """The same sign-in, scope check and audit rows on a migrated SQLite file and on PostgreSQL."""
    import_ledger(engine, write_ledger(tmp_path / "ledger", ledger()))
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    _clear_caches()
    at = ok(AppTest.from_file(APP, default_timeout=60).run())  # no users, not demo: fail closed
    assert at.error and "bangfu user add admin --role province" in at.error[0].value and not at.metric
    users.add_user(engine, "county_a", PW, "county", region=CHANG_AN)
    _clear_caches()
    t0 = audit.utcnow()
    at = login("county_a", as_of=D)
    assert at.metric
    goto(at, "coverage", region=LUNAN)
    assert "您无权查看该范围的数据" in warnings(at) and not at.dataframe
    goto(at, "coverage")
    no_lunan(scan_text(at))
    rows = audit_rows(engine, since=t0, username="county_a")
    assert {"login_ok", "page_view"} <= set(rows["event"])
    _clear_caches()


def test_a_disabled_user_is_signed_out_on_the_next_run(app_db):
    _, engine = app_db
    users.add_user(engine, "temp_user", PW, "county", region=CHANG_AN) if users.get_user(engine, "temp_user") is None \
        else users.enable_user(engine, "temp_user")
    at = login("temp_user", as_of=D)
    assert at.metric
    users.disable_user(engine, "temp_user")
    ok(at.run())
    assert has_login_form(at) and not at.metric
    assert any("已停用" in x.value for x in at.info)
