"""Every dashboard page under Streamlit's AppTest, on a small fixed SQLite database
(tests/pages_ledger.py): no exception, and the figures shown equal what the metric engine computes
for the same scope and date."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from data_access import settings
from data_access import db
from data_access import metrics as m
from data_access import problems as pb
from data_access import views
from data_access.dates import previous_month_end
from data_access.scope import ALL, Scope
from ui import format as fmt

from .pages_ledger import AS_OF, add_admin, build, login

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
D = AS_OF.isoformat()
TANGSHAN, CHANG_AN, JIANBEI = "130200", "130102", "130102001"


@pytest.fixture(scope="module")
def page_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    url = build(folder)
    add_admin(url)
    engine = db.make_engine(url)
    yield url, engine
    engine.dispose()


def _clear_caches():
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app_db(page_db, monkeypatch):
    url, engine = page_db
    monkeypatch.setenv("DATABASE_URL", url)
    _clear_caches()
    yield url, engine
    _clear_caches()


def run(page: str | None = None, **params) -> AppTest:
    """Run the app (with query parameters), switch to `page` and run it; no exception allowed."""
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    if _has_login(at):
        login(at)
        assert not at.exception, [e.message for e in at.exception]
    if page:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, [e.message for e in at.exception]
    return at


def _has_login(at: AppTest) -> bool:
    return any(t.key == "login_user" for t in at.text_input)


def metrics_shown(at: AppTest) -> dict[str, str]:
    return {x.label: x.value for x in at.metric}


def deltas_shown(at: AppTest) -> dict[str, str]:
    return {x.label: x.delta for x in at.metric}


def html(at: AppTest) -> str:
    return "\n".join(x.value for x in at.markdown)


def all_text(at: AppTest) -> str:
    parts = [html(at)] + [x.value for x in at.title] + [x.value for x in at.caption]
    parts += [df.value.to_csv() for df in at.dataframe]
    return "\n".join(str(p) for p in parts)


def expected_totals(engine, d: dt.date, scope: Scope = ALL) -> dict:
    cov = m.total_row(m.coverage(engine, d, "province", scope), "coverage")
    cap = m.total_row(m.cap(engine, d, "province", scope), "cap")
    cad = m.total_row(m.cadence(engine, d, "province", scope), "cadence")
    rep = m.total_row(m.replacements(engine, d, "province", scope), "replacements")
    return {
        "coverage": cov["covered"] / cov["households"],
        "violators": cap["violators"],
        "overdue": cad["overdue"],
        "compliance": 1 - cad["overdue"] / cad["active_pairings"],
        "unapproved": rep["unapproved"],
        "households": cov["households"],
        "cadence": cad,
    }


# ------------------------------------------------------------------------------------------- overview


def test_overview_tiles_equal_the_metric_engine(app_db):
    _, engine = app_db
    at = run(as_of=D)
    want = expected_totals(engine, AS_OF)
    prev = expected_totals(engine, previous_month_end(AS_OF))
    shown = metrics_shown(at)
    assert shown["结对覆盖率"] == fmt.pct(want["coverage"])
    assert shown["超上限责任人"] == fmt.num(want["violators"])
    assert shown["走访逾期结对"] == fmt.num(want["overdue"])
    assert shown["走访合规率"] == fmt.pct(want["compliance"])
    assert shown["未批准调换"] == fmt.num(want["unapproved"])
    delta = deltas_shown(at)
    assert delta["结对覆盖率"] == fmt.pp_delta(want["coverage"], prev["coverage"])
    assert delta["未批准调换"] == fmt.count_delta(want["unapproved"], prev["unapproved"])
    assert delta["走访逾期结对"] == fmt.count_delta(want["overdue"], prev["overdue"])
    # the rating mix of the year before the as-of year
    r = m.total_row(m.ratings(engine, AS_OF.year - 1, "province", ALL), "ratings")
    rated = r["excellent"] + r["qualified"] + r["unqualified"]
    assert shown[f"{AS_OF.year - 1}年度优秀占比"] == fmt.pct(r["excellent"] / rated)
    assert len(at.get("plotly_chart")) == 4  # city ranking + 12-month trend + worst 10 counties and units
    assert not at.warning  # not demo data, no bad parameter


def test_region_parameter_and_city_select_box_rescope_the_overview(app_db):
    _, engine = app_db
    at = run(as_of=D, region=TANGSHAN)
    want = expected_totals(engine, AS_OF, Scope(region=TANGSHAN))
    province = expected_totals(engine, AS_OF)
    assert metrics_shown(at)["结对覆盖率"] == fmt.pct(want["coverage"])
    assert metrics_shown(at)["走访逾期结对"] == fmt.num(want["overdue"])
    assert want["coverage"] != province["coverage"]
    assert at.selectbox(key="f_city").value == TANGSHAN

    # choosing another city in the filter bar writes the URL and changes the figures
    at.selectbox(key="f_city").select("130100").run()
    assert not at.exception
    assert at.query_params["region"] == "130100"
    want = expected_totals(engine, AS_OF, Scope(region="130100"))
    assert metrics_shown(at)["结对覆盖率"] == fmt.pct(want["coverage"])
    # back to the whole province
    at.selectbox(key="f_city").select("").run()
    assert "region" not in at.query_params
    assert metrics_shown(at)["结对覆盖率"] == fmt.pct(province["coverage"])


def test_unit_and_date_filters(app_db):
    _, engine = app_db
    at = run(as_of=D)
    at.selectbox(key="f_unit").select("U3").run()
    assert not at.exception and at.query_params["unit"] == "U3"
    want = expected_totals(engine, AS_OF, Scope(unit="U3"))
    assert metrics_shown(at)["超上限责任人"] == fmt.num(want["violators"])
    assert metrics_shown(at)["走访逾期结对"] == fmt.num(want["overdue"])
    day = dt.date(2026, 5, 31)
    at.date_input(key="f_as_of").set_value(day).run()
    assert not at.exception and at.query_params["as_of"] == day.isoformat()
    want = expected_totals(engine, day, Scope(unit="U3"))
    assert metrics_shown(at)["走访逾期结对"] == fmt.num(want["overdue"])


# ------------------------------------------------------------------------------------------- coverage


def test_coverage_drills_down_through_query_parameters(app_db):
    _, engine = app_db
    for region, child_rows in ((None, 2), (CHANG_AN, 1), (JIANBEI, 2)):
        params = {"as_of": D, **({"region": region} if region else {})}
        at = run("coverage", **params)
        scope = Scope(region=region)
        tot = m.total_row(m.coverage(engine, AS_OF, "province", scope), "coverage")
        assert metrics_shown(at)["结对覆盖率"] == fmt.pct(tot["covered"] / tot["households"])
        assert metrics_shown(at)["未覆盖户"] == fmt.num(tot["households"] - tot["covered"])
        level = views.child_level(views.region_info(engine, region)["level"] if region else None)
        assert len(m.coverage(engine, AS_OF, level, scope)) == child_rows
        tables = [t.value for t in at.dataframe]
        assert len(tables[0]) == child_rows  # the level below the scope
        uncovered = pb.uncovered(engine, AS_OF, scope)
        assert len(tables[1]) == len(uncovered)  # the uncovered list narrows with the scope
        assert set(tables[1]["户编号"]) == set(uncovered["household_id"])


# ------------------------------------------------------------------------------------------- cap


def test_cap_page_lists_violators_masked(app_db):
    _, engine = app_db
    at = run("cap", as_of=D)
    tot = m.total_row(m.cap(engine, AS_OF, "province", ALL), "cap")
    assert metrics_shown(at)["超上限责任人"] == fmt.num(tot["violators"])
    assert metrics_shown(at)["在帮责任人"] == fmt.num(tot["helpers"])
    viol = pb.cap_violators(engine, AS_OF)
    lists = [t.value for t in at.dataframe]
    assert list(lists[0]["帮扶责任人编号"]) == list(viol["helper_id"])
    assert list(lists[1]["帮扶户数"]) == sorted(pb.cap_violators(engine, AS_OF, min_load=1)["load"], reverse=True)
    text = all_text(at)
    assert "冯十一" not in text and "冯**" in text  # names masked
    assert "13912345678" not in text and "139****5678" in text  # phones masked
    labels = [b.proto.label for b in at.get("download_button")]
    assert "下载 CSV" in labels and "下载 Excel" in labels


# ------------------------------------------------------------------------------------------- cadence


def test_cadence_page(app_db):
    _, engine = app_db
    at = run("cadence", as_of=D, region="130100")
    scope = Scope(region="130100")
    cad = m.total_row(m.cadence(engine, AS_OF, "province", scope), "cadence")
    assert metrics_shown(at)["走访逾期结对"] == fmt.num(cad["overdue"])
    assert metrics_shown(at)["走访合规率"] == fmt.pct(1 - cad["overdue"] / cad["active_pairings"])
    overdue = pb.overdue(engine, AS_OF, scope)
    assert set(at.dataframe[0].value["结对编号"]) == set(overdue["pairing_id"])
    assert len(at.get("plotly_chart")) >= 3  # region ranking, unit ranking, gap histogram
    assert "户主" + "H1" not in all_text(at)


# ------------------------------------------------------------------------------------------- ratings


def test_ratings_page(app_db):
    _, engine = app_db
    year = AS_OF.year - 1
    at = run("ratings", as_of=D)
    r = m.total_row(m.ratings(engine, year, "province", ALL), "ratings")
    assert metrics_shown(at)["未考核"] == fmt.num(r["missing"])
    assert metrics_shown(at)["已考核责任人"] == fmt.num(r["excellent"] + r["qualified"] + r["unqualified"])
    missing, excellent = (t.value for t in at.dataframe)
    assert len(missing) == r["missing"]
    flagged = views.excellent_with_problems(engine, year, AS_OF)
    assert set(excellent["帮扶责任人编号"]) == set(flagged["helper_id"]) == {"G", "F"}
    # another year through the URL
    at = run("ratings", as_of=D, year="2024")
    r = m.total_row(m.ratings(engine, 2024, "province", ALL), "ratings")
    assert metrics_shown(at)["未考核"] == fmt.num(r["missing"])


# ------------------------------------------------------------------------------------------- units


def test_units_list_unit_page_and_helper_page(app_db):
    _, engine = app_db
    at = run("units", as_of=D)
    assert len(at.dataframe[0].value) == len(views.list_units(engine))

    at = run("units", as_of=D, unit="U3")
    assert at.title[0].value == "派出单位：长安区农业农村局"
    helpers = at.dataframe[0].value
    assert set(helpers["帮扶责任人编号"]) == {"A", "B", "G"}
    g = helpers[helpers["帮扶责任人编号"] == "G"].iloc[0]
    assert g["帮扶户数"] == 6 and g["帮扶责任人"] == "冯**"
    cap = m.total_row(m.cap(engine, AS_OF, "province", Scope(unit="U3")), "cap")
    assert metrics_shown(at)["超上限责任人"] == fmt.num(cap["violators"])

    at = run("units", as_of=D, helper="G")
    assert at.title[0].value == f"帮扶责任人：{fmt.md_text('冯**')}（G）"  # the masked name shown as text
    assert metrics_shown(at)["帮扶户数"] == "6"
    overdue_g = pb.overdue(engine, AS_OF, Scope(unit="U3"))
    assert metrics_shown(at)["走访逾期结对"] == str((overdue_g["helper_id"] == "G").sum())
    assert len(at.dataframe[0].value) == 6
    assert len(at.get("plotly_chart")) == 1  # the visit timeline


# ------------------------------------------------------------------------------------------- meeting


def test_meeting_page(app_db):
    _, engine = app_db
    at = run("meeting", as_of=D, refresh="10")
    want = expected_totals(engine, AS_OF)
    text = html(at)
    assert fmt.pct(want["coverage"]) in text
    assert f">{fmt.num(want['overdue'])}<" in text
    assert f"走访合规率 {fmt.pct(want['compliance'])}" in text
    assert "每10秒刷新" in text
    css = "\n".join(x.value for x in at.get("html"))
    assert '[data-testid="stSidebar"]' in css and "display: none" in css  # no sidebar on the big screen
    assert len(at.get("plotly_chart")) == 2  # the ranking chart and the county map

    at = run("meeting", as_of=D, refresh="soon")
    assert "每30秒刷新" in html(at) and "refresh=soon" in html(at)


# ------------------------------------------------------------------------------------------- bad input


def test_bad_query_parameters_warn_and_fall_back(app_db):
    _, engine = app_db
    at = run(as_of="garbage", region="999999", unit="NOPE", year="abc")
    warnings = "\n".join(w.value for w in at.warning)
    assert all(fmt.md_text(x) in warnings for x in ("as_of=garbage", "999999", "NOPE", "year=abc"))  # as text
    want = expected_totals(engine, settings.today())
    assert metrics_shown(at)["结对覆盖率"] == fmt.pct(want["coverage"])
    for k in ("as_of", "region", "unit", "year"):
        assert k not in at.query_params

    at = run(as_of="2999-01-01", region=f" {CHANG_AN} ")
    assert "晚于今天" in "\n".join(w.value for w in at.warning)
    want = expected_totals(engine, settings.today(), Scope(region=CHANG_AN))
    assert metrics_shown(at)["结对覆盖率"] == fmt.pct(want["coverage"])


def test_unreachable_database_shows_a_message(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    _clear_caches()
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.error and "无法连接数据库" in at.error[0].value
    assert not at.metric


def test_empty_database_shows_a_message(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    db.upgrade(db.make_engine(url))
    monkeypatch.setenv("DATABASE_URL", url)
    _clear_caches()
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.error and "bangfu import" in at.error[0].value
    _clear_caches()


def test_demo_banner(page_db, tmp_path, monkeypatch):
    url, _ = page_db
    copy = tmp_path / "demo.sqlite"
    shutil.copy(url.split("///", 1)[1], copy)
    demo_url = f"sqlite:///{copy}"
    engine = db.make_engine(demo_url)
    with engine.begin() as conn:
        db.set_meta(conn, "demo", "1")
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", demo_url)
    _clear_caches()
    at = run(as_of=D)
    assert any("演示数据" in w.value for w in at.warning)
    # a page opened directly also runs inside app.py (banner, database check): see ui/boot.py
    at.switch_page("pages/cap.py").run()
    assert not at.exception
    assert at.title[0].value == "帮扶上限" and any("演示数据" in w.value for w in at.warning)
    _clear_caches()


def test_first_start_on_the_embedded_database_generates_demo_data(tmp_path, monkeypatch):
    """Without DATABASE_URL the embedded SQLite file is created and filled with demo data
    (app.py → ui/startup.py); a small household count keeps the test fast."""
    from data_access import demo

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(db, "DEFAULT_SQLITE_PATH", tmp_path / "bangfu.sqlite")
    calls = []
    real = demo.generate

    def small(engine, households=20000, seed=1, **kw):
        calls.append((households, seed))
        return real(engine, households=300, seed=seed, **kw)

    monkeypatch.setattr(demo, "generate", small)
    _clear_caches()
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and not at.error
    assert calls == [(20000, 1)]
    assert any("演示数据" in w.value for w in at.warning)
    engine = db.make_engine(db.default_url())
    tot = m.total_row(m.coverage(engine, settings.today(), "province", ALL), "coverage")
    engine.dispose()
    assert metrics_shown(at)["结对覆盖率"] == fmt.pct(tot["covered"] / tot["households"])
    _clear_caches()


def test_long_lists_show_their_first_rows_and_total(app_db, monkeypatch):
    """A list longer than widgets.LIST_ROWS shows its first rows (worst first) and the list's total from
    the metric; the download is built from the whole list (data.full_list)."""
    from ui import data, widgets

    url, engine = app_db
    monkeypatch.setattr(widgets, "LIST_ROWS", 2)
    at = run("cap", as_of=D)
    loads = pb.cap_violators(engine, AS_OF, min_load=1, detail=True)
    assert len(loads) > 2
    shown = at.dataframe[1].value  # the second list: every loaded helper
    assert list(shown["帮扶户数"]) == sorted(loads["load"], reverse=True)[:2]
    assert f"**在帮责任人帮扶户数**（{len(loads):,} 条）" in html(at)
    assert any("前 2 条" in c.value for c in at.caption)
    full = data.full_list("cap", url, AS_OF, ALL, min_load=1)
    assert full.equals(loads)
