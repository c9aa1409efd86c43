"""通报 (`bangfu report`, data_access/reports): the Word, PDF and Excel files are written by the command line for
石家庄市 as of a month-end of a demo ledger, read back (python-docx, pdftotext, openpyxl) and every figure in them
is compared with what `bangfu metrics` / `bangfu problems` print as JSON for the same scope and date — or, for
the two rules the command line has no metric for (photos, replacements), with a plain SQL count of the ledger
written here. On SQLite and PostgreSQL. Page 1 of the PDF is rendered to screenshots/ and its fonts must be
embedded."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from docx import Document
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph
from openpyxl import load_workbook
from sqlalchemy import case, func, or_, select

from data_access import schema, settings
from data_access.cli import main
from data_access.dates import months_before

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
DEMO_AS_OF = dt.date(2026, 11, 15)
D, PREV = dt.date(2026, 10, 31), dt.date(2026, 9, 30)
CITY, CITY_NAME = "130100", "石家庄市"
PHOTO_START = months_before(D.replace(day=1), 11)
HEADINGS = {"coverage": "一、结对覆盖与弱结对（第五条、第七条）", "cap": "二、帮扶户数上限（第五条）",
            "cadence": "三、入户走访频次（第十二条（二））", "photos": "四、走访照片记录（第十二条（三））",
            "ratings": "五、年度考核（第十三条）", "replacements": "六、调换审批（第十条）"}
# per rule: the table columns after the name (field, title) for counties and for units, whether the rate is
# better high, the problem column
COLS = {
    "coverage": ([("households", "在帮贫困户"), ("uncovered", "未覆盖户"), ("weak", "弱结对户"), ("rate", "结对覆盖率")],
                 [("households", "驻村在帮贫困户"), ("covered", "本单位结对"), ("uncovered", "未覆盖户"),
                  ("rate", "驻村覆盖率")], True, "uncovered"),
    "cap": ([("helpers", "在帮责任人"), ("violators", "超上限责任人"), ("excess", "超出户数"), ("rate", "超上限占比")],
            [("helpers", "在帮责任人"), ("violators", "超上限责任人"), ("excess", "超出户数"), ("rate", "超上限占比")],
            False, "violators"),
    "cadence": ([("active_pairings", "在帮结对"), ("overdue", "逾期结对"), ("rate", "走访合规率")],
                [("active_pairings", "在帮结对"), ("overdue", "逾期结对"), ("rate", "走访合规率")], True, "overdue"),
    "photos": ([("in_home_visits", "入户走访"), ("with_photo", "上传照片"), ("without_photo", "未上传照片"),
                ("rate", "照片上传率")],
               [("in_home_visits", "入户走访"), ("with_photo", "上传照片"), ("without_photo", "未上传照片"),
                ("rate", "照片上传率")], True, "without_photo"),
    "ratings": ([("rated", "已考核"), ("excellent", "优秀"), ("unqualified", "不合格"), ("missing", "未考核"),
                 ("rate", "未考核率")],
                [("rated", "已考核"), ("excellent", "优秀"), ("unqualified", "不合格"), ("missing", "未考核"),
                 ("rate", "未考核率")], False, "missing"),
    "replacements": ([("replacements", "调换"), ("unapproved", "未经批准"), ("rate", "未批准占比")],
                     [("replacements", "调换"), ("unapproved", "未经批准"), ("rate", "未批准占比")], False, "unapproved"),
}

NO_PROBLEM = {"coverage": "均无未结对的在帮贫困户", "cap": "均无帮扶超过5户的责任人", "cadence": "均无走访逾期的结对",
              "photos": "入户走访均上传了电子照片", "ratings": "在帮责任人均已考核", "replacements": "调换均经县委组织部批准"}

# poppler-utils reads the PDFs back (scripts/test.sh installs it): skipped without it, but never in CI
pytestmark = pytest.mark.skipif(not shutil.which("pdftotext") and not settings.ci(),
                                reason="poppler-utils is not installed (apt-get install -y poppler-utils)")


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


def cli_json(capsys, *argv):
    return json.loads(cli(capsys, *argv)[0])


# ------------------------------------------------------------------------------------------- the oracle


def derive(rule: str, r: dict) -> dict:
    """The rates and derived counts as the briefing defines them (its documented meaning, restated here)."""
    r = dict(r)
    if rule == "coverage":
        r["uncovered"] = r["households"] - r["covered"]
        r["rate"] = r["covered"] / r["households"] if r["households"] else None
    elif rule == "cap":
        r["rate"] = r["violators"] / r["helpers"] if r["helpers"] else None
    elif rule == "cadence":
        r["rate"] = 1 - r["overdue"] / r["active_pairings"] if r["active_pairings"] else None
    elif rule == "photos":
        r["without_photo"] = r["in_home_visits"] - r["with_photo"]
        r["rate"] = r["with_photo"] / r["in_home_visits"] if r["in_home_visits"] else None
    elif rule == "ratings":
        r["rated"] = r["excellent"] + r["qualified"] + r["unqualified"]
        n = r["rated"] + r["missing"]
        r["rate"] = r["missing"] / n if n else None
    elif rule == "replacements":
        r["rate"] = r["unapproved"] / r["replacements"] if r["replacements"] else None
    return r


def worst(rule: str, groups: dict[str, dict], n: int = 5) -> list[dict]:
    _, _, higher, problem = COLS[rule]
    rows = [g for g in groups.values() if g[problem] > 0 and g["rate"] is not None]
    rows.sort(key=lambda g: ((g["rate"] if higher else -g["rate"]), -g[problem], g["code"]))
    return rows[:n]


def photo_counts(engine, start, end, by: str) -> dict[str, dict]:
    """In-home visits to in-scope households start..end and those with a photo, per county of the household
    under the city (by="county") or per visiting helper's unit (by="unit"), and the city's total ("city")."""
    v, hh, r, h = schema.visits, schema.households, schema.regions, schema.helpers
    key = {"county": r.c.county_code, "unit": h.c.unit_id, "city": r.c.city_code}[by]
    q = (select(key, func.count(), func.sum(case((v.c.photo_uploaded.is_(True), 1), else_=0)))
         .select_from(v.join(hh, hh.c.household_id == v.c.household_id).join(r, r.c.code == hh.c.village_code)
                      .join(h, h.c.helper_id == v.c.helper_id))
         .where(v.c.mode == "in_home", v.c.visit_date >= start, v.c.visit_date <= end,
                hh.c.status.in_(["not_lifted", "lifted_with_policy"]))
         .group_by(key))
    if by != "unit":
        q = q.where(r.c.city_code == CITY)
    with engine.connect() as c:
        return {k: derive("photos", {"code": k, "in_home_visits": int(n), "with_photo": int(p or 0)})
                for k, n, p in c.execute(q)}


def replacement_counts(engine, as_of, by: str) -> dict[str, dict]:
    """Replacements (ended by the date for illness, transfer or discipline, in-scope household) and those without
    approval, per helper's unit, per the unit's county under the city (its city for a city-level unit), or the
    city's total."""
    p, hh, h, u, r = schema.pairings, schema.households, schema.helpers, schema.units, schema.regions
    key = {"unit": u.c.unit_id, "county": func.coalesce(r.c.county_code, r.c.city_code), "city": r.c.city_code}[by]
    unapproved = or_(p.c.approved.is_(None), p.c.approved.is_(False))
    q = (select(key, func.count(), func.sum(case((unapproved, 1), else_=0)))
         .select_from(p.join(hh, hh.c.household_id == p.c.household_id).join(h, h.c.helper_id == p.c.helper_id)
                      .join(u, u.c.unit_id == h.c.unit_id).join(r, r.c.code == u.c.region_code))
         .where(p.c.end_date <= as_of, p.c.end_reason.in_(["illness", "transfer", "discipline"]),
                hh.c.status.in_(["not_lifted", "lifted_with_policy"]), r.c.city_code == CITY)
         .group_by(key))
    with engine.connect() as c:
        return {k: derive("replacements", {"code": k, "replacements": int(n), "unapproved": int(a or 0)})
                for k, n, a in c.execute(q)}


