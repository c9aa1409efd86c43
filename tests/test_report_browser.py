"""Issue 12 as a new user tries it, in headless Chromium on the real server: sign in, open the overview, pick
石家庄市 in the filter bar and type the last month-end before today, open 下载通报 and download the Word and the PDF
file. Read back (python-docx and the docx's XML, pdftotext, pdffonts, pdfimages), on SQLite and on PostgreSQL:

* the title and the 数据截至 line, and the summary's key figures and their change since the month-end before, equal
  what `bangfu metrics … --by city --format json` prints for 130100 on that date (and the one before), and so do
  the overview's tiles the user saw;
* the PDF holds the same sentences and every one of its fonts is embedded;
* the charts are in both files: a picture in the Word file for every rule section's figure caption, with as many
  PNGs under word/media, and at least as many images in the PDF;
* the Word file names its Noto fonts with a fallback that every Chinese Windows/WPS PC has (word/fontTable.xml:
  altName 宋体 for the serif, 黑体 for the sans, GB2312 charset), so no font is missing there;
* one export audit row per file, with its format, the scope and masking.

Screenshots: screenshots/report_browser_<db>_*.png (the overview with the popover open) and page 1 of the
downloaded PDF (pdftoppm). Run: ``.venv/bin/pytest -m browser -s tests/test_report_browser.py``.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from docx import Document
from lxml import etree
from sqlalchemy import create_engine, text

from data_access import audit, settings, users
from data_access.cli import main
from data_access.dates import previous_month_end
from ui import format as fmt

from .conftest import PG_URL, _pg_test_database, streamlit_server
from .test_browser import (QUIET_JS, TIMEOUT, VIEWPORT, _select_box, assert_clean, assert_metrics, screenshot, settle,
                           wait_ready)
from .test_date_control_browser import type_date
from .test_reports import HEADINGS, count_phrase, derive, rate_phrase

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which("pdftotext") and not settings.ci(),
                       reason="poppler-utils is not installed (apt-get install -y poppler-utils)"),
]

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
CITY, CITY_NAME = "130100", "石家庄市"
USER, PW = "shengban", "briefing-pass-1"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {"w": W, "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
      "wp": "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
      "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships"}
# fonts a Chinese Windows (and WPS on it) has: the document's fonts must be among them or fall back to them
WINDOWS_ZH = {"宋体", "SimSun", "黑体", "SimHei"}
WINDOWS = WINDOWS_ZH | {"Times New Roman", "Arial", "Calibri", "Cambria", "Symbol", "Courier New", "Courier"}


# ------------------------------------------------------------------------------------------- the database


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    """A database with demo data of 3,000 households as of today and one province user (so the dashboard asks
    for a login and every export is audited): SQLite, then a database of its own on the PostgreSQL server at
    TEST_DATABASE_URL. Yields (URL, engine)."""
    from data_access.db import make_engine, upgrade
    from data_access.demo import generate

    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'briefing.sqlite'}"
    else:
        if not PG_URL:
            pytest.skip("TEST_DATABASE_URL is not set (.ci/run sets it)")
        pg_url, name, base = _pg_test_database()
        url, drop = pg_url.render_as_string(hide_password=False), (name, base)
    engine = make_engine(url)
    try:
        upgrade(engine)
        generate(engine, households=3000, seed=1)
        users.add_user(engine, USER, PW, "province", display_name="省帮扶办")
        yield url, engine
    finally:
        engine.dispose()
        if drop:
            admin = create_engine(drop[1], isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{drop[0]}" WITH (FORCE)'))
            admin.dispose()


# ------------------------------------------------------------------------------------------- the oracle


def city_figures(capsys, db: str, day, year: int) -> dict[str, dict]:
    """`bangfu metrics METRIC --by city --as-of day --format json` for 石家庄市, per metric, with the briefing's
    rates (tests/test_reports.derive)."""
    out = {}
    for metric in ("coverage", "cap", "cadence", "ratings"):
        extra = ["--year", str(year)] if metric == "ratings" else []
        code = main(["metrics", metric, "--by", "city", "--as-of", day.isoformat(), "--format", "json", "--db", db,
                     *extra])
        stdout, err = capsys.readouterr()
        assert code == 0, err
        row = next(g for g in json.loads(stdout)["groups"] if g["code"] == CITY)
        out[metric] = derive(metric, row)
    return out


def summary_phrases(now: dict, before: dict, prev, year: int) -> list[str]:
    """The summary's sentences with the key figures and their change since the month-end before."""
    cov, cap, cad, rt = (now[k] for k in ("coverage", "cap", "cadence", "ratings"))
    b = before
    label = fmt.date_zh(prev)

    def pct(x):
        return f"{x * 100:.1f}%"

    return [
        f"关于{CITY_NAME}帮扶责任人工作情况的通报",
        (f"{CITY_NAME}在帮贫困户{cov['households']:,}户，已结对{cov['covered']:,}户，结对覆盖率{pct(cov['rate'])}"
         f"（{rate_phrase(cov['rate'], b['coverage']['rate'], label)}）"),
        f"未覆盖{cov['uncovered']:,}户（{count_phrase(cov['uncovered'], b['coverage']['uncovered'], '户', label)}）",
        f"弱结对{cov['weak']:,}户",
        (f"在帮责任人{cap['helpers']:,}名，帮扶超过5户的{cap['violators']:,}名"
         f"（{count_phrase(cap['violators'], b['cap']['violators'], '名', label)}），占{pct(cap['rate'])}，"
         f"超出户数合计{cap['excess']:,}户"),
        (f"在帮结对{cad['active_pairings']:,}个，超过规定间隔未入户走访的{cad['overdue']:,}个"
         f"（{count_phrase(cad['overdue'], b['cadence']['overdue'], '个', label)}），走访合规率{pct(cad['rate'])}"
         f"（{rate_phrase(cad['rate'], b['cadence']['rate'], label)}）"),
        (f"{year}年度已考核责任人{rt['rated']:,}名，其中优秀{rt['excellent']:,}名、合格{rt['qualified']:,}名、"
         f"不合格{rt['unqualified']:,}名；有在帮结对但未考核的{rt['missing']:,}名"
         f"（{count_phrase(rt['missing'], b['ratings']['missing'], '名', f'{year - 1}年度')}）"),
    ]


