"""督办 in the dashboard (AppTest, signing in through the real form): a county user issues an order from the
overdue list, the addressed unit sees it and writes its response, the 督办整改 page and the overview agree with
data_access.supervision; roles without the right see no issue panel and no response form."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from data_access import audit, db, users
from data_access import supervision as sv
from data_access.scope import Scope

from .pages_ledger import build

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PW = "correct-horse-1"


@pytest.fixture
def app_db(tmp_path, monkeypatch):
    url = build(tmp_path)
    engine = db.make_engine(url)
    users.add_user(engine, "changan", PW, "county", region="130102")
    users.add_user(engine, "u3", PW, "unit", unit="U3")
    users.add_user(engine, "u4", PW, "unit", unit="U4")
    monkeypatch.setenv("DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield url, engine
    st.cache_data.clear()
    st.cache_resource.clear()
    engine.dispose()


def login(username: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.text_input(key="login_user").input(username)
    at.text_input(key="login_password").input(PW)
    at.button[0].click().run()
    assert not at.exception
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_county_user_issues_and_unit_responds(app_db):
    url, engine = app_db
    at = goto(login("changan"), "cadence")
    assert [e.label for e in at.expander if "下发督办单" in e.label]
    unit = at.selectbox(key="issue-overdue-unit")
    assert unit.value == "U3"
    at.radio(key="issue-overdue-mode").set_value("选择部分记录").run()
    pick = at.multiselect(key="issue-overdue-pick")
    chosen = pick.options[:2]
    pick.set_value(chosen).run()
    at.text_area(key="issue-overdue-note").input("限期入户走访").run()
    at.button(key="issue-overdue-go").click().run()
    assert not at.exception
    assert any("已下发督办单" in s.value for s in at.success), [e.value for e in at.error]
    od = sv.orders(engine, at.date_input(key="f_as_of").value, Scope(region="130102"))
    assert len(od) == 1 and od.iloc[0]["items"] == 2 and od.iloc[0]["region_code"] == "130102"
    assert od.iloc[0]["issued_by"] == "changan" and od.iloc[0]["note"] == "限期入户走访"
    rows = audit.query(engine, event="order_issue")
    assert len(rows) == 1

    # the 督办整改 page and the overview show it
    goto(at, "supervision")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["督办单"] == "1" and metrics["督办事项"] == "2" and metrics["整改中"] == "2"
    assert not at.text_area  # no response form for a county user
    goto(at, "overview")
    links = [x.proto.label for x in at.get("page_link")]
    assert any("督办整改" in t and "整改中 2 条" in t for t in links)

    # the addressed unit: sees the order, writes its response
    at = goto(login("u3"), "supervision")
    assert at.selectbox(key="sv-pick").value == od.iloc[0]["order_id"]
    key = f"sv-response-{od.iloc[0]['order_id']}"
    at.text_area(key=key).input("已安排两名责任人本周入户走访")  # a form: sent with the submit
    at.button[[b.label for b in at.button].index("提交整改说明")].click().run()
    assert not at.exception
    assert any("整改说明已提交" in s.value for s in at.success), [e.value for e in at.error]
    assert list(sv.orders(engine, od.iloc[0]["issued_on"], Scope(unit="U3"))["response"]) == ["已安排两名责任人本周入户走访"]
    assert not [e for e in at.expander if "下发督办单" in e.label]

    # another unit sees nothing of it
    at = goto(login("u4"), "supervision")
    assert any("没有下发给本单位的督办单" in i.value for i in at.info)


def test_unit_user_cannot_issue(app_db):
    at = goto(login("u3"), "cadence")
    assert not [e for e in at.expander if "下发督办单" in e.label]
