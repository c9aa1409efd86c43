"""Hostile ledger text (issue 11, item 7): names of units, helpers, departments, positions, regions and
household heads, visit notes and URL parameters are data. Every page shows them as text: no Markdown
link, image, emphasis, :directive:, autolink or HTML tag made of a ledger value reaches a Markdown-rendering
element (title, caption, alert, metric, widget label, expander, st.markdown), and no plotly label, hover
text or title carries a tag made of one. Selectboxes and tables, which show plain text, show the value as
typed. Exports keep it verbatim (formula cells neutralised).

Every page runs under AppTest on SQLite and PostgreSQL (the ``engine`` fixture), drill-downs to the
township and to a unit's and a helper's page included, the map and the meeting screen too; the 督办整改 page
(an order's note and the unit's response as typed text), the audit page (names typed into the login form) and
its CSV, and the 通报 files of `bangfu report` (docx, pdf, xlsx). The real
browser checks the same ledger in tests/test_browser.py (test_hostile_names_render_as_text)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import given, settings as hsettings, strategies as hs
from streamlit.testing.v1 import AppTest

from data_access import settings as data_settings
from data_access import supervision as sv
from data_access import users
from data_access.export import to_csv_bytes, to_xlsx_bytes
from data_access.ledger import import_ledger
from data_access.scope import Scope
from ui import format as fmt

from .conftest import write_ledger
from .hostile_ledger import (CITY, CITY_NAME, COUNTY, COUNTY_NAME, DEPARTMENT, HEAD_NAME, HELPER_NAME, HOSTILE, NOTE,
                             POSITION, TOWNSHIP, TOWNSHIP_NAME, UNIT_LINK, UNIT_TAGS, VILLAGE_NAME, ledger)
from .pages_ledger import AS_OF

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
D = AS_OF.isoformat()
PW = "hostile-password-1"

# markup that must not occur unescaped in a Markdown-rendering element (after the escaped characters
# are blanked out, see live_markup) ...
MD_MARKUP = ["](", "![", "<a", "<img", "<b>", "://", "www.", "@evil", ":red[", ":material/", ":streamlit:",
             "**粗", "`code`", "$x$", "->", "# 建北", "- ["]
# ... and in any string of a plotly figure (plotly reads tags and entities in all its text)
PLOT_MARKUP = ["<a", "<img", "<b>粗", "&lt;i&gt;"]


@pytest.fixture
def hostile_url(engine, db_url, tmp_path, monkeypatch):
    """The hostile ledger in the test database (SQLite, then PostgreSQL) with a province user who may
    unmask, a unit user of U3 and a city user; the app reads it through DATABASE_URL."""
    import_ledger(engine, write_ledger(tmp_path / "ledger", ledger()))
    users.add_user(engine, "prov", PW, "province", can_unmask=True, display_name="[管理员](http://evil.example/dn)")
    users.add_user(engine, "unit_u3", PW, "unit", unit="U3")
    users.add_user(engine, "city_sjz", PW, "city", region=CITY)
    monkeypatch.setenv("DATABASE_URL", db_url)
    _clear_caches()
    yield db_url
    _clear_caches()


def _clear_caches():
    st.cache_data.clear()
    st.cache_resource.clear()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    return at


def login(username: str = "prov", **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    ok(at.run())
    at.text_input(key="login_user").input(username)
    at.text_input(key="login_password").input(PW)
    return ok(at.button[0].click().run())


def goto(at: AppTest, page: str, **params) -> AppTest:
    for k in ("region", "unit", "helper", "metric", "view"):
        if k in at.query_params:
            del at.query_params[k]
    for k, v in params.items():
        at.query_params[k] = v
    return ok(at.switch_page(f"pages/{page}.py").run())


# ------------------------------------------------------------------------------------------- scanning

# element fields that hold plain text (the widget shows the string as it is): a selectbox's options, st.text
# (督办说明 and 整改说明), a text area's content (the unit's response form)
PLAIN_FIELDS = {"selectbox": {"options", "default", "raw_value", "raw_values", "value"}, "text": {"body"},
                "text_area": {"default", "value"}}
OWN_CHECK = {"plotly_chart", "arrow_data_frame", "arrow_table", "json"}  # plotly: checked below; tables: text


def _nodes(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def _strings(msg):
    for field, value in msg.ListFields():
        for v in (value if field.is_repeated else [value]):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                yield from _strings(v)
            elif field.type == FieldDescriptor.TYPE_STRING:
                yield field.name, v


def markdown_sources(at: AppTest) -> list[tuple[str, str]]:
    """(kind, string) of every string field of every element and block (labels of expanders and tabs
    included) that Streamlit may render as Markdown: all but plain-text fields, charts and tables. The
    kind is "html" for st.html and for st.markdown with unsafe_allow_html (the meeting screen's HTML)."""
    out = []
    for node in _nodes(at._tree):
        proto, kind = getattr(node, "proto", None), getattr(node, "type", "")
        if proto is None or kind in OWN_CHECK:
            continue
        if kind == "html" or getattr(proto, "allow_html", False):
            kind = "html"
        plain = PLAIN_FIELDS.get(kind, set()) | {"id", "form_id", "icon"}  # icons: our own :material/…:
        out += [(kind, s) for name, s in _strings(proto) if name not in plain]
    return out


def live_markup(kind: str, source: str) -> list[str]:
    """The markup that occurs in `source` outside backslash escapes (an escaped character is text: it is
    blanked out before looking). In HTML (kind "html") the tags, and a blank line (it would end the HTML
    block and start Markdown) and ":material/" (Streamlit rewrites it in the whole source, HTML included)."""
    if kind == "html":
        return [m for m in PLOT_MARKUP + ["\n\n", ":material/"] if m in source]
    bare = re.sub(r"\\[!-/:-@\[-`{-~]", "\x00", source)
    return [m for m in MD_MARKUP if m in bare]


def chart_strings(at: AppTest) -> list[str]:
    out = []

    def walk(x):
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, dict):
            for k, v in x.items():
                if k != "geojson":
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for chart in at.get("plotly_chart"):
        walk(json.loads(chart.proto.spec))
    return out