def city_units(engine) -> dict[str, str]:
    u, r = schema.units, schema.regions
    with engine.connect() as c:
        return dict(c.execute(select(u.c.unit_id, u.c.name).join(r, r.c.code == u.c.region_code)
                              .where(r.c.city_code == CITY)).all())


def city_region_codes(engine) -> set[str]:
    r = schema.regions
    with engine.connect() as c:
        return {x for (x,) in c.execute(select(r.c.code).where(r.c.city_code == CITY, r.c.level == "county"))} | {CITY}


def oracle(engine, capsys, db) -> dict:
    """Everything the briefing of 石家庄市 on D must say, from the command line's JSON (and SQL for photos and
    replacements)."""
    counties, units = city_region_codes(engine), city_units(engine)
    out = {"total": {}, "before": {}, "regions": {}, "units": {}}
    for rule in ("coverage", "cap", "cadence", "ratings"):
        for key, day in (("total", D), ("before", PREV)):
            extra = ["--year", str(D.year - (1 if key == "total" else 2))] if rule == "ratings" else []
            doc = cli_json(capsys, "metrics", rule, "--by", "city", "--as-of", day, "--format", "json", "--db", db, *extra)
            row = next(g for g in doc["groups"] if g["code"] == CITY)
            out[key][rule] = derive(rule, row)
        doc = cli_json(capsys, "metrics", rule, "--by", "county", "--as-of", D, "--format", "json", "--db", db)
        out["regions"][rule] = {g["code"]: derive(rule, g) for g in doc["groups"] if g["code"] in counties}
        doc = cli_json(capsys, "metrics", rule, "--by", "unit", "--as-of", D, "--format", "json", "--db", db)
        out["units"][rule] = {g["code"]: derive(rule, g) for g in doc["groups"] if g["code"] in units}
    out["total"]["photos"] = photo_counts(engine, PHOTO_START, D, "city")[CITY]
    out["before"]["photos"] = photo_counts(engine, months_before(PREV.replace(day=1), 11), PREV, "city")[CITY]
    out["regions"]["photos"] = photo_counts(engine, PHOTO_START, D, "county")
    out["units"]["photos"] = {k: v for k, v in photo_counts(engine, PHOTO_START, D, "unit").items() if k in units}
    out["total"]["replacements"] = replacement_counts(engine, D, "city")[CITY]
    out["before"]["replacements"] = replacement_counts(engine, PREV, "city").get(CITY)
    out["regions"]["replacements"] = replacement_counts(engine, D, "county")
    out["units"]["replacements"] = replacement_counts(engine, D, "unit")
    out["problems"] = {k: cli_json(capsys, "problems", k, "--as-of", D, "--region", CITY, "--format", "json", "--db", db)
                       for k in ("uncovered", "cap", "overdue", "unapproved")}
    # the command line's problem lists and metrics agree (the briefing quotes both)
    t = out["total"]
    assert len(out["problems"]["uncovered"]) == t["coverage"]["uncovered"]
    assert len(out["problems"]["cap"]) == t["cap"]["violators"]
    assert len(out["problems"]["overdue"]) == t["cadence"]["overdue"]
    assert len(out["problems"]["unapproved"]) == t["replacements"]["unapproved"]
    # county names for the tables (the 市直 row is the city's own code)
    for rule in COLS:
        for code, g in out["regions"][rule].items():
            g.setdefault("name", "石家庄市直" if code == CITY else None)
        for code, g in out["units"][rule].items():
            g["name"] = units[code]
    r = schema.regions
    with engine.connect() as c:
        names = dict(c.execute(select(r.c.code, r.c.name).where(r.c.code.in_(counties))).all())
    for rule in COLS:
        for code, g in out["regions"][rule].items():
            if not g.get("name") or g["name"] == code:
                g["name"] = "石家庄市直" if code == CITY else names[code]
    return out


