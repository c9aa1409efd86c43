"""Import robustness: a corpus of malformed ledgers (tests/malformed/, manifest cases.toml), a huge
ledger with one bad row, formula-like cells, the ID check digit, and random corruption (hypothesis).

Every malformed import goes through `bangfu import` in-process and must exit 1, report each error as
`file:line: column: reason`, print no traceback and leave every ledger table as it was.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shutil
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from data_access import schema
from data_access.cli import main
from data_access.db import make_engine, upgrade
from data_access.ledger import SPECS, RowError, convert, import_ledger

from .conftest import write_ledger
from .ledgers import V1, V2, V3, base, hh, pr

MALFORMED = Path(__file__).parent / "malformed"
MANIFEST = tomllib.loads((MALFORMED / "cases.toml").read_text(encoding="utf-8"))["case"]
ERROR_LINE = re.compile(r"^[^:]+:\d+: [^:]+: .+$")
FAILED_LINE = re.compile(r"^导入失败：共 (\d+) 处错误，数据库未做任何修改$")


def seed_ledger() -> dict[str, list[dict]]:
    """The valid ledger every malformed case is imported on top of (see tests/malformed/build.py)."""
    return base(
        households=[hh("H1", V1), hh("H2", V3)],
        pairings=[pr("P1", "A", "H1", "2025-01-01")],
        visits=[{"visit_id": "VS1", "helper_id": "A", "household_id": "H1", "visit_date": "2026-01-05",
                 "mode": "in_home"}],
        ratings=[{"helper_id": "A", "year": "2025", "grade": "excellent"}],
        assignments=[{"unit_id": "U2", "village_code": V1, "start_date": "2025-01-01"}],
    )


def seed(engine, folder: Path) -> None:
    import_ledger(engine, write_ledger(folder, seed_ledger()), refresh_summaries=False)


def snapshot(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {n: sorted(tuple(map(repr, r)) for r in conn.execute(select(t))) for n, t in schema.LEDGER_TABLES.items()}


def run_import(path: Path, db_url: str, capsys=None, *extra: str) -> tuple[int, str, str]:
    """`bangfu import PATH --db URL` in-process: (exit status, stdout, stderr)."""
    argv = ["import", str(path), "--db", db_url, *extra]
    if capsys is not None:
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        return code, out, err
    out_buf, err_buf = io.StringIO(), io.StringIO()  # where no capsys is at hand (hypothesis examples)
    with contextlib.redirect_stdout(out_buf), contextlib.redirect_stderr(err_buf):
        code = main(argv)
    return code, out_buf.getvalue(), err_buf.getvalue()


def error_lines(err: str) -> list[str]:
    """The error lines of a failed import; checks their shape and the closing summary line."""
    lines = err.splitlines()
    assert lines, "nothing on stderr"
    m = FAILED_LINE.match(lines[-1])
    assert m, f"last line is not the failure summary: {lines[-1]!r}\n{err}"
    errors = lines[:-1]
    assert int(m.group(1)) == len(errors), err
    bad = [e for e in errors if not ERROR_LINE.match(e)]
    assert not bad, f"not file:line: column: reason: {bad}"
    return errors


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


def test_manifest_covers_the_corpus():
    names = [c["name"] for c in MANIFEST]
    assert len(names) >= 30 and len(set(names)) == len(names)
    on_disk = {p.name for p in MALFORMED.iterdir()
               if (p.is_dir() and p.name != "__pycache__") or p.suffix == ".xlsx"}
    assert on_disk == {c["path"] for c in MANIFEST}
    for c in MANIFEST:
        assert c["errors"], c["name"]
        for pattern in c["errors"] + c.get("absent", []):
            re.compile(pattern)
        # at least file, line and column are asserted by every expected error
        assert all(re.match(r"^\^[^:]+:(\d+|\\d\+): [^:]+: ", p) for p in c["errors"]), c["name"]


@pytest.mark.parametrize("case", MANIFEST, ids=[c["name"] for c in MANIFEST])
def test_malformed_ledger_is_rejected(case, engine, db_url, tmp_path, capsys, monkeypatch):
    # the corpus is checked with strict IDs: a wrong check digit is then an error, not a warning
    monkeypatch.setenv("BANGFU_STRICT_IDS", "1")
    seed(engine, tmp_path / "seed")
    before = snapshot(engine)
    code, out, err = run_import(MALFORMED / case["path"], db_url, capsys)
    assert "Traceback" not in err
    assert code == 1, err
    assert out == ""
    errors = error_lines(err)
    for pattern in case["errors"]:
        assert any(re.search(pattern, e) for e in errors), (pattern, errors)
    for pattern in case.get("absent", []):
        assert not any(re.search(pattern, e) for e in errors), (pattern, errors)
    if "count" in case:
        assert len(errors) == case["count"], errors
    assert snapshot(engine) == before


def test_wrong_check_digit_is_a_warning_by_default(engine, db_url, tmp_path, capsys, monkeypatch):
    """CONTRACT.md does not list the check digit among validation errors: without strict IDs the
    ledger imports, and each wrong check digit is reported as a warning with file, line and column."""
    monkeypatch.delenv("BANGFU_STRICT_IDS", raising=False)
    seed(engine, tmp_path / "seed")
    code, out, err = run_import(MALFORMED / "id_check_digit", db_url, capsys)
    assert code == 0, err
    assert re.search(r"households\.csv:3: id_number: 身份证号校验位错误：130102\*{8}1234 的末位应为 7", err)
    assert "Traceback" not in err and out.startswith("导入完成")
    code, _, err = run_import(MALFORMED / "id_check_digit", db_url, capsys, "--strict-ids")
    assert code == 1 and "households.csv:3: id_number: 身份证号校验位错误" in err


# --------------------------------------------------------------------------------------------
# A huge ledger with one bad row near the end
# --------------------------------------------------------------------------------------------

HUGE = 200_000


def test_huge_ledger_with_one_bad_row(engine, db_url, tmp_path, capsys):
    seed(engine, tmp_path / "seed")
    before = snapshot(engine)
    folder = tmp_path / "huge"
    folder.mkdir()
    bad = HUGE - 7
    with open(folder / "visits.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["visit_id", "helper_id", "household_id", "visit_date", "mode", "photo_uploaded", "note"])
        for i in range(HUGE):
            w.writerow([f"HV{i:07d}", "A" if i % 2 else "B", "H1" if i % 3 else "H2",
                        "2026-02-30" if i == bad else f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}",
                        ("in_home", "phone", "wechat")[i % 3], i % 2, "走访" if i % 5 else ""])
    code, out, err = run_import(folder, db_url, capsys)
    assert "Traceback" not in err
    assert code == 1, err[-2000:]
    assert error_lines(err) == [f"visits.csv:{bad + 2}: visit_date: 日期不存在 '2026-02-30'"]
    assert snapshot(engine) == before


# --------------------------------------------------------------------------------------------
# Formula-like cells are data
# --------------------------------------------------------------------------------------------

FORMULAS = {
    "hyperlink": '=HYPERLINK("http://evil.example/","点我")',
    "cmd": "+cmd|' /C calc'!A0",
    "sum": "@SUM(A1:A2)",
    "minus": "-2+3",
}


def test_formula_cells_are_stored_verbatim_and_neutralised_on_export(engine, db_url, tmp_path, capsys):
    """Decision: text that looks like a spreadsheet formula is data. Import stores it verbatim and never
    evaluates it; data_access.export prefixes it with an apostrophe so Excel shows it as text."""
    from openpyxl import Workbook, load_workbook

    from data_access.export import to_csv_bytes, to_xlsx_bytes

    seed(engine, tmp_path / "seed")
    ledger = {
        "helpers": [{"helper_id": "N1", "name": FORMULAS["hyperlink"], "unit_id": "U1", "category": "cadre",
                     "department": FORMULAS["sum"], "position": FORMULAS["minus"]}],
        "visits": [{"visit_id": "VS10", "helper_id": "A", "household_id": "H1", "visit_date": "2026-01-05",
                    "mode": "in_home", "note": FORMULAS["cmd"]}],
    }
    code, _, err = run_import(write_ledger(tmp_path / "csv", ledger), db_url, capsys)
    assert code == 0, err
    # the same from a workbook whose cells are text that looks like formulas
    wb = Workbook()
    ws = wb.active
    ws.title = "households"
    ws.append(["household_id", "head_name", "village_code", "status"])
    ws.append(["H10", FORMULAS["cmd"], V2, "not_lifted"])
    ws["B2"].data_type = "s"
    wb.save(tmp_path / "f.xlsx")
    code, _, err = run_import(tmp_path / "f.xlsx", db_url, capsys)
    assert code == 0, err

    with engine.connect() as conn:
        helper = conn.execute(select(schema.helpers).where(schema.helpers.c.helper_id == "N1")).one()
        note = conn.execute(select(schema.visits.c.note).where(schema.visits.c.visit_id == "VS10")).scalar()
        head = conn.execute(select(schema.households.c.head_name).where(schema.households.c.household_id == "H10")).scalar()
    assert (helper.name, helper.department, helper.position) == (FORMULAS["hyperlink"], FORMULAS["sum"], FORMULAS["minus"])
    assert note == FORMULAS["cmd"] and head == FORMULAS["cmd"]

    import pandas as pd

    df = pd.DataFrame({"name": [helper.name, helper.department, helper.position, note, "张三"]})
    exported = list(csv.reader(io.StringIO(to_csv_bytes(df).decode("utf-8-sig"))))
    assert [r[0] for r in exported[1:]] == ["'" + FORMULAS["hyperlink"], "'" + FORMULAS["sum"],
                                           "'" + FORMULAS["minus"], "'" + FORMULAS["cmd"], "张三"]
    book = load_workbook(io.BytesIO(to_xlsx_bytes(df)))
    cells = [c for (c,) in book.active.iter_rows(min_row=2)]
    assert [c.value for c in cells] == [r[0] for r in exported[1:]]
    assert all(c.data_type == "s" for c in cells)  # text, not formulas


# --------------------------------------------------------------------------------------------
# The ID check digit (ISO 7064 MOD 11-2)
# --------------------------------------------------------------------------------------------

ID_NUMBER = next(c for c in SPECS["households"] if c.name == "id_number")


@pytest.mark.parametrize("value, stored", [
    ("130102199001011237", "130102199001011237"),
    ("13010219850715103X", "13010219850715103X"),
    ("13010219850715103x", "13010219850715103X"),  # stored with the upper-case X of GB 11643
    ("130102900101123", "130102900101123"),        # 15-digit ids pass through
    ("TEST00000000000001", "TEST00000000000001"),  # so do placeholders of other shapes
    ("1301021990010112345", "1301021990010112345"),
    ("无", "无"),
])
def test_id_numbers_that_pass(value, stored):
    assert convert(ID_NUMBER, value) == stored


@pytest.mark.parametrize("value, check", [
    ("130102199001011234", "7"), ("130102199001011000", "X"), ("130102198507151031", "X"),
])
def test_id_numbers_with_a_wrong_check_digit(value, check):
    with pytest.raises(RowError, match=rf"身份证号校验位错误：{value[:6]}\*{{8}}{value[-4:]} 的末位应为 {check}"):
        convert(ID_NUMBER, value)


# --------------------------------------------------------------------------------------------
# Random corruption (hypothesis): never half a ledger, never a traceback
# --------------------------------------------------------------------------------------------


def small_ledger() -> dict[str, list[list[str]]]:
    """A valid ledger on top of the seed, as rows of cells (header first)."""
    tables = {
        "helpers": [{"helper_id": "N1", "name": "新人甲", "unit_id": "U3", "category": "干部职工", "phone": "13900001111"}],
        "households": [hh("H10", V1), hh("H11", V2, "已脱贫享受政策"), {**hh("H12", V3), "id_number": "13010219850715103X"}],
        "pairings": [pr("P10", "N1", "H10", "2025-03-01"), pr("P11", "B", "H11", "2025/03/02", "2026-01-01", "调离", "是")],
        "visits": [{"visit_id": "VS10", "helper_id": "N1", "household_id": "H10", "visit_date": "2026-01-05",
                    "mode": "入户", "photo_uploaded": "1", "note": "了解情况，\n讲解政策"},
                   {"visit_id": "VS11", "helper_id": "B", "household_id": "H11", "visit_date": "2026-01-06",
                    "mode": "phone", "photo_uploaded": "否", "note": ""}],
        "ratings": [{"helper_id": "N1", "year": "2025", "grade": "合格"}],
        "assignments": [{"unit_id": "U3", "village_code": V2, "start_date": "2025-01-01", "end_date": "2025-12-31"}],
    }
    out = {}
    for name, rows in tables.items():
        cols = list(dict.fromkeys(k for r in rows for k in r))
        out[name] = [cols] + [["" if r.get(c) is None else str(r.get(c)) for c in cols] for r in rows]
    return out


TRICKY = ["", " ", "\u3000", "=1+1", "@SUM(A1)", "1.30102E+17", "130102199001011234", "2026-02-30", "2026-13-01",
          "2024-02-29", "H1", "A", "U1", V1, "130102", "未脱贫", "exited", "是", "\n", '"', '""', ",", "\ufeff", "\x00",
          "\u200b", "x" * 300, "-1", "1e400", "99999999999", "NaN", "#N/A", "н", "𠀀", "\r"]
cell_text = st.one_of(st.sampled_from(TRICKY), st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
ENCODINGS = ["utf-8", "utf-8-sig", "gb18030", "utf-16", "utf-16-le", "utf-16-be"]
ROW_OPS = ["replace_cell", "drop_cell", "swap_header_names", "swap_columns", "delete_header", "blank_header",
           "duplicate_row", "append_cell"]
BYTE_OPS = ["truncate", "insert_bytes", "overwrite_byte"]


@st.composite
def corrupted_ledger(draw) -> dict[str, bytes]:
    files = small_ledger()
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(files)))
        rows = files[name]
        op = draw(st.sampled_from(ROW_OPS))
        r = draw(st.integers(0, len(rows) - 1))
        row = rows[r]
        if op == "replace_cell" and row:
            row[draw(st.integers(0, len(row) - 1))] = draw(cell_text)
        elif op == "drop_cell" and row:
            del row[draw(st.integers(0, len(row) - 1))]
        elif op == "append_cell":
            row.append(draw(cell_text))
        elif op in ("swap_header_names", "swap_columns"):
            width = len(rows[0])
            i, j = draw(st.integers(0, width - 1)), draw(st.integers(0, width - 1))
            for row in rows[:1] if op == "swap_header_names" else rows[1:]:
                if max(i, j) < len(row):
                    row[i], row[j] = row[j], row[i]
        elif op == "delete_header" and rows[0]:
            del rows[0][draw(st.integers(0, len(rows[0]) - 1))]
        elif op == "blank_header" and rows[0]:
            rows[0][draw(st.integers(0, len(rows[0]) - 1))] = ""
        elif op == "duplicate_row" and len(rows) > 1:
            rows.append(list(rows[draw(st.integers(1, len(rows) - 1))]))
    encoded = {}
    for name, rows in files.items():
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(rows)
        encoded[name] = buf.getvalue().encode(draw(st.sampled_from(ENCODINGS)) if draw(st.booleans()) else "utf-8")
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(sorted(encoded)))
        data = encoded[name]
        op = draw(st.sampled_from(BYTE_OPS))
        pos = draw(st.integers(0, len(data)))
        if op == "truncate":
            data = data[:pos]
        elif op == "insert_bytes":
            data = data[:pos] + draw(st.binary(min_size=1, max_size=8)) + data[pos:]
        elif data:
            pos = min(pos, len(data) - 1)
            data = data[:pos] + bytes([draw(st.integers(0, 255))]) + data[pos + 1:]
        encoded[name] = data
    return encoded


@pytest.fixture(scope="module")
def seeded_sqlite(tmp_path_factory):
    """A seeded SQLite database file; each example imports into a copy of it."""
    folder = tmp_path_factory.mktemp("seeded")
    path = folder / "seed.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    seed(engine, folder / "seed")
    before = snapshot(engine)
    engine.dispose()
    return path, before


def test_the_uncorrupted_ledger_imports(seeded_sqlite, tmp_path):
    path, _ = seeded_sqlite
    db = tmp_path / "db.sqlite"
    shutil.copy(path, db)
    folder = tmp_path / "l"
    folder.mkdir()
    for name, rows in small_ledger().items():
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
    code, out, err = run_import(folder, f"sqlite:///{db}")
    assert code == 0, err
    assert "households 新增 3" in out and "visits 新增 2" in out


def _variant_files(variant: str, folder: Path) -> Path:
    """small_ledger() written the way various tools and hands write it; all must import the same."""
    from openpyxl import Workbook

    tables = small_ledger()
    if variant == "xlsx_capitalised_blank_first_row":
        wb = Workbook()
        wb.remove(wb.active)
        for name, rows in tables.items():
            ws = wb.create_sheet(name.capitalize())
            ws.append([])  # a blank first row
            for r in rows:
                ws.append([c or None for c in r])
        wb.create_sheet("说明").append(["填表说明"])
        wb.create_sheet("regions")  # an empty tab of the template
        path = folder / "ledger.xlsx"
        wb.save(path)
        return path
    for name, rows in tables.items():
        delimiter, encoding, fname = ",", "utf-8", f"{name}.csv"
        if variant == "utf16_no_bom":
            encoding = "utf-16-le"
        elif variant == "utf16_tab":
            delimiter, encoding = "\t", "utf-16"
        elif variant == "gbk_marked_headers":
            encoding, fname = "gb18030", f"{name.capitalize()}.csv"
            rows = [[], ["*" + h for h in rows[0]]] + rows[1:]
        buf = io.StringIO()
        csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
        (folder / fname).write_bytes(buf.getvalue().encode(encoding))
    return folder


def test_variants_that_real_files_have_import_the_same(seeded_sqlite, tmp_path):
    path, _ = seeded_sqlite
    results = {}
    for variant in ("plain", "utf16_no_bom", "utf16_tab", "gbk_marked_headers", "xlsx_capitalised_blank_first_row"):
        folder = tmp_path / variant
        folder.mkdir()
        db = folder / "db.sqlite"
        shutil.copy(path, db)
        code, out, err = run_import(_variant_files(variant, folder), f"sqlite:///{db}")
        assert code == 0, (variant, err)
        engine = make_engine(f"sqlite:///{db}")
        results[variant] = snapshot(engine)
        engine.dispose()
        if variant.startswith("xlsx"):
            assert "[说明]: 不是台账表" in err and "[regions]: 工作表是空的" in err
    reference = results.pop("plain")
    assert "'13010219850715103X'" in str(reference["households"])
    for variant, snap in results.items():
        assert snap == reference, variant


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(files=corrupted_ledger())
def test_random_corruption_never_writes_half_a_ledger(seeded_sqlite, files):
    path, before = seeded_sqlite
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        db = tmp / "db.sqlite"
        shutil.copy(path, db)
        folder = tmp / "ledger"
        folder.mkdir()
        for name, data in files.items():
            (folder / f"{name}.csv").write_bytes(data)
        code, out, err = run_import(folder, f"sqlite:///{db}")
        event(f"exit {code}")
        assert "Traceback" not in err
        assert code in (0, 1), err
        if code == 1:
            error_lines(err)  # every line is file:line: column: reason
            engine = make_engine(f"sqlite:///{db}")
            try:
                assert snapshot(engine) == before
            finally:
                engine.dispose()
        else:
            assert out.startswith("导入完成：")