# ------------------------------------------------------------------------------------------- reading the files


def docx_paragraphs(data: bytes) -> list[str]:
    return [p.text for p in Document(io.BytesIO(data)).paragraphs]


def docx_charts(data: bytes) -> tuple[dict[str, int], int, int]:
    """({rule heading: figure captions in its section}, pictures drawn inline in the body, PNG files in
    word/media), read from the package's XML."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        body = etree.fromstring(z.read("word/document.xml")).find("w:body", NS)
        rels = etree.fromstring(z.read("word/_rels/document.xml.rels"))
        targets = {r.get("Id"): r.get("Target") for r in rels}
        media = {n: z.read(n) for n in z.namelist() if n.startswith("word/media/")}
    pngs = sum(1 for blob in media.values() if blob.startswith(b"\x89PNG\r\n\x1a\n") and len(blob) > 5_000)
    captions: dict[str, int] = {}
    section, pictures, last_picture = None, 0, False
    for p in body.iterfind("w:p", NS):
        txt = "".join(t.text or "" for t in p.iterfind(".//w:t", NS))
        blips = p.findall(".//wp:inline//a:blip", NS)
        # a picture counts when its relationship points at a PNG of the package
        drawn = [b for b in blips if "word/" + targets.get(b.get(f"{{{NS['r']}}}embed"), "?") in media]
        pictures += len(drawn)
        if txt in HEADINGS.values():
            section = txt
        elif re.match(r"^[一二三四五六七八九十]、", txt) or txt == "附件":
            section = None
        if re.match(r"^图\d+\u3000", txt) and section:
            assert last_picture, f"the caption {txt!r} has no picture above it"
            captions[section] = captions.get(section, 0) + 1
        if txt or drawn:
            last_picture = bool(drawn)
    return captions, pictures, pngs


def docx_fonts(data: bytes) -> tuple[set[str], dict[str, dict]]:
    """(every font named by a w:rFonts of the body, the footers and the styles; the font table: name ->
    {altName, charset, family})."""
    named: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for part in [n for n in z.namelist() if re.fullmatch(r"word/(document|styles|footer\d*|header\d*)\.xml", n)]:
            for rf in etree.fromstring(z.read(part)).iter(f"{{{W}}}rFonts"):
                named |= {rf.get(f"{{{W}}}{a}") for a in ("ascii", "hAnsi", "eastAsia", "cs")} - {None}
        table = {}
        for font in etree.fromstring(z.read("word/fontTable.xml")).iterfind("w:font", NS):
            table[font.get(f"{{{W}}}name")] = {
                tag: (el.get(f"{{{W}}}val") if (el := font.find(f"w:{tag}", NS)) is not None else None)
                for tag in ("altName", "charset", "family")}
    return named, table


def assert_no_missing_font_on_windows(data: bytes) -> None:
    """Every font the Word file names is one a Chinese Windows has, or its font-table entry falls back to one
    (w:altName, tried before metric substitution) and declares the GB2312 charset (86); the serif falls back to
    宋体, the sans to 黑体, and the Noto names stay (this machine has them)."""
    named, table = docx_fonts(data)
    assert {"Noto Serif CJK SC", "Noto Sans CJK SC"} <= named, named
    for name in named - WINDOWS:
        entry = table.get(name)
        assert entry, f"{name} is named by the document but not in word/fontTable.xml"
        alternates = {a.strip() for a in (entry["altName"] or "").split(",") if a.strip()}
        assert alternates & WINDOWS_ZH, f"{name}: no fallback font of a Chinese Windows ({entry})"
        assert entry["charset"] == "86", f"{name}: charset {entry['charset']}, not GB2312 (86)"
    assert table["Noto Serif CJK SC"]["altName"] == "宋体" and table["Noto Serif CJK SC"]["family"] == "roman"
    assert table["Noto Sans CJK SC"]["altName"] == "黑体" and table["Noto Sans CJK SC"]["family"] == "swiss"


def pdf_tool(*argv) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout


def assert_fonts_embedded(path: Path) -> list[str]:
    """pdffonts: at least one font, and every one embedded ('emb yes')."""
    rows = pdf_tool("pdffonts", str(path)).splitlines()[2:]
    assert rows, "pdffonts lists no font"
    # columns: name, type, encoding, emb, sub, uni, object ID (two numbers); type may hold blanks
    not_embedded = [r for r in rows if r.split()[-5] != "yes"]
    assert not not_embedded, f"fonts not embedded: {not_embedded}"
    return rows


def pdf_images(path: Path) -> int:
    """pdfimages -list: the images drawn in the PDF (soft masks not counted)."""
    rows = pdf_tool("pdfimages", "-list", str(path)).splitlines()[2:]
    return sum(1 for r in rows if r.split()[2] == "image")


# ------------------------------------------------------------------------------------------- the browser


def download(page, name: str) -> tuple[str, bytes]:
    """Click the popover's button ``name`` and return the file (one click: the click reruns nothing)."""
    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name=name).click()
    d = info.value
    assert d.failure() is None, d.failure()
    assert not page.locator('[data-testid="stDownloadButtonError"]').count()
    return d.suggested_filename, Path(d.path()).read_bytes()