def check(at: AppTest, shown: list[str] = (), charted: list[str] = ()) -> None:
    """No hostile markup is live on the page; `shown` values appear (as text) in a Markdown element and
    `charted` ones in a chart, so that the scan is not vacuous."""
    ok(at)
    sources = markdown_sources(at)
    bad = [(kind, s, live_markup(kind, s)) for kind, s in sources if live_markup(kind, s)]
    assert not bad, bad
    texts = "\n".join(s for _, s in sources)
    for value in shown:
        assert fmt.md_text(value) in texts, (value, texts)
    strings = chart_strings(at)
    bad = [(s, m) for s in strings for m in PLOT_MARKUP if m in s]
    assert not bad, bad
    for value in charted:
        assert any(fmt.html_text(value) in s for s in strings), (value, strings)


# ------------------------------------------------------------------------------------------- pages


def test_every_page_shows_hostile_names_as_text(hostile_url):
    at = login(as_of=D)
    check(at, charted=[CITY_NAME])  # the overview: ranking of the cities
    # the unit's and the region's selectboxes show plain text: the names as typed, no backslashes
    assert UNIT_LINK in at.selectbox(key="f_unit").options and CITY_NAME in at.selectbox(key="f_city").options

    for page in ("coverage", "cap", "cadence", "ratings", "units", "map"):
        check(goto(at, page))
    check(goto(at, "cap"), charted=[UNIT_LINK, UNIT_TAGS])  # the units with the most helpers over the cap
    check(goto(at, "cadence"), charted=[UNIT_LINK])

    # drill down: the city (scope caption, its counties' charts), the county, the township (and its villages)
    check(goto(at, "overview", region=CITY), shown=[CITY_NAME], charted=[COUNTY_NAME])
    check(goto(at, "coverage", region=CITY), shown=[CITY_NAME], charted=[COUNTY_NAME])
    check(goto(at, "coverage", region=COUNTY), shown=[COUNTY_NAME], charted=[TOWNSHIP_NAME])
    check(goto(at, "cadence", region=TOWNSHIP), shown=[TOWNSHIP_NAME], charted=[VILLAGE_NAME])
    check(goto(at, "map", region=CITY), shown=[CITY_NAME], charted=[CITY_NAME, COUNTY_NAME])
    check(goto(at, "map", view="city"), charted=[CITY_NAME])
    check(goto(at, "map", region=COUNTY), charted=[COUNTY_NAME])  # its title names the county

    # ratings by sending unit: the grade-share bars name the units
    at = goto(at, "ratings")
    ok(at.segmented_control[0].set_value("unit").run())
    check(at, charted=[UNIT_LINK])

    # a unit scope: the coverage caption names the unit
    check(goto(at, "coverage", unit="U3"), shown=[UNIT_LINK])
    check(goto(at, "meeting", region=CITY), charted=[COUNTY_NAME])
    check(goto(at, "meeting", region=TOWNSHIP))  # a blank line in a name must not end the screen's HTML block
    check(goto(at, "meeting", region=CITY, unit="U3"))
    meeting = "\n".join(s for _, s in markdown_sources(at))
    assert fmt.html_text(f"{CITY_NAME} · {UNIT_LINK}") in meeting  # the meeting's HTML: escaped, on one line