def fmt_cell(col: str, value) -> str:
    if col == "rate":
        return "—" if value is None else f"{value * 100:.1f}%"
    return f"{int(value):,}"


def rate_phrase(cur, prev, label="2026年9月30日") -> str:
    d = round((cur - prev) * 100, 1)
    return f"与{label}持平" if d == 0 else f"较{label}{'上升' if d > 0 else '下降'}{abs(d):.1f}个百分点"


def count_phrase(cur, prev, unit, label="2026年9月30日") -> str:
    d = cur - prev
    return f"与{label}持平" if d == 0 else f"较{label}{'增加' if d > 0 else '减少'}{abs(d):,}{unit}"


def expected_phrases(o: dict) -> list[str]:
    """Sentences of the summary and the sections, each holding figures."""
    t, b = o["total"], o["before"]
    cov, cap, cad, ph, rt, rep = (t[k] for k in ("coverage", "cap", "cadence", "photos", "ratings", "replacements"))
    def pct(x):
        return f"{x * 100:.1f}%"

    return [
        (f"{CITY_NAME}在帮贫困户{cov['households']:,}户，已结对{cov['covered']:,}户，结对覆盖率{pct(cov['rate'])}"
        f"（{rate_phrase(cov['rate'], b['coverage']['rate'])}）"),
        f"未覆盖{cov['uncovered']:,}户（{count_phrase(cov['uncovered'], b['coverage']['uncovered'], '户')}）",
        f"弱结对{cov['weak']:,}户",
        (f"在帮责任人{cap['helpers']:,}名，帮扶超过5户的{cap['violators']:,}名"
        f"（{count_phrase(cap['violators'], b['cap']['violators'], '名')}），占{pct(cap['rate'])}，超出户数合计{cap['excess']:,}户"),
        (f"在帮结对{cad['active_pairings']:,}个，超过规定间隔未入户走访的{cad['overdue']:,}个"
        f"（{count_phrase(cad['overdue'], b['cadence']['overdue'], '个')}），走访合规率{pct(cad['rate'])}"
        f"（{rate_phrase(cad['rate'], b['cadence']['rate'])}）"),
        (f"2025年11月1日至2026年10月31日入户走访{ph['in_home_visits']:,}次，上传电子照片{ph['with_photo']:,}次，"
        f"照片上传率{pct(ph['rate'])}（{rate_phrase(ph['rate'], b['photos']['rate'], '截至2026年9月30日的12个月')}）"),
        (f"2025年度已考核责任人{rt['rated']:,}名，其中优秀{rt['excellent']:,}名、合格{rt['qualified']:,}名、"
        f"不合格{rt['unqualified']:,}名；有在帮结对但未考核的{rt['missing']:,}名"
        f"（{count_phrase(rt['missing'], b['ratings']['missing'], '名', '2024年度')}）"),
        f"调换结对{rep['replacements']:,}次，其中未经县委组织部批准的{rep['unapproved']:,}次",
        f"截至2026年10月31日，{CITY_NAME}结对覆盖率{pct(cov['rate'])}",
    ]


