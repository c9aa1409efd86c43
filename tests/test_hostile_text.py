"""Hostile ledger text (issue 11, item 7): names of units, helpers, departments, positions, regions and
household heads, visit notes and URL parameters are data. Every page shows them as text: no Markdown
link, image, emphasis, :directive:, autolink or HTML tag made of a ledger value reaches a Markdown-rendering
element (title, caption, alert, metric, widget label, expander, st.markdown), and no plotly label, hover
text or title carries a tag made of one. Selectboxes and tables, which show plain text, show the value as
typed. Exports keep it verbatim (formula cells neutralised).

Every page runs under AppTest on SQLite and PostgreSQL (the ``engine`` fixture), drill-downs to the
township and to a unit's and a helper's page included, the map and the meeting screen too. The real
browser checks the same ledger in tests/test_browser.py (test_hostile_names_render_as_text)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import given, settings as hsettings, strategies as hs
from streamlit.testing.v1 import AppTest

from data_access import users
from data_access.export import to_csv_bytes, to_xlsx_bytes
from data_access.ledger import import_ledger
from ui import format as fmt

from .conftest import write_ledger
from .hostile_ledger import (CITY, CITY_NAME, COUNTY, COUNTY_NAME, DEPARTMENT, HEAD_NAME, HELPER_NAME, HOSTILE, POSITION,
                             TOWNSHIP, TOWNSHIP_NAME, UNIT_LINK, UNIT_TAGS, VILLAGE_NAME, ledger)
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

# element fields that hold plain text (the widget shows the string as it is): a selectbox's options
PLAIN_FIELDS = {"selectbox": {"options", "default", "raw_value", "raw_values", "value"}}
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