def test_unit_and_helper_pages_show_hostile_names_as_text(hostile_url):
    at = login(as_of=D)
    check(goto(at, "units", unit="U3"), shown=[UNIT_LINK, COUNTY_NAME])  # title, 所属区划
    check(goto(at, "units", unit="U4"), shown=[UNIT_TAGS])
    # the helper's page with the names unmasked: title, unit, department, position; the timeline's hover
    at = goto(at, "units", helper="G")
    check(at, shown=[UNIT_LINK, DEPARTMENT, POSITION])
    ok(at.toggle[0].set_value(True).run())
    check(at, shown=[HELPER_NAME, UNIT_LINK, DEPARTMENT, POSITION], charted=[HEAD_NAME])
    assert at.title[0].value == f"帮扶责任人：{fmt.md_text(HELPER_NAME)}（G）"
    # visit notes are not shown on any page
    for s in [s for _, s in markdown_sources(at)] + chart_strings(at):
        assert "[备注]" not in s and fmt.md_text("[备注]") not in s


def test_sidebar_and_scope_of_unit_and_city_users_as_text(hostile_url):
    at = login("unit_u3", as_of=D)
    check(at, shown=[UNIT_LINK])  # 当前用户：… · 单位 · <the unit's name>
    check(goto(at, "units", unit="U3"), shown=[UNIT_LINK])
    at = login("city_sjz", as_of=D)
    check(at, shown=[CITY_NAME])
    check(goto(at, "units", unit="U3"), shown=[CITY_NAME])  # 您有权查看的范围（<the city>）
    check(login(as_of=D), shown=["[管理员](http://evil.example/dn)"])  # a display name too


def test_hostile_url_parameters_and_notices_as_text(hostile_url):
    at = login(as_of=D, helper="[x](http://evil.example/q)", unit='<img src="http://evil.example/q.png">')
    check(at, shown=["[x](http://evil.example/q)", '<img src="http://evil.example/q.png">'])
    check(goto(at, "map", metric="![m](http://evil.example/m.png)"), shown=["![m](http://evil.example/m.png)"])
    at = goto(at, "meeting", refresh="[r](http://evil.example/r)", unit="<a href='http://evil.example/r'>")
    check(at)
    # a message set by a callback (a drill into a summary row quotes the row's name)
    at.session_state["_bf_notice"] = f"「{UNIT_LINK}」这一行汇总的是上级派出单位"
    check(goto(at, "overview"), shown=[f"「{UNIT_LINK}」"])


# ------------------------------------------------------------------------------------------- 督办整改 and audit

ISSUED = AS_OF - dt.timedelta(days=29)  # 2026-06-01: the order is overdue on the pages' date (deadline 06-15)
ORDER_NOTE = f"{NOTE}\n{UNIT_TAGS}"  # the issuer's note (督办说明): typed text
RESPONSE = f"{UNIT_LINK}\n{UNIT_TAGS}\n\n# 已整改\n- [列表](http://evil.example/r)"  # the unit's 整改说明


def texts(at: AppTest) -> list[str]:
    """The strings of st.text elements (shown as typed: no Markdown, no HTML)."""
    return [t.proto.body for t in at.get("text")]


def frames(at: AppTest) -> list[pd.DataFrame]:
    """The tables (st.dataframe) of the page, in page order (plain text: the values as typed)."""
    return [e.value for e in at.dataframe]