def expected_rows(o: dict, rule: str, kind: str) -> list[list[str]]:
    region_cols, unit_cols, _, _ = COLS[rule]
    cols = region_cols if kind == "regions" else unit_cols
    return [[g["name"]] + [fmt_cell(c, g[c]) for c, _ in cols] for g in worst(rule, o[kind][rule])]


def annex_expected(o: dict) -> dict[str, list[int]]:
    """Unit code -> [驻村未覆盖户, 超上限责任人, 逾期结对, 未考核责任人, 未批准调换] for the units with any."""
    out = {}
    codes = set().union(*(o["units"][r].keys() for r in ("coverage", "cap", "cadence", "ratings", "replacements")))
    for code in codes:
        row = [o["units"][r].get(code, {}).get(f, 0) for r, f in
               (("coverage", "uncovered"), ("cap", "violators"), ("cadence", "overdue"), ("ratings", "missing"),
                ("replacements", "unapproved"))]
        if any(row):
            out[code] = row
    return out


# ------------------------------------------------------------------------------------------- the files


def docx_sections(path: Path) -> tuple[list[str], dict[str, list[list[list[str]]]]]:
    """(paragraph texts, {first-level heading: [tables as rows of cell texts]}) in document order."""
    doc = Document(str(path))
    langs = {(x.get(qn("w:val")), x.get(qn("w:eastAsia"))) for x in doc.styles.element.iter(qn("w:lang"))}
    assert langs == {("zh-CN", "zh-CN")}, langs  # Word picks fonts and punctuation widths by them
    paras, tables, current = [], {}, "前言"
    for child in doc.element.body.iterchildren():
        if child.tag.endswith("}p"):
            text = Paragraph(child, doc).text
            paras.append(text)
            if re.match(r"^[一二三四五六七八九十]、", text) or text == "附件":
                current = text
        elif child.tag.endswith("}tbl"):
            t = Table(child, doc)
            tables.setdefault(current, []).append([[c.text for c in row.cells] for row in t.rows])
    return paras, tables


