"""Writes the malformed-ledger corpus next to this file (the manifest, cases.toml, is kept by hand).

    .venv/bin/python tests/malformed/build.py

The cases are committed; this script only documents how the byte-level ones (GBK, UTF-16, broken
bytes, damaged workbooks) were made, and rewrites them (workbooks differ only in their timestamps). Every case is imported on top of
the seed ledger of tests/test_malformed.py (regions, units and helpers of tests/ledgers.py plus
households H1/H2, pairing P1, visit VS1, rating A/2025 and assignment U2/V1): ids such as helper A,
household H1 or village 130102001001 exist, everything else must come with the case itself.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
V1, V2, V3 = "130102001001", "130102001002", "130202001001"
TOWNSHIP = "130102001"

HH = ["household_id", "head_name", "village_code", "status", "id_number", "size"]
HH_ZH = ["户编号", "户主姓名", "村代码", "状态", "身份证号", "人口数"]
PAIR = ["pairing_id", "helper_id", "household_id", "start_date", "end_date", "end_reason", "approved"]
VISIT = ["visit_id", "helper_id", "household_id", "visit_date", "mode", "photo_uploaded", "note"]
HELPER = ["helper_id", "name", "unit_id", "department", "category", "position", "phone"]


def text(rows, delimiter=",", lineterminator="\r\n") -> str:
    """CSV the way Excel writes it (CRLF line ends, quotes only where needed)."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=lineterminator)
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def case(name: str, files: dict[str, bytes | str]) -> None:
    folder = HERE / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for fname, data in files.items():
        (folder / fname).write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def csv_cases() -> None:
    # --- encodings -------------------------------------------------------------------------
    case("gbk_chinese_headers", {"households.csv": text([
        HH_ZH,
        ["H10", "张三", V1, "未脱贫", "", "3"],
        ["H11", "李四", V1, "贫困户", "", "2"],
    ]).encode("gbk")})
    case("utf8_bom", {"households.csv": "\ufeff" + text([
        HH,
        ["H10", "王五", "130102", "not_lifted", "", "3"],
    ])})
    case("utf16_bom_comma", {"households.csv": text([
        HH_ZH,
        ["H10", "赵六", V1, "已脱贫享受政策", "", "4"],
        ["H11", "钱七", "139999999999", "未脱贫", "", "1"],
    ]).encode("utf-16")})  # little-endian with BOM
    case("utf16_tab_excel_unicode_text", {"visits.csv": text([
        ["走访编号", "帮扶责任人编号", "户编号", "走访日期", "方式", "照片上传", "记录"],
        ["VS10", "A", "H1", "2026-01-05", "上门", "是", "了解生产生活情况"],
    ], delimiter="\t").encode("utf-16")})
    case("utf16_no_bom", {"pairings.csv": text([
        PAIR,
        ["P10", "Z9", "H1", "2025-03-01", "", "", ""],
    ]).encode("utf-16-le")})
    case("utf8_damaged", {
        # lines pasted from a GBK file into a UTF-8 one
        "households.csv": text([HH, ["H10", "孙八", V1, "未脱贫", "", "2"]]).encode("utf-8")
        + text([["H11", "周九", V1, "未脱贫", "", "2"]]).encode("gbk")
        + text([["H12", "吴十", V1, "未脱贫", "", "2"]]).encode("utf-8"),
        # cut off in the middle of a character (a copy that did not finish)
        "helpers.csv": text([HELPER, ["N1", "郑一", "U1", "", "cadre", "", ""], ["N2", "冯二"]]).encode("utf-8")[:-4],
    })
    rnd = random.Random(8)
    case("binary_as_csv", {"households.csv": b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(rnd.randrange(256) for _ in range(600))})
    case("bom_only", {"households.csv": b"\xef\xbb\xbf"})
    case("empty_file", {"households.csv": b"", "pairings.csv": text([PAIR, ["P10", "A", "H1", "2025-03-01", "", "", ""]])})
    case("header_only", {
        "households.csv": text([HH]),
        "pairings.csv": text([PAIR]),
        "visits.csv": text([["visit_id", "helper_id", "household_id", "visit_date", "photo_uploaded"]]),
    })
    case("blank_rows_before_header", {"households.csv": text([
        ["", "", "", "", "", ""],
        [],
        HH,
        ["H10", "陈一", V1, "not_lifted", "", "2"],
        ["", "", "", "", "", ""],
        ["H11", "陈二", V1, "脱贫", "", "2"],
    ])})
    case("title_row_above_header", {"households.csv": text([
        ["2026年第一季度贫困户台账", "", "", "", "", ""],
        HH_ZH,
        ["H10", "陈三", V1, "未脱贫", "", "2"],
    ])})
    case("nul_byte", {"visits.csv": text([VISIT, ["VS10", "A", "H1", "2026-01-05", "in_home", "1", "入户\x00走访"]])})

    # --- Excel damage to ids ---------------------------------------------------------------
    case("scientific_notation_ids", {
        "households.csv": text([HH,
                                ["H10", "褚一", V1, "not_lifted", "1.30102E+17", "3"],
                                ["H11", "卫二", V1, "not_lifted", "1.30102199001011E+17", "3"]]),
        "helpers.csv": text([HELPER, ["N1", "蒋三", "U1", "", "cadre", "", "1.38E+10"]]),
    })
    case("id_check_digit", {"households.csv": text([
        HH,
        ["H10", "沈一", V1, "not_lifted", "130102199001011237", "3"],  # right check digit
        ["H11", "沈二", V1, "not_lifted", "130102199001011234", "3"],  # wrong check digit
        ["H12", "沈三", V1, "not_lifted", "13010219850715103x", "3"],  # right, lower-case x
        ["H13", "沈四", V1, "not_lifted", "130102900101123", "3"],     # old 15-digit id: passed through
        ["H14", "沈五", V1, "not_lifted", "无", "3"],                   # placeholder: passed through
        ["H15", "沈六", V1, "not_lifted", "130102199001011000", "3"],  # Excel turned the last digits to 0
        ["H16", "沈七", V1, "not_lifted", "TEST00000000000001", "3"],  # a test id from another system
    ])})

    # --- dates -----------------------------------------------------------------------------
    case("impossible_dates", {
        "pairings.csv": text([PAIR,
                              ["P10", "A", "H1", "2026-02-30", "", "", ""],
                              ["P11", "A", "H1", "2026-13-01", "", "", ""],
                              ["P12", "A", "H1", "2025/2/29", "", "", ""],
                              ["P13", "A", "H1", "2025-03-01", "2026-00-10", "other", "1"]]),
        "visits.csv": text([VISIT,
                            ["VS10", "A", "H1", "2026年3月1日", "in_home", "1", ""],
                            ["VS11", "A", "H1", "46023", "in_home", "1", ""],
                            ["VS12", "A", "H1", "", "in_home", "1", ""]]),
    })
    case("end_before_start", {
        "pairings.csv": text([PAIR, ["P10", "A", "H1", "2025-03-01", "2025-02-28", "transfer", "是"]]),
        "assignments.csv": text([["unit_id", "village_code", "start_date", "end_date"],
                                 ["U3", V2, "2025-06-01", "2024/6/1"]]),
    })

    # --- references ------------------------------------------------------------------------
    case("dangling_helper", {
        "pairings.csv": text([PAIR, ["P10", "Z9", "H1", "2025-03-01", "", "", ""]]),
        "visits.csv": text([VISIT, ["VS10", "Z9", "H1", "2026-01-05", "phone", "0", ""]]),
        "ratings.csv": text([["helper_id", "year", "grade"], ["Z9", "2025", "qualified"]]),
    })
    case("dangling_household", {
        "pairings.csv": text([PAIR, ["P10", "A", "H404", "2025-03-01", "", "", ""]]),
        "visits.csv": text([VISIT, ["VS10", "B", "H404", "2026-01-05", "wechat", "", ""]]),
    })
    case("dangling_unit", {
        "helpers.csv": text([HELPER, ["N1", "韩一", "U404", "", "cadre", "", ""]]),
        "assignments.csv": text([["unit_id", "village_code", "start_date", "end_date"], ["U404", V2, "2025-01-01", ""]]),
    })
    case("dangling_region", {"units.csv": text([["unit_id", "name", "level", "region_code"],
                                                ["U10", "某县民政局", "county", "139999"]])})
    case("dangling_village", {
        "households.csv": text([HH, ["H10", "杨一", "130102001999", "not_lifted", "", "2"]]),
        "assignments.csv": text([["unit_id", "village_code", "start_date", "end_date"], ["U1", "130102001999", "2025-01-01", ""]]),
    })
    case("village_not_village", {
        "households.csv": text([HH, ["H10", "朱一", TOWNSHIP, "not_lifted", "", "2"]]),
        "assignments.csv": text([["unit_id", "village_code", "start_date", "end_date"], ["U1", "130100", "2025-01-01", ""]]),
    })
    case("region_parent_missing", {"regions.csv": text([
        ["code", "name", "level", "parent_code"],
        ["139900", "某市", "city", "130000"],
        ["139901", "孤儿县", "county", "138888"],
    ])})
    case("region_parent_level", {"regions.csv": text([
        ["code", "name", "level", "parent_code"],
        ["130102001003", "北村", "village", V1],          # parent is a village, not higher
        ["130103", "桥西区", "county", "130102"],          # parent is a county: same level
        ["130300", "秦皇岛市", "city", TOWNSHIP],           # parent is lower
        ["130400", "邯郸市", "市", "130400"],               # its own parent
    ])})

    # --- duplicates within the import ------------------------------------------------------
    case("duplicate_ids", {
        "helpers.csv": text([HELPER, ["N1", "秦一", "U1", "", "cadre", "", ""], ["N1", "秦二", "U1", "", "cadre", "", ""]]),
        "households.csv": text([HH, ["H10", "尤一", V1, "not_lifted", "", "2"], [" H10 ", "尤二", V1, "not_lifted", "", "2"]]),
        "visits.csv": text([VISIT, ["VS10", "A", "H1", "2026-01-05", "in_home", "1", ""],
                            ["VS11", "A", "H1", "2026-01-06", "in_home", "1", ""],
                            ["VS10", "A", "H1", "2026-01-07", "phone", "0", ""]]),
    })
    case("duplicate_ratings", {"ratings.csv": text([
        ["helper_id", "year", "grade"],
        ["A", "2025", "excellent"],
        ["B", "2024", "qualified"],
        ["A", "2025.0", "合格"],
        ["B", "2024", "qualified"],
    ])})
    case("duplicate_assignments", {"assignments.csv": text([
        ["unit_id", "village_code", "start_date", "end_date"],
        ["U3", V2, "2025-01-01", ""],
        ["U3", V2, "2025/1/1", "2025-12-31"],
        ["U3", V2, "2025-01-02", ""],
    ])})

    # --- columns and values ----------------------------------------------------------------
    case("missing_required_column", {
        "helpers.csv": text([["helper_id", "name", "unit_id", "department"], ["N1", "许一", "U1", "办公室"]]),
        "pairings.csv": text([["pairing_id", "helper_id", "household_id", "end_date"], ["P10", "A", "H1", ""]]),
    })
    case("duplicate_column", {"households.csv": text([
        ["household_id", "head_name", "village_code", "status", "户编号"],
        ["H10", "何一", V1, "not_lifted", "H10"],
    ])})
    case("unknown_enum", {
        "units.csv": text([["unit_id", "name", "level", "region_code"], ["U10", "某部委", "部级", "130000"]]),
        "helpers.csv": text([HELPER, ["N1", "吕一", "U1", "", "临时工", "", ""]]),
        "households.csv": text([HH, ["H10", "施一", V1, "poor", "", "1"]]),
        "pairings.csv": text([PAIR, ["P10", "A", "H1", "2025-01-01", "2025-06-30", "退休", "1"]]),
        "visits.csv": text([VISIT, ["VS10", "A", "H1", "2026-01-05", "上门", "1", ""]]),
        "ratings.csv": text([["helper_id", "year", "grade"], ["C", "2025", "良好"]]),
    })
    case("bad_numbers_and_bools", {
        "households.csv": text([HH,
                                ["H10", "张一", V1, "not_lifted", "", "三口"],
                                ["H11", "张二", V1, "not_lifted", "", "-1"],
                                ["H12", "张三", V1, "not_lifted", "", "2.5"],
                                ["H13", "张四", V1, "not_lifted", "", "99999999999"]]),
        "pairings.csv": text([PAIR, ["P10", "A", "H1", "2025-01-01", "", "", "√"]]),
        "ratings.csv": text([["helper_id", "year", "grade"], ["C", "25", "qualified"]]),
    })
    case("values_too_long", {
        "households.csv": text([HH, ["H" + "0" * 44, "孔一", V1, "not_lifted", "", "1"],
                                ["H10", "曹" * 101, V1, "not_lifted", "", "1"]]),
    })
    case("formula_cells_in_enums", {
        "visits.csv": text([VISIT, ["VS10", "A", "H1", "2026-01-05", '=HYPERLINK("http://evil.example/","入户")', "1",
                                    "=1+1"]]),
        "helpers.csv": text([HELPER, ["N1", "+cmd|' /C calc'!A0", "U1", "", "+cmd|' /C calc'!A0", "", ""]]),
        "households.csv": text([HH, ["H10", "@SUM(A1:A2)", V1, "@SUM(A1:A2)", "", "1"]]),
    })
    case("mixed_headers", {
        "households.csv": text([
            ["户编号", "*head_name", "村代码", "status", "身份证号", "size", "备注"],
            ["H10", "严一", V1, "未脱贫", "", "2", "新识别"],
            ["H11", "", V1, "exited", "", "2", ""],
        ]),
        "pairings.csv": text([
            ["pairing_id", "帮扶责任人编号", "household_id", "开始日期", "end_date", "结束原因", "approved"],
            ["P10", "A", "H10", "2025-03-01", "", "", "否"],
            ["P11", "A", "H11", "2025-03-01", "2025-02-01", "调离", "是"],
        ]),
    })

    # --- CSV structure ---------------------------------------------------------------------
    case("ragged_rows", {"visits.csv": text([
        VISIT,
        ["VS10", "A", "H1", "2026-01-05", "in_home", "1", "正常"],
        ["VS11", "A", "H1", "2026-01-06", "in_home", "1", "走访", "了解收入情况"],  # unquoted comma in the note
        ["VS12", "A", "H1", "2026-01-07"],                                          # mode and the rest missing
        ["VS13", "A", "H1", "2026-01-08", "phone", "0", "", "", ""],                # trailing empty cells: fine
    ])})
    case("embedded_newlines", {"visits.csv": text([
        VISIT,
        ["VS10", "A", "H1", "2026-01-05", "in_home", "1", "第一行"],
        ["VS11", "A", "H1", "2026-01-06", "上门", "1", "走访记录：\n1. 了解收入\n2. 讲解政策"],
        ["VS12", "A", "H404", "2026-01-07", "in_home", "1", "正常"],
    ])})
    case("unclosed_quote", {"visits.csv": text([
        VISIT,
        ["VS10", "A", "H1", "2026-01-05", "in_home", "1", "正常"],
    ]) + 'VS11,A,H1,2026-01-06,in_home,1,"他说：好的\r\nVS12,A,H1,2026-01-07,in_home,1,正常\r\n'})
    case("bad_quoting", {"visits.csv": text([
        VISIT,
        ["VS10", "A", "H1", "2026-01-05", "in_home", "1", "正常"],
    ]) + 'VS11,A,H1,2026-01-06,in_home,1,"好的"谢谢\r\n'})