def test_supervision_page_shows_hostile_names_notes_and_responses_as_text(hostile_url, engine):
    """The 督办整改 page: an order to the unit with the hostile name, whose note and the unit's response are
    hostile text, shown to the unit (which writes the response through the page's form) and to the province
    (orders, the order's items, the ranking chart of overdue units, the tables by unit and county)."""
    prov = users.get_user(engine, "prov")
    order = sv.issue(engine, "overdue", "U3", ISSUED + dt.timedelta(days=14), as_of=ISSUED, note=ORDER_NOTE, user=prov)
    assert order["items"] >= 1
    oid = order["order_id"]
    # and one to the unit named with tags (plotly reads tags): its household is still uncovered on the pages' date
    other = sv.issue(engine, "uncovered", "U4", ISSUED + dt.timedelta(days=14), as_of=ISSUED, note=NOTE, user=prov)
    assert other["items"] >= 1

    # the unit's user opens the order (its first open one) and writes the response in the page's form
    at = goto(login("unit_u3", as_of=D), "supervision")
    assert at.selectbox(key="sv-pick").value == oid
    check(at, shown=[UNIT_LINK])  # the order's caption: 派出单位：<the unit's name>
    assert f"督办说明：{ORDER_NOTE}" in texts(at)
    at.text_area(key=f"sv-response-{oid}").input(RESPONSE)
    ok(at.button[[b.label for b in at.button].index("提交整改说明")].click().run())
    assert any("整改说明已提交" in s.value for s in at.success), [e.value for e in at.error]
    check(at, shown=[UNIT_LINK])
    assert RESPONSE in texts(at) and f"督办说明：{ORDER_NOTE}" in texts(at)
    assert list(sv.orders(engine, AS_OF, Scope(unit="U3"))["response"]) == [RESPONSE]  # stored as typed

    # the province: the order in the tables (plain text, as typed), its items, note and response, the chart
    at = goto(login(as_of=D), "supervision")
    check(at, charted=[UNIT_LINK, UNIT_TAGS])  # 逾期未整改事项最多的派出单位
    orders, units, counties, accountable = frames(at)  # 督办单, 各派出单位, 各县（市、区）, 责任追究
    assert "督办单号" in orders and sorted(orders["派出单位"]) == sorted([UNIT_LINK, UNIT_TAGS])
    assert "单位编号" in units and sorted(units["派出单位"]) == sorted([UNIT_LINK, UNIT_TAGS])
    assert "单位编号" not in counties and COUNTY_NAME in list(counties["所在地区"])
    assert sorted(accountable["派出单位"]) == sorted([UNIT_LINK, UNIT_TAGS])
    ok(at.selectbox(key="sv-pick").set_value(oid).run())
    check(at, shown=[UNIT_LINK], charted=[UNIT_LINK, UNIT_TAGS])
    assert texts(at) == [f"督办说明：{ORDER_NOTE}", RESPONSE]
    ok(at.selectbox(key="sv-pick").set_value(other["order_id"]).run())
    check(at, shown=[UNIT_TAGS], charted=[UNIT_TAGS])
    # an order without a response says so (it showed "nan" while another order in the scope had a response)
    assert texts(at) == [f"督办说明：{NOTE}"] and any("尚未填写整改说明" in c.value for c in at.caption)
    assert sv.orders(engine, AS_OF).set_index("order_id").loc[other["order_id"], "response"] is None


FORMULA = '=HYPERLINK("http://evil.example/x","点我")'  # typed where a username goes: a formula in a CSV


def test_audit_page_and_its_csv_show_typed_hostile_names_as_text(hostile_url, deferred_files):
    """Usernames of accounts are validated, but the login form takes any text, and a failed sign-in is audited
    with the name as typed (user and object columns): the audit page shows it as text and its CSV keeps it
    verbatim, with a formula-looking name neutralised."""
    typed = [UNIT_LINK, UNIT_TAGS, CITY_NAME, NOTE, FORMULA]
    at = ok(AppTest.from_file(APP, default_timeout=60).run())
    for name in typed:
        at.text_input(key="login_user").input(name)
        at.text_input(key="login_password").input("wrong-password-1")
        ok(at.button[0].click().run())
        assert at.text_input(key="login_user")  # still the login form
    at = goto(login(as_of=D), "audit")
    check(at)
    (shown,) = frames(at)
    failed = shown[shown["事件"] == "登录失败"]
    assert set(typed) <= set(failed["用户"]) and set(typed) <= set(failed["对象"]), failed
    (button,) = [b for b in at.download_button if b.label == "下载 CSV"]
    (name,) = [n for n in deferred_files if str(n).startswith("audit_") and str(n).endswith(".csv")]
    import csv

    rows = list(csv.DictReader(io.StringIO(deferred_files[name]().decode("utf-8-sig"), newline="")))
    users_in_csv = {r["用户"] for r in rows if r["事件"] == "登录失败"}
    assert set(typed[:-1]) <= users_in_csv and "'" + FORMULA in users_in_csv and FORMULA not in users_in_csv
    assert not [r for r in rows for v in r.values() if v and v[0] in "=+-@"]  # no cell starts like a formula