@pytest.fixture
def demo(engine, db_url, capsys):
    cli(capsys, "demo", "--households", "2000", "--seed", "5", "--as-of", DEMO_AS_OF, "--db", db_url)
    return db_url


def test_briefing_files_match_the_command_line(engine, demo, capsys, tmp_path):
    db = demo
    files = {}
    for fmt in ("docx", "pdf", "xlsx"):
        files[fmt] = tmp_path / f"briefing.{fmt}"
        _, err = cli(capsys, "report", "--month", "2026-10", "--region", CITY, "--format", fmt,
                     "--output", files[fmt], "--db", db)
        assert "已写入通报" in err and files[fmt].stat().st_size > 10_000
    o = oracle(engine, capsys, db)
    phrases = expected_phrases(o)

    # ---- Word
    paras, tables = docx_sections(files["docx"])
    assert paras[0] == f"关于{CITY_NAME}帮扶责任人工作情况的通报"
    assert paras[1] == "（数据截至2026年10月31日）"
    text = "\n".join(paras)
    for p in phrases:
        assert p in text, p
    cells = [c for ts in tables.values() for t in ts for row in t for c in row]
    assert not {"nan", "None", "NaT"} & set(cells)  # an empty value (a helper without a department) is blank
    for rule, heading in HEADINGS.items():
        assert heading in paras, rule
        got = tables.get(heading, [])
        for kind, first in (("regions", "县（市、区）"), ("units", "派出单位")):
            rows = expected_rows(o, rule, kind)
            table = next((t for t in got if t[0][0] == first), None)
            if rows:
                assert table is not None and table[1:] == rows, (rule, kind, table, rows)
            else:  # nobody to name: a sentence says so, and no table
                assert table is None and f"各{first}{NO_PROBLEM[rule]}。" in paras, (rule, kind)
    cases = next((t for t in tables.get(HEADINGS["cap"], []) if t[0][0] == "姓名"), [["姓名"]])
    loads = sorted((r["load"] for r in o["problems"]["cap"]), reverse=True)[:10]
    assert [int(r[3]) for r in cases[1:]] == loads
    assert all(re.fullmatch(r".\*\*", r[0]) for r in cases[1:]), cases  # names masked
    annex = tables["附件"][0]
    assert annex[0][:4] == ["单位编号", "派出单位", "级别", "所属区划"]
    want = annex_expected(o)
    assert {r[0]: [int(x.replace(",", "")) for x in r[4:]] for r in annex[1:]} == want
    assert "七、督办整改情况（第十二条（四））" in paras

    # ---- PDF: fonts embedded, the same sentences and table rows, page 1 as a picture
    fonts = subprocess.run(["pdffonts", files["pdf"]], capture_output=True, text=True, check=True).stdout
    font_rows = fonts.splitlines()[2:]
    assert font_rows and all(re.search(r"\byes\s+yes\s+yes\b", r) for r in font_rows), fonts
    assert any("Noto-Serif-CJK-SC" in r for r in font_rows) and any("Noto-Sans-CJK-SC" in r for r in font_rows)
    info = subprocess.run(["pdfinfo", files["pdf"]], capture_output=True, text=True, check=True).stdout
    assert "A4" in info and f"关于{CITY_NAME}帮扶责任人工作情况的通报" in info
    flat = "".join(subprocess.run(["pdftotext", files["pdf"], "-"], capture_output=True, text=True,
                                  check=True).stdout.split())
    assert f"关于{CITY_NAME}帮扶责任人工作情况的通报" in flat and "数据截至2026年10月31日" in flat
    for p in phrases:
        assert "".join(p.split()) in flat, p
    layout = subprocess.run(["pdftotext", "-layout", files["pdf"], "-"], capture_output=True, text=True,
                            check=True).stdout
    for rule in COLS:
        for kind in ("regions", "units"):
            for row in expected_rows(o, rule, kind):
                assert re.search(r"\s+".join(re.escape(c) for c in row), layout), (rule, kind, row)
    for code in want:
        assert re.search(rf"{re.escape(code)}\s+\S", layout), code
    SHOTS.mkdir(exist_ok=True)
    stem = SHOTS / f"report_{engine.dialect.name}_p1"
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", files["pdf"], stem], check=True)
    assert stem.with_suffix(".png").stat().st_size > 20_000
    print(f"\nPage 1 of the briefing: {stem.with_suffix('.png')}")

    # ---- Excel: one sheet per rule, title rows, frozen header, formats; every group's figures
    book = load_workbook(files["xlsx"])
    assert book.sheetnames[:7] == ["概况", "一 结对覆盖", "二 帮扶上限", "三 走访频次", "四 走访照片", "五 年度考核",
                                   "六 调换审批"]
    assert {"督办事项", "附件 问题单位"} <= set(book.sheetnames)
    for i, rule in enumerate(COLS, start=1):
        ws = book.worksheets[i]
        assert ws["A1"].value.startswith(f"关于{CITY_NAME}帮扶责任人工作情况的通报")
        assert ws["A2"].value == f"范围：{CITY_NAME}　数据截至：2026年10月31日"
        assert ws["A3"].value.startswith("来源：帮扶责任人监测看板")
        top = int(re.match(r"[A-Z]+(\d+)", ws.freeze_panes).group(1)) - 1
        header = [c.value for c in ws[top]]
        assert header[:5] == ["分组", "代码", "名称", "级别", "所属区划"]
        assert all(ws.column_dimensions[c].width and ws.column_dimensions[c].width >= 8 for c in "ABCDE")
        region_cols, unit_cols, _, _ = COLS[rule]
        rows = [[c for c in r] for r in ws.iter_rows(min_row=top + 1)]
        seen = {"regions": {}, "units": {}}
        for r in rows:
            rec = {h: c for h, c in zip(header, r)}
            kind = "units" if rec["分组"].value == "派出单位" else "regions"
            seen[kind][rec["代码"].value] = rec
        for kind, cols in (("regions", region_cols), ("units", unit_cols)):
            assert set(seen[kind]) == set(o[kind][rule]), (rule, kind)
            for code, rec in seen[kind].items():
                g = o[kind][rule][code]
                assert rec["名称"].value == g["name"], (rule, kind, code)
                for f, title in cols:
                    cell = rec[title]
                    if f == "rate":
                        assert abs(cell.value - g[f]) < 1e-9 and cell.number_format == "0.0%", (rule, kind, code, f)
                    else:
                        assert cell.value == g[f] and cell.number_format == "#,##0", (rule, kind, code, f, cell.value)
    # a region whose only child has its own name (定州市 139001 → 定州市 130682): every rule ranked one level down
    from data_access import reports

    dingzhou = reports.build(engine, D, "139001")
    assert {s.region_level for s in dingzhou.sections} == {"township"}
    annex_ws = book["附件 问题单位"]
    top = int(re.match(r"[A-Z]+(\d+)", annex_ws.freeze_panes).group(1)) - 1
    got = {r[0].value: [c.value for c in r[4:]] for r in annex_ws.iter_rows(min_row=top + 1)}
    assert got == want


