"""Issue 14, the as-of date control, under Streamlit's AppTest on the small page ledger (tests/pages_ledger.py).

AppTest runs the scripts, not a browser: it sees what the server draws and registers. What it can check here:

* a new date in the filter bar's date field goes into the URL and every figure, caption and download of the run;
* every download button drawn after the change builds the new date's file — the problem lists' CSV and Excel
  (file name, the Excel title rows, the rows themselves) and 下载通报 — and none of the previous run's files is
  offered any more; a previous run's button builds its own date's file (a download belongs to the screen that
  drew it: in the browser the previous screen is greyed and takes no clicks while the new one computes, see
  tests/test_date_control_browser.py);
* the filter bar draws the screen guard (Enter applies a typed date; stale elements greyed, not clickable) and
  the Chinese sentence for a typed date outside 2014-01-01 … today.

What only a browser shows (Enter, the greyed screen while computing, a click right after a change) is in
tests/test_date_control_browser.py.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
import streamlit as st
from openpyxl import load_workbook
from streamlit.testing.v1 import AppTest

from data_access import db
from data_access import problems as pb
from data_access.scope import ALL
from ui import filters
from ui import format as fmt

from .pages_ledger import AS_OF, add_admin, build, login

APP = str(Path(__file__).resolve().parent.parent / "app.py")

OLD, NEW = AS_OF, dt.date(2026, 3, 31)  # the replacement PB12 (ended 2026-06-15) makes the lists differ


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory):
    url = build(tmp_path_factory.mktemp("date_control"))
    add_admin(url)
    engine = db.make_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture
def app(ledger_db, monkeypatch):
    """The app on the page ledger; every deferred download the buttons register, by its file id."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    url, engine = ledger_db
    monkeypatch.setenv("DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    files: dict[str, tuple[str, object]] = {}
    real = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        file_id = real(self, data_callable, mimetype, coordinates, file_name, **kw)
        files[file_id] = (file_name, data_callable)
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    yield url, engine, files
    st.cache_data.clear()
    st.cache_resource.clear()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    return at


def open_page(page: str, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    ok(at.run())
    ok(login(at))
    if page != "overview":
        ok(at.switch_page(f"pages/{page}.py").run())
    return at


def downloads(at: AppTest, files: dict) -> dict[str, tuple[str, object]]:
    """The download buttons of the last run: label|file name -> (file name, the callable that builds it)."""
    out = {}
    for b in at.download_button:
        file_id = b.proto.deferred_file_id
        assert file_id in files, f"{b.label}: not a deferred download"
        # a click reruns nothing (Streamlit 1.67 lost the file when the click's rerun ended before the file request;
        # the export audit row is written while the file is built, ui/auth.audited_file)
        assert b.proto.ignore_rerun, f"{b.label}: its click reruns the page"
        name, build_file = files[file_id]
        out[f"{b.label}|{name}"] = (name, build_file)
    return out


def caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if "数据截至" in c.value)


def xlsx_rows(data: bytes) -> list[list]:
    return [[c.value for c in r] for r in load_workbook(io.BytesIO(data)).active.iter_rows()]


PAGES = {
    # page -> the files its buttons build at NEW ({} for the date): each problem list's CSV and Excel, and 下载通报
    "coverage": ["uncovered_{}.csv", "uncovered_{}.xlsx",  # no unapproved replacement had ended by NEW: no list
                 *(f"通报_province_{{}}_coverage-replacements.{x}" for x in ("docx", "pdf", "xlsx"))],
    "cap": ["cap_{}.csv", "cap_{}.xlsx", "loads_{}.csv", "loads_{}.xlsx",
            *(f"通报_province_{{}}_cap.{x}" for x in ("docx", "pdf", "xlsx"))],
    "cadence": ["overdue_{}.csv", "overdue_{}.xlsx",
                *(f"通报_province_{{}}_cadence-photos.{x}" for x in ("docx", "pdf", "xlsx"))],
    "ratings": ["excellent_with_problems_2025_{}.csv", "excellent_with_problems_2025_{}.xlsx",
                "missing_ratings_2025_{}.csv", "missing_ratings_2025_{}.xlsx",
                *(f"通报_province_{{}}_ratings.{x}" for x in ("docx", "pdf", "xlsx"))],
}


def dated(data: bytes) -> str:
    """The Excel file's first rows as text (a list's title, scope and date rows; a briefing's heading)."""
    return "\n".join(str(c) for r in xlsx_rows(data)[:4] for c in r if c)


@pytest.mark.parametrize("page", list(PAGES))
def test_a_new_date_moves_every_download_with_it(app, page):
    _, engine, files = app
    at = open_page(page, as_of=OLD.isoformat())
    assert f"数据截至 {fmt.date_zh(OLD)}" in caption(at)
    before = downloads(at, files)
    assert before and all(OLD.isoformat() in name for name, _ in before.values()), list(before)

    ok(at.date_input(key="f_as_of").set_value(NEW).run())
    assert at.query_params["as_of"] == NEW.isoformat()
    assert f"数据截至 {fmt.date_zh(NEW)}" in caption(at)
    after = downloads(at, files)
    assert sorted(name for name, _ in after.values()) == sorted(n.format(NEW.isoformat()) for n in PAGES[page])
    for name, build_file in after.values():
        if name.endswith(".xlsx"):
            text = dated(build_file())
            assert f"数据截至：{fmt.date_zh(NEW)}" in text and fmt.date_zh(OLD) not in text, (name, text)
    assert not set(after) & set(before)  # none of the previous screen's files is offered any more
    for b in at.download_button:  # the lists' buttons say which scope and date their files hold
        if not b.label.startswith("下载通报"):
            assert b.help.endswith(f"：河北省，数据截至{fmt.date_zh(NEW)}（与本页数字一致）"), b.help

    # a previous run's button builds the file of the screen that drew it (the browser greys that screen and
    # takes no clicks on it while the new one computes)
    for name, build_file in before.values():
        if name.endswith(".xlsx"):
            assert f"数据截至：{fmt.date_zh(OLD)}" in dated(build_file()), name


def test_the_lists_rows_are_those_of_the_new_date(app):
    """The uncovered households' CSV after the change: the new date's list (H12 was covered on 2026-03-31 by
    the pairing that ended on 2026-06-15), in the page's order."""
    _, engine, files = app
    at = open_page("coverage", as_of=OLD.isoformat())
    ok(at.date_input(key="f_as_of").set_value(NEW).run())
    name, build_file = next(v for k, v in downloads(at, files).items() if v[0].startswith("uncovered_")
                            and v[0].endswith(".csv"))
    ids = [line.split(",")[0] for line in build_file().decode("utf-8-sig").splitlines()[1:]]
    want = list(pb.uncovered(engine, NEW, ALL, detail=True)["household_id"])
    assert ids == want and "H12" not in ids
    assert "H12" in list(pb.uncovered(engine, OLD, ALL, detail=True)["household_id"])  # the change mattered


def test_the_filter_bar_draws_the_screen_guard(app):
    at = open_page("cap", as_of=OLD.isoformat())
    guard = [h for h in at.get("html") if "bf-guard" in h.proto.body]
    assert len(guard) == 1 and guard[0].proto.unsafe_allow_javascript
    body = guard[0].proto.body
    assert "'Enter'" in body and "stDateInputField" in body  # Enter applies a typed date
    assert '[data-stale="true"]' in body and "pointer-events: none" in body  # stale screen greyed, not clickable
    today = filters.today().isoformat()
    assert f"日期超出范围：请输入 {filters.MIN_DATE.isoformat()} 至 {today}（今天）之间的日期。" in body
    field = at.date_input(key="f_as_of")
    assert "回车" in field.help
    assert field.value == OLD