# ------------------------------------------------------------------------------------------- the 通报 files

# in the briefing of the city: the city's, the county's and the units' names, a helper's department; a unit whose
# name is a formula (the city's education bureau, U2)
BRIEFED = [CITY_NAME, COUNTY_NAME, UNIT_LINK, DEPARTMENT, FORMULA]
HTML_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "colgroup", "col",
             "thead", "tbody", "tr", "th", "td", "figure", "img", "figcaption"}


def _pdf_objects(data: bytes) -> bytes:
    """A PDF's bytes with every Flate stream inflated (annotations may sit in compressed object streams)."""
    import zlib

    out = [data]
    for mo in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(mo.group(1)))
        except zlib.error:
            pass
    return b"\n".join(out)


def _squeeze(s: str) -> str:
    return re.sub(r"\s+", "", s)


@pytest.mark.skipif(not shutil.which("pdftotext") and not data_settings.ci(),
                    reason="poppler-utils is not installed (apt-get install -y poppler-utils)")
def test_briefing_files_show_hostile_names_as_text(engine, db_url, tmp_path, capsys):
    """`bangfu report` for a city holding the hostile units and regions, in docx, pdf and xlsx: every hostile
    name is in the file as typed; no link, image or HTML element is made of one (docx: no hyperlink, field or
    external relationship; pdf: its HTML has only the briefing's own elements, no link annotation; xlsx: no
    formula, no hyperlink, a formula-looking name neutralised with a leading apostrophe)."""
    from docx import Document
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from openpyxl import load_workbook

    from data_access import reports
    from data_access.cli import main

    t = ledger()
    for u in t["units"]:
        if u["unit_id"] == "U2":
            u["name"] = FORMULA
    import_ledger(engine, write_ledger(tmp_path / "ledger", t))
    sv.issue(engine, "overdue", "U3", AS_OF + dt.timedelta(days=14), as_of=AS_OF, note=NOTE)  # the 督办 section
    files = {}
    for kind in ("docx", "pdf", "xlsx"):
        files[kind] = tmp_path / f"briefing.{kind}"
        code = main(["report", "--as-of", "2026-07-31", "--region", CITY, "--format", kind, "--output",
                     str(files[kind]), "--db", db_url])
        assert code == 0, capsys.readouterr().err

    # Word: the names in paragraphs and cells as typed; no hyperlink, field or external relationship anywhere
    doc = Document(str(files["docx"]))
    cells = [c.text for tb in doc.tables for row in tb.rows for c in row.cells]
    words = "\n".join([p.text for p in doc.paragraphs] + cells)
    for name in BRIEFED:
        assert name in words, name
    assert UNIT_LINK in cells and COUNTY_NAME in cells and FORMULA in cells  # a table cell holds the name alone
    rels = [r for part in doc.part.package.iter_parts() for r in part.rels.values()]
    assert not [r for r in rels if r.reltype == RT.HYPERLINK or r.is_external], [r.reltype for r in rels]
    assert [r for r in rels if r.reltype == RT.IMAGE]  # the charts: the scan saw the images
    for part in doc.part.package.iter_parts():
        if part.partname.endswith(".xml"):
            xml = part.blob.decode("utf-8", "replace")
            assert "<w:hyperlink" not in xml, part.partname
            fields = re.findall(r"<w:instrText[^>]*>([^<]*)</w:instrText>", xml) + re.findall(r'w:instr="([^"]*)"', xml)
            assert all(f.split() == ["PAGE"] for f in fields), (part.partname, fields)  # the page numbers only

    # PDF: the HTML it is made from has only the briefing's own elements (images: the embedded charts)
    briefing = reports.build(engine, dt.date(2026, 7, 31), CITY)
    from html.parser import HTMLParser

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.srcs, self.text = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.srcs += [v for k, v in attrs if k in ("src", "href")]

        def handle_data(self, data):
            self.text.append(data)

    html_doc = reports.pdf.to_html(briefing)
    parsed = Tags()
    parsed.feed(html_doc)
    assert set(parsed.tags) <= HTML_TAGS, set(parsed.tags) - HTML_TAGS
    assert parsed.srcs and all(s.startswith("data:image/png;base64,") for s in parsed.srcs), parsed.srcs
    page_text = "".join(parsed.text)
    for name in BRIEFED:
        assert name in page_text, name
    raw = files["pdf"].read_bytes()
    inflated = _pdf_objects(raw)
    assert b"/URI" not in inflated and b"/Link" not in inflated  # no link annotation
    pdf_text = _squeeze(subprocess.run(["pdftotext", str(files["pdf"]), "-"], capture_output=True, check=True,
                                       text=True).stdout)
    for name in BRIEFED:
        assert _squeeze(name) in pdf_text, name

    # Excel: text cells only, the names as typed, the formula-looking one neutralised
    book = load_workbook(files["xlsx"])
    values = []
    for ws in book:
        assert not ws._hyperlinks, ws.title
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f" and c.hyperlink is None, (ws.title, c.coordinate, c.value)
                if isinstance(c.value, str):
                    values.append(c.value)
    for name in BRIEFED[:-1]:
        assert name in values, name
    assert "'" + FORMULA in values and FORMULA not in values
    assert not [v for v in values if v[:1] in ("=", "+", "-", "@")], [v for v in values if v[:1] in "=+-@"]