# --- workbooks ---------------------------------------------------------------------------------


def _workbook(sheets: dict[str, list[list]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _rezip(data: bytes, edit) -> bytes:
    """Rewrite the members of a workbook: edit(name, bytes) -> bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, edit(info.filename, src.read(info.filename)))
    return out.getvalue()


def xlsx_cases() -> None:
    import datetime as dt

    rnd = random.Random(1)
    (HERE / "xlsx_random_bytes.xlsx").write_bytes(bytes(rnd.randrange(256) for _ in range(4096)))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "这不是工作簿")
    (HERE / "xlsx_zip_not_workbook.xlsx").write_bytes(buf.getvalue())

    good = _workbook({"households": [HH] + [[f"H{i}", "户主", V1, "not_lifted", None, 2] for i in range(10, 60)]})
    (HERE / "xlsx_truncated.xlsx").write_bytes(good[: len(good) // 2])
    (HERE / "xlsx_old_xls.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(rnd.randrange(256) for _ in range(2040)))

    many = _workbook({"households": [HH] + [[f"H{i}", f"户主{i}", V1, "not_lifted", None, 2] for i in range(10, 400)]})

    def break_sheet(name, data):
        if name == "xl/worksheets/sheet1.xml":
            return data[: len(data) * 2 // 3] + b"<row r=\"x\"><c><<<"
        return data
    (HERE / "xlsx_corrupt_sheet.xlsx").write_bytes(_rezip(many, break_sheet))

    (HERE / "xlsx_excel_damage.xlsx").write_bytes(_workbook({
        "households": [[None] * 6, HH_ZH,
                       ["H10", "金一", V1, "未脱贫", 130102199001011237, 3],    # an id typed as a number
                       ["H11", "金二", V1, "未脱贫", "130102199001011237", 3.0]],
        "pairings": [PAIR,
                     ["P10", "#N/A", "H1", dt.datetime(2025, 3, 1), None, None, True],  # VLOOKUP that failed
                     ["P11", "A", "H10", dt.datetime(2025, 3, 1), dt.date(2025, 2, 1), "transfer", False]],
        "visits": [VISIT, ["VS10", "A", "H1", "#VALUE!", "in_home", 1, None]],
        "说明": [["本工作簿供测试使用"]],
    }))

    dim = _workbook({"households": [HH] + [[f"H{i}", "户主", V1, "not_lifted", None, 2] for i in range(10, 13)]
                     + [["H13", "户主", V1, "不存在的状态", None, 2]]})
    assert b'<dimension ref="A1:F5" />' in zipfile.ZipFile(io.BytesIO(dim)).read("xl/worksheets/sheet1.xml")

    def wrong_dimension(name, data):
        if name == "xl/worksheets/sheet1.xml":
            return data.replace(b'<dimension ref="A1:F5" />', b'<dimension ref="A1:B2" />')
        return data
    (HERE / "xlsx_wrong_dimension.xlsx").write_bytes(_rezip(dim, wrong_dimension))

    (HERE / "xlsx_duplicate_sheets.xlsx").write_bytes(_workbook({
        "households": [HH, ["H10", "户主", V1, "not_lifted", None, 2]],
        "households.csv": [HH, ["H11", "户主", V1, "not_lifted", None, 2]],
    }))

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "helpers"
    ws.append(HELPER)
    ws.append(["N1", "=HYPERLINK(\"http://evil.example/\",\"点我\")", "U1", None, "+cmd|' /C calc'!A0", None, None])
    ws.append(["N2", "=CONCATENATE(\"张\",\"三\")", "U1", None, "cadre", None, None])  # a real formula, no cached value
    ws["B2"].data_type = "s"  # typed text that only looks like a formula
    ws["E2"].data_type = "s"
    buf = io.BytesIO()
    wb.save(buf)
    (HERE / "xlsx_formula_cells.xlsx").write_bytes(buf.getvalue())


if __name__ == "__main__":
    csv_cases()
    xlsx_cases()
    print("written to", HERE)
