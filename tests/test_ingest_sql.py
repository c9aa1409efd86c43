"""The PostgreSQL import validates in SQL after a raw COPY (data_access/ledger.py, "SQL validation"); the
Python validation stays for SQLite, workbooks and files SQL cannot take. Both must say exactly the same:
the same errors in the same order for every malformed ledger, the same warnings, the same rows written.
PostgreSQL only: SQLite has one path (it validates in Python), which test_import/test_malformed cover."""

from __future__ import annotations

import shutil
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from sqlalchemy import select, text

from data_access import schema
from data_access.ledger import ImportFailed, import_ledger

from .conftest import _empty, write_ledger
from .ledgers import V1, V2, base, hh, pr
from .test_import import bad_ledger, fullwidth, good_ledger
from .test_malformed import MALFORMED, MANIFEST, corrupted_ledger, seed_ledger, small_ledger

# corpus cases the SQL validation hands to Python on purpose (NUL bytes cannot be COPYed as text)
PYTHON_ON_PURPOSE = {"nul_byte"}


@pytest.fixture
def pg(pg_engine):
    _empty(pg_engine)
    return pg_engine


def snapshot(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {n: sorted(tuple(map(repr, r)) for r in conn.execute(select(t))) for n, t in schema.LEDGER_TABLES.items()}


def attempt(engine, path, validation: str, **kw):
    """(validated_by, errors or None, result or None) of one import."""
    try:
        r = import_ledger(engine, path, validation=validation, refresh_summaries=False, **kw)
    except ImportFailed as exc:
        return exc.validated_by, exc.errors, None
    return r.validated_by, None, r


def both_paths(engine, path, seed_folder=None, **kw):
    """Import PATH by the SQL path and by the Python path, each into the same starting database.
    Returns ((by, errors, result, snapshot) for sql, the same for python)."""
    out = []
    for validation in ("auto", "python"):
        _empty(engine)
        if seed_folder is not None:
            import_ledger(engine, seed_folder, refresh_summaries=False, validation="python")
        by, errors, result = attempt(engine, path, validation, **kw)
        out.append((by, errors, result, snapshot(engine)))
    return out


def same_outcome(sql, py):
    """Everything the caller sees: errors (order included), or counts, normalised values and warnings."""
    assert sql[1] == py[1]
    if sql[2] is None:
        assert py[2] is None
    else:
        for attr in ("inserted", "updated", "unchanged", "warnings", "normalised", "replaced_demo"):
            assert getattr(sql[2], attr) == getattr(py[2], attr), attr
    assert sql[3] == py[3]


@pytest.fixture(scope="module")
def seed_state() -> dict:
    return {}


@pytest.fixture
def seeded(pg_engine, tmp_path_factory, seed_state):
    """The PostgreSQL test database holding the corpus' seed ledger; seeded again only when a test changed it
    (a malformed import writes nothing, so the corpus cases share one seeding)."""
    if "snap" not in seed_state or snapshot(pg_engine) != seed_state["snap"]:
        _empty(pg_engine)
        folder = write_ledger(tmp_path_factory.mktemp("seed"), seed_ledger())
        import_ledger(pg_engine, folder, refresh_summaries=False, validation="python")
        seed_state["snap"] = snapshot(pg_engine)
    return pg_engine


@pytest.mark.parametrize("case", MANIFEST, ids=[c["name"] for c in MANIFEST])
def test_every_malformed_case_gets_the_same_errors_from_sql_and_python(case, seeded, seed_state, monkeypatch):
    monkeypatch.setenv("BANGFU_STRICT_IDS", "1")  # as the corpus test imports them
    path = MALFORMED / case["path"]
    sql = attempt(seeded, path, "auto")
    py = attempt(seeded, path, "python")
    assert py[0] in ("python", None)
    if path.is_dir() and py[0] is not None and case["name"] not in PYTHON_ON_PURPOSE:
        assert sql[0] == "sql", case["name"]  # the SQL path really ran
    assert sql[1], f"{case['name']}: imported without errors"
    assert sql[1] == py[1]
    assert snapshot(seeded) == seed_state["snap"]


def test_wrong_check_digit_warnings_are_the_same(pg, tmp_path, monkeypatch):
    monkeypatch.delenv("BANGFU_STRICT_IDS", raising=False)
    seed = write_ledger(tmp_path / "seed", seed_ledger())
    sql, py = both_paths(pg, MALFORMED / "id_check_digit", seed)
    assert sql[0] == "sql" and sql[2] is not None
    assert any("校验位" in w for w in sql[2].warnings)
    same_outcome(sql, py)


def test_every_error_of_the_contract_the_same_way(pg, tmp_path):
    sql, py = both_paths(pg, write_ledger(tmp_path / "bad", bad_ledger()))
    assert sql[0] == "sql" and len(sql[1]) >= 16
    same_outcome(sql, py)
    assert sql[3] == snapshot_of_nothing()


def snapshot_of_nothing():
    return {n: [] for n in schema.LEDGER_TABLES}


def test_valid_ledgers_write_the_same_rows(pg, tmp_path):
    # quote-free CSV (raw COPY), then an update of it
    sql, py = both_paths(pg, write_ledger(tmp_path / "good", good_ledger()))
    assert sql[0] == "sql" and sql[1] is None
    same_outcome(sql, py)
    seed = write_ledger(tmp_path / "seed", good_ledger())
    later = write_ledger(tmp_path / "later", {
        "households": [hh("H1", V1, "lifted_with_policy"), hh("H3", V2)],
        "ratings": [{"helper_id": "A", "year": "2025", "grade": "qualified"}],
        "pairings": [pr("P1", "A", "H1", "2025-01-01", "2026-02-01", "调离", "否")]})
    sql, py = both_paths(pg, later, seed)
    assert sql[0] == "sql" and sql[2].updated == {"households": 1, "ratings": 1, "pairings": 1}
    same_outcome(sql, py)


def test_quoted_multiline_cells_blank_and_ragged_lines(pg, tmp_path):
    """Files the raw COPY cannot number line by line (quoted line breaks) or refuses (blank lines, short
    rows): their rows are parsed by Python's csv module and COPYed as cells; same result, same line numbers."""
    folder = tmp_path / "q"
    folder.mkdir()
    for name, rows in small_ledger().items():  # a visit note with a quoted line break
        import csv

        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
    seed = write_ledger(tmp_path / "seed", seed_ledger())
    sql, py = both_paths(pg, folder, seed)
    assert sql[0] == "sql" and sql[1] is None
    same_outcome(sql, py)
    # the same with a bad date after the multi-line note, a blank line and a short row
    text_ = (folder / "visits.csv").read_text(encoding="utf-8")
    text_ += "\r\n,,,\r\nVS12,B,H11,2026-02-30,phone\r\nVS13,B,H11\r\n"
    (folder / "visits.csv").write_text(text_, encoding="utf-8", newline="")
    sql, py = both_paths(pg, folder, seed)
    assert sql[0] == "sql"
    assert "visits.csv:7: visit_date: 日期不存在 '2026-02-30'" in sql[1]
    assert any(e.startswith("visits.csv:8: visit_date: 缺少必填值") for e in sql[1])
    same_outcome(sql, py)


def test_quote_free_files_with_blank_lines_and_a_copy_end_marker(pg, tmp_path):
    """Quote-free text goes to COPY unparsed; lines PostgreSQL reads differently from Python's csv module
    (a line holding only the end-of-data marker \\., an empty line) must not shift or lose rows."""
    seed = write_ledger(tmp_path / "seed", seed_ledger())
    folder = tmp_path / "v"
    folder.mkdir()
    body = ("visit_id,helper_id,household_id,visit_date,mode\n"
            "VQ1,A,H1,2026-01-05,in_home\n"
            ",, ,\u3000,\n"
            "VQ2,A,H1,2026-01-06,电话\n"
            "\\.\n"
            "VQ3,A,H1,2026-01-07,in_home\n"
            "VQ4,A,H404,2026-01-07,in_home\n")
    for text_ in (body, body.replace("VQ2", "\nVQ2")):  # COPY stops at \. ; COPY refuses an empty line
        (folder / "visits.csv").write_text(text_, encoding="utf-8", newline="")
        sql, py = both_paths(pg, folder, seed)
        assert sql[0] == "sql"
        same_outcome(sql, py)
        shift = text_.count("\n") - body.count("\n")
        assert f"visits.csv:{7 + shift}: household_id: 引用了不存在的贫困户 'H404'" in sql[1]
        assert f"visits.csv:{5 + shift}: helper_id: 缺少必填值" in sql[1]  # "\\." is a row to Python's csv module


def test_a_line_of_blank_cells_in_a_raw_copied_file_is_skipped(pg, tmp_path):
    """A quote-free file is COPYed unparsed, so PostgreSQL keeps a line of blank cells as a row; it must be
    skipped as Python's reader skips it (not reported as missing values), and the lines after it keep their
    numbers."""
    seed = write_ledger(tmp_path / "seed", seed_ledger())
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "visits.csv").write_text("visit_id,helper_id,household_id,visit_date,mode\r\n"
                                       "VB1,A,H1,2026-01-05,in_home\r\n"
                                       ", ,\t,\u3000,\r\n"
                                       "VB2,A,H1,2026-01-06,短信\r\n", encoding="utf-8", newline="")
    sql, py = both_paths(pg, folder, seed)
    assert sql[0] == "sql" and sql[1] is None and sql[2].inserted == {"visits": 2}
    same_outcome(sql, py)
    (folder / "visits.csv").write_text("visit_id,helper_id,household_id,visit_date,mode\n,,,,\nVB3,A,H9,2026-01-05,phone\n",
                                       encoding="utf-8", newline="")
    sql, py = both_paths(pg, folder, seed)
    assert sql[1] == ["visits.csv:3: household_id: 引用了不存在的贫困户 'H9'"]
    same_outcome(sql, py)