def test_report_command_errors(engine, db_url, capsys, tmp_path):
    """Bad input: one plain sentence, exit 1 or 2, no file written."""
    out = tmp_path / "x.docx"
    for argv, code, words in (
        (["--region", "999999", "--format", "docx"], 1, "区划代码 '999999' 不存在"),
        (["--month", "2026-13", "--format", "docx"], 2, "月份 '2026-13' 无效"),
        (["--month", "2026-10", "--as-of", "2026-10-31", "--format", "pdf"], 2, "用法错误"),
        (["--format", "odt"], 2, "用法错误"),
    ):
        try:
            rc = main(["report", *argv, "--output", str(out), "--db", db_url])
        except SystemExit as exc:  # argparse's usage errors
            rc = exc.code
        _, err = capsys.readouterr()
        assert rc == code and words in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert not out.exists()
    rc = main(["report", "--format", "pdf", "--output", str(tmp_path / "nope" / "x.pdf"), "--db", db_url])
    assert rc == 1 and "输出目录不存在" in capsys.readouterr().err


def test_month_means_its_last_day(engine, db_url, capsys, tmp_path):
    """--month 2026-02 writes the briefing as of 2026-02-28 (a cron line on the 1st writes last month's)."""
    from .conftest import write_ledger
    from .test_metrics import coverage_ledger

    cli(capsys, "import", write_ledger(tmp_path / "l", coverage_ledger()), "--db", db_url)
    out = tmp_path / "feb.docx"
    cli(capsys, "report", "--month", "2026-02", "--format", "docx", "--output", out, "--db", db_url)
    paras, _ = docx_sections(out)
    assert paras[1] == "（数据截至2026年2月28日）"
    from data_access import audit

    rows = audit.query(engine, event=audit.EXPORT)
    assert (rows["object"] == "report").sum() == 1


