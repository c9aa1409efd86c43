"""Ledger import as CONTRACT.md specifies: validation of every row, all-or-nothing, idempotent upsert,
encodings, Chinese headers, .xlsx. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from data_access import schema
from data_access.ledger import ImportFailed, import_ledger

from .conftest import row_counts, write_ledger
from .ledgers import V1, V3, base, hh, pr

ERROR_LINE = re.compile(r"^[^:]+:\d+: [a-z_+-]+: .+$")


def good_ledger():
    return base(
        households=[hh("H1", V1), hh("H2", V3, "lifted_with_policy")],
        pairings=[pr("P1", "A", "H1", "2025-01-01"), pr("P2", "F", "H2", "2025/02/03", "2026-01-01", "transfer", "是")],
        visits=[{"visit_id": "V1", "helper_id": "A", "household_id": "H1", "visit_date": "2026-01-05",
                 "mode": "in_home", "photo_uploaded": "true", "note": "=cmd|' /C calc'!A0"}],
        ratings=[{"helper_id": "A", "year": "2025", "grade": "优秀"}],
        assignments=[{"unit_id": "U2", "village_code": V1, "start_date": "2025-01-01"}],
    )


def snapshot(engine):
    with engine.connect() as conn:
        return {n: sorted(tuple(map(str, r)) for r in conn.execute(select(t))) for n, t in schema.LEDGER_TABLES.items()}


def test_import_and_idempotent_upsert(engine, tmp_path):
    folder = write_ledger(tmp_path / "l", good_ledger())
    r1 = import_ledger(engine, folder)
    assert r1.inserted == {"regions": 10, "units": 4, "helpers": 9, "households": 2, "pairings": 2, "visits": 1,
                           "ratings": 1, "assignments": 1}
    assert "pairings 新增 2" in r1.summary()
    before = snapshot(engine)
    r2 = import_ledger(engine, folder)
    assert sum(r2.inserted.values()) == 0 and sum(r2.updated.values()) == 0
    assert snapshot(engine) == before
    with engine.connect() as conn:
        p2 = conn.execute(select(schema.pairings).where(schema.pairings.c.pairing_id == "P2")).one()
    assert p2.start_date == dt.date(2025, 2, 3) and p2.end_reason == "transfer" and p2.approved is True

    # a later ledger updates rows with the same id and never deletes
    later = {"households": [hh("H1", V1, "lifted_with_policy")],
             "ratings": [{"helper_id": "A", "year": "2025", "grade": "qualified"}]}
    r3 = import_ledger(engine, write_ledger(tmp_path / "later", later))
    assert r3.updated == {"households": 1, "ratings": 1} and r3.inserted == {"households": 0, "ratings": 0}
    counts = row_counts(engine)
    assert counts["households"] == 2 and counts["ratings"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(schema.households.c.status).where(schema.households.c.household_id == "H1")).scalar() == "lifted_with_policy"


def test_references_to_rows_already_in_the_database(engine, tmp_path):
    import_ledger(engine, write_ledger(tmp_path / "a", base(households=[hh("H1", V1)])))
    r = import_ledger(engine, write_ledger(tmp_path / "b", {"pairings": [pr("P1", "A", "H1", "2025-01-01")]}))
    assert r.inserted == {"pairings": 1}


def test_gb18030_with_chinese_headers_and_values(engine, tmp_path):
    folder = tmp_path / "gbk"
    folder.mkdir()
    regions = "区划代码,名称,级别,上级代码\n130000,河北省,省,\n130100,石家庄市,市,130000\n130102,长安区,县,130100\n" \
              "130102001,建北街道,乡,130102\n130102001001,东村,村,130102001\n"
    units = "单位编号,单位名称,级别,所属区划代码\nU1,省财政厅,省直,130000\n"
    helpers = "帮扶责任人编号,姓名,派出单位编号,处室,类别,职务,联系电话,备用\nA,张三,U1,综合处,干部职工,科员,13800001111,x\n"
    households = "户编号,户主姓名,村代码,状态,身份证号,人口数\nH1,李四,130102001001,未脱贫,130102199001011237,4\n"
    pairings = "结对编号,帮扶责任人编号,户编号,开始日期,结束日期,结束原因,县委组织部批准\nP1,A,H1,2025/1/1,,,\n"
    visits = "走访编号,帮扶责任人编号,户编号,走访日期,方式,照片上传,记录\nV1,A,H1,2026-01-05,入户,是,了解情况\n"
    for name, text in {"regions": regions, "units": units, "helpers": helpers, "households": households,
                       "pairings": pairings, "visits": visits}.items():
        (folder / f"{name}.csv").write_bytes(text.encode("gb18030"))
    r = import_ledger(engine, folder)
    assert r.inserted["visits"] == 1
    assert any("备用" in w for w in r.warnings)  # unknown column reported, not fatal
    with engine.connect() as conn:
        h = conn.execute(select(schema.helpers)).one()
        v = conn.execute(select(schema.visits)).one()
        hh_ = conn.execute(select(schema.households)).one()
    assert (h.name, h.category, h.department) == ("张三", "cadre", "综合处")
    assert (v.mode, v.photo_uploaded, v.note) == ("in_home", True, "了解情况")
    assert (hh_.status, hh_.size) == ("not_lifted", 4)


def test_utf8_bom_and_xlsx(engine, tmp_path):
    from openpyxl import Workbook

    ledger = good_ledger()
    folder = write_ledger(tmp_path / "bom", {"regions": ledger["regions"]}, encoding="utf-8-sig")
    assert import_ledger(engine, folder).inserted == {"regions": 10}

    wb = Workbook()
    wb.remove(wb.active)
    for name in ("units", "helpers", "households", "pairings"):
        rows = ledger[name]
        cols = list(dict.fromkeys(k for r in rows for k in r))
        ws = wb.create_sheet(name)
        ws.append(cols)
        for r in rows:
            vals = [r.get(c) or None for c in cols]
            if name == "pairings":  # Excel date cells
                vals = [dt.datetime.fromisoformat(x.replace("/", "-")) if c in ("start_date", "end_date") and x else x
                        for c, x in zip(cols, vals)]
            ws.append(vals)
    path = tmp_path / "ledger.xlsx"
    wb.save(path)
    r = import_ledger(engine, path)
    assert r.inserted == {"units": 4, "helpers": 9, "households": 2, "pairings": 2}
    with engine.connect() as conn:
        assert conn.execute(select(schema.pairings.c.start_date).where(schema.pairings.c.pairing_id == "P2")).scalar() == dt.date(2025, 2, 3)


def bad_ledger():
    regions = base()["regions"] + [
        {"code": "139999", "name": "孤儿县", "level": "county", "parent_code": "138888"},  # parent missing
        {"code": "130102002", "name": "错级", "level": "township", "parent_code": "130102001001"},  # parent lower
    ]
    return {
        "regions": regions,
        "units": base()["units"] + [{"unit_id": "U9", "name": "某单位", "level": "部级", "region_code": "130000"}],
        "helpers": base()["helpers"] + [{"helper_id": "N1", "name": "", "unit_id": "U404", "category": "cadre"}],
        "households": [hh("H1", V1), hh("H1", V1), hh("H3", "130102", "not_lifted"), hh("H4", V1, "poor"),
                       {**hh("H5", V1), "id_number": "1.30102E+17"}],
        "pairings": [pr("P1", "A", "H1", "2025-01-01", "2024-12-31", "other"),
                     pr("P2", "A", "H404", "2025-13-01"),
                     pr("P3", "ZZ", "H1", "2025-02-30")],
        "visits": [{"visit_id": "V1", "helper_id": "A", "household_id": "H1", "visit_date": "2026-01-05",
                    "mode": "上门"}],
        "ratings": [{"helper_id": "A", "year": "2025", "grade": "good"}],
    }


def test_malformed_ledger_reports_every_error_and_writes_nothing(engine, tmp_path):
    import_ledger(engine, write_ledger(tmp_path / "first", {"regions": base()["regions"][:2]}))
    before = snapshot(engine)
    with pytest.raises(ImportFailed) as info:
        import_ledger(engine, write_ledger(tmp_path / "bad", bad_ledger()))
    errors = info.value.errors
    assert all(ERROR_LINE.match(e) for e in errors), errors
    expect = [
        r"^regions\.csv:12: parent_code: .*138888",            # parent missing
        r"^regions\.csv:13: parent_code: .*不高于",              # parent not of a higher level
        r"^units\.csv:6: level: .*部级",                         # unknown enum value
        r"^helpers\.csv:11: name: 缺少必填值",                    # missing required value
        r"^helpers\.csv:11: unit_id: .*U404",                   # unknown reference
        r"^households\.csv:3: household_id: 重复",               # duplicate id
        r"^households\.csv:4: village_code: .*不是村级",          # village code not a village
        r"^households\.csv:5: status: .*poor",
        r"^households\.csv:6: id_number: .*科学计数法",            # Excel ate the ID digits
        r"^pairings\.csv:2: end_date: .*早于",                   # end before start
        r"^pairings\.csv:3: start_date: .*2025-13-01",          # bad date
        r"^pairings\.csv:4: start_date: .*2025-02-30",          # impossible date
        r"^visits\.csv:2: mode: .*上门",
        r"^ratings\.csv:2: grade: .*good",
    ]
    for pattern in expect:
        assert any(re.search(pattern, e) for e in errors), (pattern, errors)
    # a row with a bad value still has its other columns checked
    assert any(re.search(r"^pairings\.csv:3: household_id: .*H404", e) for e in errors)
    assert any(re.search(r"^pairings\.csv:4: helper_id: .*ZZ", e) for e in errors)
    assert snapshot(engine) == before


def test_missing_required_column_and_unknown_reference(engine, tmp_path):
    ledger = base(households=[{"household_id": "H1", "head_name": "甲", "status": "not_lifted"}],
                  pairings=[pr("P1", "A", "H9", "2025-01-01")])
    with pytest.raises(ImportFailed) as info:
        import_ledger(engine, write_ledger(tmp_path / "x", ledger))
    errors = info.value.errors
    assert "households.csv:1: village_code: 缺少必需的列" in errors
    assert any(e.startswith("pairings.csv:2: household_id:") and "H9" in e for e in errors)
    assert row_counts(engine)["regions"] == 0  # the valid files were not written either


def fullwidth(s: str) -> str:
    """The full-width form a Chinese input method types: ASCII 0x21–0x7E shifted to U+FF01–U+FF5E."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def test_fullwidth_values_are_normalised_before_validation(engine, tmp_path):
    assert fullwidth("2026-06-30") == "２０２６－０６－３０"
    ledger = base(
        households=[
            # a valid ID typed full-width (with a full-width X), a full-width id, status, village code and size
            {"household_id": fullwidth("H1"), "head_name": "李Ａ　四", "village_code": fullwidth(V1),
             "status": fullwidth("not_lifted"), "id_number": fullwidth("13010219900101127X"), "size": fullwidth("3")},
            # a full-width ID whose check digit is wrong (the right one is 7)
            {**hh("H2", V1), "id_number": fullwidth("130102199001011230")},
        ],
        pairings=[pr("P1", fullwidth("A"), "H1", fullwidth("2025-01-01"), None, None, fullwidth("1"))],
        visits=[{"visit_id": "V1", "helper_id": "A", "household_id": "H1", "visit_date": "２０２６－０６－３０",
                 "mode": "in_home", "note": "ＡＢ　走访１次"}],
    )
    r = import_ledger(engine, write_ledger(tmp_path / "fw", ledger))
    # 5 cells of households row 2 (not the name), the ID of row 3, 3 cells of the pairing, the visit date
    assert r.normalised == 10
    assert "已将 10 个全角字符值规范为半角" in r.summary()
    assert "\n" not in r.summary()
    warned = [w for w in r.warnings if "校验位" in w]
    assert len(warned) == 1 and warned[0].startswith("households.csv:3: id_number:"), r.warnings
    assert "末位应为 7" in warned[0]
    with engine.connect() as conn:
        h = {x.household_id: x for x in conn.execute(select(schema.households))}
        p = conn.execute(select(schema.pairings)).one()
        v = conn.execute(select(schema.visits)).one()
    assert set(h) == {"H1", "H2"}
    assert h["H1"].id_number == "13010219900101127X"  # stored half-width
    assert (h["H1"].village_code, h["H1"].status, h["H1"].size) == (V1, "not_lifted", 3)
    assert h["H1"].head_name == "李Ａ　四"  # names are stored as typed
    assert h["H2"].id_number == "130102199001011230"  # a warning only; stored (half-width) as given
    assert (p.helper_id, p.household_id, p.start_date, p.approved) == ("A", "H1", dt.date(2025, 1, 1), True)
    assert (v.visit_date, v.note) == (dt.date(2026, 6, 30), "ＡＢ　走访１次")


def test_fullwidth_id_with_wrong_check_digit_is_an_error_with_strict_ids(engine, tmp_path):
    ledger = base(households=[{**hh("H1", V1), "id_number": fullwidth("130102199001011230")}])
    with pytest.raises(ImportFailed) as info:
        import_ledger(engine, write_ledger(tmp_path / "fw", ledger), strict_ids=True)
    assert any(e.startswith("households.csv:2: id_number: 身份证号校验位错误") for e in info.value.errors), info.value.errors
    assert row_counts(engine)["households"] == 0