def test_fullwidth_values_are_normalised_the_same_way(pg, tmp_path):
    ledger = base(
        households=[{"household_id": fullwidth("H1"), "head_name": "李Ａ　四", "village_code": fullwidth(V1),
                     "status": fullwidth("not_lifted"), "id_number": fullwidth("13010219900101127X"),
                     "size": fullwidth("3")},
                    {**hh("H2", V1), "id_number": fullwidth("130102199001011230")},
                    {**hh("H3", V1), "id_number": "１３０１０２１９９００１０１１２７ｘ"}],
        pairings=[pr("P1", fullwidth("A"), "H1", fullwidth("2025-01-01"), None, None, fullwidth("1"))],
        visits=[{"visit_id": "V1", "helper_id": "A", "household_id": "H1", "visit_date": "２０２６－０６－３０",
                 "mode": "ｉｎ＿ｈｏｍｅ", "note": "ＡＢ　走访１次"}],
    )
    sql, py = both_paths(pg, write_ledger(tmp_path / "fw", ledger))
    assert sql[0] == "sql" and sql[2].normalised == 12
    same_outcome(sql, py)


FULLWIDTH_INPUTS = [
    fullwidth("H1"), fullwidth("130102001001"), fullwidth("not_lifted"), fullwidth("13010219900101127X"),
    fullwidth("2025-01-01"), "２０２６－０６－３０", "ｉｎ＿ｈｏｍｅ", "１３０１０２１９９００１０１１２７ｘ",
    "\u3000ＡＢ\u3000", "２０２６／０６／３０", "ｔｒｕｅ", "１．３０１０２Ｅ＋１７", "㈠", "①", "ﾃｽﾄ", "㍻",
    "".join(chr(c) for c in range(0xFF01, 0xFF5F)),  # every full-width ASCII form
]