def test_supervision_section_lists_open_and_overdue_orders(engine, db_url, capsys, tmp_path):
    """The briefing's 督办整改 section names each order with items not rectified on the date, with the counts
    `bangfu rectify list` gives; without such an order it says there is none."""
    from .conftest import write_ledger
    from .test_metrics import coverage_ledger

    cli(capsys, "import", write_ledger(tmp_path / "l", coverage_ledger()), "--db", db_url)
    before = tmp_path / "before.docx"
    cli(capsys, "report", "--as-of", "2026-07-31", "--format", "docx", "--output", before, "--db", db_url)
    paras, tables = docx_sections(before)
    heading = next(p for p in paras if re.match(r"^[一二三四五六七八九十]、督办整改情况", p))
    assert "没有整改中或逾期未整改的督办事项" in paras[paras.index(heading) + 1]
    assert heading not in tables

    order = cli_json(capsys, "rectify", "issue", "uncovered", "--unit", "U2", "--deadline", "2026-07-15",
                     "--as-of", "2026-06-30", "--db", db_url)
    items = cli_json(capsys, "rectify", "list", "--as-of", "2026-07-31", "--db", db_url)
    overdue = sum(1 for i in items if i["order_id"] == order["order_id"] and i["status"] == "overdue")
    still_open = sum(1 for i in items if i["order_id"] == order["order_id"] and i["status"] == "open")
    assert overdue + still_open == order["items"] >= 1
    after = tmp_path / "after.docx"
    cli(capsys, "report", "--as-of", "2026-07-31", "--format", "docx", "--output", after, "--db", db_url)
    paras, tables = docx_sections(after)
    heading = next(p for p in paras if re.match(r"^[一二三四五六七八九十]、督办整改情况", p))
    assert f"共有1份督办单尚未整改完毕，其中逾期未整改事项{overdue}条、整改中事项{still_open}条" in \
        paras[paras.index(heading) + 1]
    (table,) = tables[heading]
    assert table[0] == ["督办单号", "派出单位", "问题类型", "下达日期", "整改期限", "逾期未整改", "整改中"]
    assert table[1] == [order["order_id"], "石家庄市教育局", "未结对覆盖", "2026年6月30日", "2026年7月15日",
                        str(overdue), str(still_open)]


def test_case_rows_leave_a_missing_department_blank():
    """The helpers over the cap come as a frame whose text columns pandas may hold as strings with NaN for a
    missing department (pandas 3): the table shows a blank cell, never "nan"."""
    import pandas as pd

    from data_access.reports.layout import case_rows

    cases = pd.DataFrame({"helper_name": ["张**", "李**"], "unit_name": ["省财政厅", "市教育局"],
                          "department": pd.Series(["综合处", None], dtype="str"), "load": [7, 6]})
    assert case_rows(cases) == [["张**", "省财政厅", "综合处", "7"], ["李**", "市教育局", "", "6"]]