# ------------------------------------------------------------------------------------------- the escaping


PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


@hsettings(max_examples=300, deadline=None)
@given(hs.text(alphabet=hs.sampled_from(list(PUNCT) + list("ahtpsw:/.@ 中文\n\r\t-><=~")), max_size=40))
def test_md_text_escapes_every_markdown_character_and_keeps_the_text(value):
    out = fmt.md_text(value)
    i, kept = 0, []
    while i < len(out):  # every ASCII punctuation character is escaped; the rest is the text
        if out[i] == "\\":
            assert i + 1 < len(out) and out[i + 1] in PUNCT, out
            kept.append(out[i + 1])
            i += 2
            continue
        assert out[i] not in PUNCT and out[i] not in "\r\n", out
        kept.append(out[i])
        i += 1
    text = "".join(kept)
    assert text.replace("\u2060", "") == re.sub(r"\r\n?|\n", " ", value)
    # nothing Streamlit rewrites in plain text after the escapes: autolinks, :streamlit:, arrows
    for seq in ("://", "www.", ":streamlit:", "->", "<-", "--", ">=", "<=", "~="):
        assert seq not in text.lower(), (seq, text)
    assert all(text[k + 1:k + 2] == "\u2060" for k, c in enumerate(text) if c in ":@"), text  # a@b.c, mailto:


def test_html_text_escapes_tags_and_entities():
    assert fmt.html_text('<a href="x">&lt;b&gt;</a>\n2') == "&lt;a href=&#34;x&#34;&gt;&amp;lt;b&amp;gt;&lt;/a&gt; 2"
    assert fmt.html_text(":material/home:") == "&#58;material/home&#58;"  # Streamlit rewrites ":material/" 
    assert fmt.html_text("石家庄市") == "石家庄市" and fmt.md_text("石家庄市") == "石家庄市"


def test_download_file_names_keep_only_safe_characters():
    assert fmt.safe_stem('overdue_2026-06-30_U<a>/../"x"') == "overdue_2026-06-30_U_a_.._x"
    assert fmt.safe_stem("uncovered_2026-06-30_130102_长安") == "uncovered_2026-06-30_130102_长安"


# ------------------------------------------------------------------------------------------- exports


def test_exports_keep_hostile_text_verbatim_and_neutralise_formulas():
    """CSV and Excel files get the ledger text as typed (no Markdown or HTML escaping) and every cell that
    starts like a formula (= + - @ tab CR) with a leading apostrophe. A line break inside a cell stays in
    the cell (quoted): a bare CR written unquoted would start a new row in Excel, and "=…" after it a formula."""
    import csv

    from openpyxl import load_workbook

    formulas = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"]
    inner = ["甲\r=HYPERLINK(\"http://evil.example/\")", "乙\n=1+1", "丙\r\n@SUM(A1)"]
    df = pd.DataFrame({"name": HOSTILE + formulas + inner + ["张三"]})
    want = HOSTILE + ["'" + f for f in formulas] + inner + ["张三"]
    text = to_csv_bytes(df).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["name"]] + [[w] for w in want]
    book = load_workbook(io.BytesIO(to_xlsx_bytes(df)))
    cells = [c for (c,) in book.active.iter_rows(min_row=2)]
    # (an XML parser may read a stored CR back as a line feed)
    def lf(v):
        return re.sub(r"\r\n?", "\n", v)

    assert [lf(c.value) for c in cells] == [lf(w) for w in want]
    assert all(c.data_type == "s" for c in cells)