def test_postgresql_nfkc_equals_python_nfkc(pg):
    """The SQL path folds with normalize(…, NFKC): it must give what unicodedata gives for the full-width
    inputs of the test ledgers (and every full-width ASCII form)."""
    with pg.connect() as conn:
        got = [conn.execute(text("SELECT normalize(CAST(:s AS text), NFKC)"), {"s": s}).scalar() for s in FULLWIDTH_INPUTS]
    assert got == [unicodedata.normalize("NFKC", s) for s in FULLWIDTH_INPUTS]


def test_xlsx_and_sqlite_keep_the_python_validation(pg, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "regions"
    for r in [["code", "name", "level", "parent_code"]] + [list(x.values()) for x in base()["regions"]]:
        ws.append(r)
    wb.save(tmp_path / "l.xlsx")
    assert import_ledger(pg, tmp_path / "l.xlsx", refresh_summaries=False).validated_by == "python"
    from data_access.db import make_engine, upgrade

    lite = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    upgrade(lite)
    folder = write_ledger(tmp_path / "r", {"regions": base()["regions"]})
    assert import_ledger(lite, folder, refresh_summaries=False).validated_by == "python"
    lite.dispose()
    shutil.rmtree(folder)


class _Rollback(Exception):
    pass


def outcome_in_transaction(engine, folder, validation: str):
    """(validated_by, errors, warnings, the ledger tables as the import's transaction sees them); the
    import is rolled back, so that every example starts from the same seeded database."""
    seen = {}

    def look(conn):
        seen["tables"] = {n: sorted(tuple(map(repr, r)) for r in conn.execute(select(t)))
                          for n, t in schema.LEDGER_TABLES.items()}
        raise _Rollback

    try:
        import_ledger(engine, folder, validation=validation, refresh_summaries=False, after_write=look)
    except ImportFailed as exc:
        return exc.validated_by, exc.errors, None
    except _Rollback:
        return None, None, seen["tables"]
    raise AssertionError("after_write did not run")


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(files=corrupted_ledger())
def test_random_corruption_gets_the_same_answer_from_sql_and_python(seeded, seed_state, files):
    """test_malformed's random corruption (bytes, encodings, cells, headers, rows), imported by both paths:
    the same errors in the same order, or the same rows written."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, data in files.items():
            (folder / f"{name}.csv").write_bytes(data)
        sql = outcome_in_transaction(seeded, folder, "auto")
        py = outcome_in_transaction(seeded, folder, "python")
    event("errors" if py[1] else "imported")
    assert sql[1] == py[1]
    assert sql[2] == py[2]
