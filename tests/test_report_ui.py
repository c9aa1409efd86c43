"""下载通报 on the dashboard (ui/report.py) and the Excel downloads' title rows (ui/widgets.problem_list), under
Streamlit's AppTest on the small page ledger (tests/pages_ledger.py): the buttons build the briefing of the page's
scope and date — the same figures as `bangfu metrics` — masked unless the user may unmask and asks to, and each
file handed out writes an audit row (written while the file is built: the click itself reruns nothing)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import streamlit as st
from docx import Document
from openpyxl import load_workbook
from streamlit.testing.v1 import AppTest

from data_access import audit, db, users
from data_access.cli import main

from .pages_ledger import ADMIN, ADMIN_PASSWORD, AS_OF, add_admin, build, login

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
D = AS_OF.isoformat()
CITY = "130100"
UNMASKER, UNMASKER_PW = "prov_unmask", "unmask-password-1"


@pytest.fixture(scope="module")
def ui_db(tmp_path_factory):
    url = build(tmp_path_factory.mktemp("report_ui"))
    add_admin(url)
    engine = db.make_engine(url)
    users.add_user(engine, UNMASKER, UNMASKER_PW, "province", can_unmask=True)
    yield url, engine
    engine.dispose()


@pytest.fixture
def app(ui_db, monkeypatch, deferred_files):
    """The app on the page ledger; every deferred download (the data callables the download buttons register)
    recorded by file name."""
    url, engine = ui_db
    monkeypatch.setenv("DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    files = deferred_files
    yield url, engine, files
    st.cache_data.clear()
    st.cache_resource.clear()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    return at


def open_page(page: str, username=ADMIN, password=ADMIN_PASSWORD, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    ok(at.run())
    ok(login(at, username, password))
    if page != "overview":
        ok(at.switch_page(f"pages/{page}.py").run())
    return at


def docx_text(data: bytes) -> str:
    doc = Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for t in doc.tables:
        parts += ["\t".join(c.text for c in row.cells) for row in t.rows]
    return "\n".join(parts)


def report_buttons(at: AppTest) -> dict:
    return {b.label: b for b in at.download_button if b.label.startswith("下载通报")}


def exports(engine, t0, username=ADMIN):
    rows = audit.query(engine, since=t0, username=username, event=audit.EXPORT)
    return rows[rows["object"].str.startswith("report")]


def city_row(capsys, url, metric: str) -> dict:
    assert main(["metrics", metric, "--by", "city", "--as-of", D, "--format", "json", "--db", url]) == 0
    doc = json.loads(capsys.readouterr().out)
    return next(g for g in doc["groups"] if g["code"] == CITY)


def test_overview_briefing_for_the_scope_and_date_is_audited(app, capsys):
    url, engine, files = app
    t0 = audit.utcnow()
    at = open_page("overview", as_of=D, region=CITY)
    assert set(report_buttons(at)) == {"下载通报（Word）", "下载通报（PDF）", "下载通报（Excel）"}
    name = f"通报_{CITY}_{D}.docx"
    assert name in files and f"通报_{CITY}_{D}.pdf" in files and f"通报_{CITY}_{D}.xlsx" in files
    assert exports(engine, t0).empty  # showing the buttons exports nothing; handing out a file does
    text = docx_text(files[name]())
    rows = exports(engine, t0)
    assert len(rows) == 1
    r = rows.iloc[0]
    assert r["object"] == "report:overview" and r["scope"] == f"region={CITY}"
    assert json.loads(r["detail"]) == {"rows": 6, "masked": True, "format": "docx"}
    assert text.startswith("关于石家庄市帮扶责任人工作情况的通报\n（数据截至2026年6月30日）")
    cov, cad = city_row(capsys, url, "coverage"), city_row(capsys, url, "cadence")
    rate = f"{cov['covered'] / cov['households'] * 100:.1f}%"
    assert f"石家庄市在帮贫困户{cov['households']:,}户，已结对{cov['covered']:,}户，结对覆盖率{rate}" in text
    assert f"在帮结对{cad['active_pairings']:,}个，超过规定间隔未入户走访的{cad['overdue']:,}个" in text
    assert "唐山市" not in text  # the other city of the ledger is out of this scope
    assert "冯**" in text and "冯十一" not in text  # the helper over the cap, masked
    # the PDF and Excel files of the same scope
    assert files[f"通报_{CITY}_{D}.pdf"]()[:5] == b"%PDF-"
    book = load_workbook(io.BytesIO(files[f"通报_{CITY}_{D}.xlsx"]()))
    assert book["概况"]["A2"].value == "范围：石家庄市　数据截至：2026年6月30日"
    assert [json.loads(d)["format"] for d in exports(engine, t0)["detail"]] == ["xlsx", "pdf", "docx"]  # newest first
    # the click reruns nothing (Streamlit 1.67 lost the file when a click's rerun ended before the file request)
    assert all(b.proto.ignore_rerun for b in report_buttons(at).values())


def test_rule_page_briefing_holds_that_rule(app):
    _, engine, files = app
    t0 = audit.utcnow()
    at = open_page("cadence", as_of=D)
    buttons = report_buttons(at)
    name = f"通报_province_{D}_cadence-photos.docx"
    assert name in files, list(files)
    text = docx_text(files[name]())
    assert "一、入户走访频次（第十二条（二））" in text and "二、走访照片记录（第十二条（三））" in text
    assert "结对覆盖与弱结对" not in text and "帮扶户数上限" not in text and "年度考核（" not in text
    assert set(buttons) == {"下载通报（Word）", "下载通报（PDF）", "下载通报（Excel）"}
    rows = exports(engine, t0)
    assert list(rows["object"]) == ["report:cadence"] and json.loads(rows.iloc[0]["detail"])["format"] == "docx"


def test_unmasked_briefing_only_when_asked_by_a_user_allowed_to(app):
    _, engine, files = app
    t0 = audit.utcnow()
    at = open_page("cap", UNMASKER, UNMASKER_PW, as_of=D)
    name = f"通报_province_{D}_cap.docx"
    assert "冯**" in docx_text(files[name]()) and "冯十一" not in docx_text(files[name]())
    toggles = [t for t in at.toggle if t.label == "显示完整个人信息" and "report" in str(t.key)]
    assert len(toggles) == 1
    ok(toggles[0].set_value(True).run())
    text = docx_text(files[name]())
    assert "冯十一" in text and "姓名已脱敏" not in text
    masked_flags = [json.loads(d)["masked"] for d in exports(engine, t0, UNMASKER)["detail"]]
    assert masked_flags == [False, True, True]  # newest first: two masked files, then the unmasked one
    unmask = audit.query(engine, since=t0, username=UNMASKER, event=audit.UNMASK)
    assert "report-cap" in set(unmask["object"])
    # a user without the permission has no toggle
    at = open_page("cap", as_of=D)
    assert not [t for t in at.toggle if "report" in str(t.key)]


def test_excel_downloads_carry_title_scope_date_and_the_screen_order(app, monkeypatch):
    """Every list's Excel file: title, scope and date rows above a frozen header, rows in the order on screen —
    also for a list longer than the page shows (the overdue list: longest gap first). CSV stays one header row."""
    from ui import widgets

    files = app[2]
    monkeypatch.setattr(widgets, "LIST_ROWS", 1)  # the overdue list is cut on the page: the download builds it whole
    at = open_page("cadence", as_of=D, region=CITY)
    xlsx = next(n for n in files if n.startswith("overdue_") and n.endswith(".xlsx"))
    ws = load_workbook(io.BytesIO(files[xlsx]())).active
    assert ws["A1"].value == "走访逾期结对清单"
    assert ws["A2"].value == "范围：石家庄市　数据截至：2026年6月30日"
    assert ws["A3"].value.startswith("来源：帮扶责任人监测看板") and "个人信息已脱敏" in ws["A3"].value
    assert ws.freeze_panes == "A6"
    header = [c.value for c in ws[5]]
    assert header[0] == "结对编号" and "间隔天数" in header
    gap = header.index("间隔天数")
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=6)]
    assert len(rows) >= 2
    gaps = [(-r[gap], r[0]) for r in rows]
    assert gaps == sorted(gaps)  # longest gap first, then pairing id: as on screen
    shown = next(df.value for df in at.dataframe if "结对编号" in df.value.columns)
    assert list(shown["结对编号"]) == [r[0] for r in rows][: len(shown)]
    csv = next(n for n in files if n.startswith("overdue_") and n.endswith(".csv"))
    assert files[csv]().decode("utf-8-sig").splitlines()[0].startswith("结对编号,")