def test_briefing_from_the_overview_as_a_new_user(browser, ledger, capsys, tmp_path):
    url, engine = ledger
    dialect = engine.dialect.name
    day = previous_month_end(settings.today())
    prev, year = previous_month_end(day), day.year - 1
    SHOTS.mkdir(exist_ok=True)

    now = city_figures(capsys, url, day, year)
    before = city_figures(capsys, url, prev, year - 1)
    phrases = summary_phrases(now, before, prev, year)

    files: dict[str, tuple[str, bytes]] = {}
    with streamlit_server(url, tmp_path / "streamlit.log") as base:
        ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  accept_downloads=True)
        ctx.set_default_timeout(TIMEOUT)
        ctx.add_init_script(QUIET_JS)
        page = ctx.new_page()
        try:
            # sign in: the overview
            page.goto(base + "/")
            page.get_by_label("用户名", exact=True).fill(USER)
            page.get_by_label("密码", exact=True).fill(PW)
            page.get_by_role("button", name="登录").click()
            wait_ready(page, "总览")
            assert_clean(page)
            # 石家庄市 from the filter bar's 市 box
            _select_box(page, "市").locator("input").click()
            page.get_by_role("option", name=CITY_NAME, exact=True).click()
            page.wait_for_function(f"() => new URLSearchParams(location.search).get('region') === '{CITY}'")
            wait_ready(page, "总览")
            # the last month-end, typed into the date field
            type_date(page, day)
            page.keyboard.press("Enter")
            page.wait_for_function(
                f"() => new URLSearchParams(location.search).get('as_of') === '{day.isoformat()}'")
            wait_ready(page, "总览")
            assert_clean(page)
            caption = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]',
                                   has_text="数据截至").first.inner_text()
            assert CITY_NAME in caption and fmt.date_zh(day) in caption, caption
            # the overview's tiles show the command line's figures (the document must say the same)
            cov, cap, cad = now["coverage"], now["cap"], now["cadence"]
            assert_metrics(page, {"结对覆盖率": fmt.pct(cov["rate"]), "超上限责任人": fmt.num(cap["violators"]),
                                  "走访逾期结对": fmt.num(cad["overdue"]), "走访合规率": fmt.pct(cad["rate"])})
            page.mouse.move(0, 0)
            screenshot(page, SHOTS, f"report_browser_{dialect}_overview")

            # 下载通报: the popover names the document and the date
            page.get_by_role("button", name="下载通报").first.click()
            page.get_by_role("button", name="下载通报（PDF）").wait_for()
            settle(page)
            popover = page.locator('[data-testid="stPopoverBody"]').inner_text().replace("\u2060", "")
            assert (f"关于{CITY_NAME}帮扶责任人工作情况的通报（各项指标），数据截至{fmt.date_zh(day)}"
                    in popover), popover
            page.screenshot(path=str(SHOTS / f"report_browser_{dialect}_popover.png"))
            files["docx"] = download(page, "下载通报（Word）")
            files["pdf"] = download(page, "下载通报（PDF）")
            assert_clean(page)
        finally:
            ctx.close()

    # ---- the files: names, Word
    for kind, (name, data) in files.items():
        assert name == f"通报_{CITY}_{day.isoformat()}.{kind}", name
        assert len(data) > 20_000, (name, len(data))
    docx = files["docx"][1]
    paras = docx_paragraphs(docx)
    assert paras[0] == f"关于{CITY_NAME}帮扶责任人工作情况的通报", paras[:2]
    assert paras[1] == f"（数据截至{fmt.date_zh(day)}）", paras[:2]
    body = "\n".join(paras)
    for p in phrases:
        assert p in body, p

    # charts in Word: every rule's section has its figure (the city has many counties), each a picture
    captions, pictures, pngs = docx_charts(docx)
    missing = set(HEADINGS.values()) - set(captions)
    assert not missing, f"rule sections without a chart: {missing}"
    charted = sum(captions.values())
    assert pictures >= charted and pngs >= charted, (captions, pictures, pngs)

    # fonts: no font missing on a Chinese Windows/WPS PC
    assert_no_missing_font_on_windows(docx)

    # ---- PDF: the same sentences, fonts embedded, the charts, page 1 as a picture
    pdf = tmp_path / "briefing.pdf"
    pdf.write_bytes(files["pdf"][1])
    flat = "".join(pdf_tool("pdftotext", str(pdf), "-").split())
    assert f"数据截至{fmt.date_zh(day)}" in flat
    for p in phrases:
        assert "".join(p.split()) in flat, p
    font_rows = assert_fonts_embedded(pdf)
    assert any("Noto-Serif-CJK-SC" in r for r in font_rows) and any("Noto-Sans-CJK-SC" in r for r in font_rows)
    assert pdf_images(pdf) >= charted, pdf_tool("pdfimages", "-list", str(pdf))
    stem = SHOTS / f"report_browser_{dialect}_p1"
    subprocess.run(["pdftoppm", "-png", "-r", "100", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(stem)],
                   check=True)
    assert stem.with_suffix(".png").stat().st_size > 20_000

    # ---- one export audit row per file: the user, the overview's briefing, the city, its format, masked
    rows = audit.query(engine, event=audit.EXPORT)
    rows = rows[rows["object"].astype(str).str.startswith("report")]
    got = sorted((r["username"], r["object"], r["scope"], json.loads(r["detail"])["format"],
                  json.loads(r["detail"])["masked"]) for _, r in rows.iterrows())
    assert got == [(USER, "report:overview", f"region={CITY}", "docx", True),
                   (USER, "report:overview", f"region={CITY}", "pdf", True)], got
    print(f"\nBriefing screenshots: {SHOTS}/report_browser_{dialect}_*.png")
