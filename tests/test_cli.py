"""The `bangfu` command: output shapes (CONTRACT.md), exit statuses and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from data_access import settings
from data_access.cli import main

from .conftest import write_ledger
from .test_metrics import cadence_ledger, cap_ledger, coverage_ledger


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cov_db(engine, db_url, tmp_path, capsys):
    code, out, err = run(capsys, "import", str(write_ledger(tmp_path / "l", coverage_ledger())), "--db", db_url)
    assert code == 0, err
    assert out.startswith("导入完成：") and out.count("\n") == 1
    return db_url


def test_metrics_json_shape(cov_db, capsys):
    code, out, err = run(capsys, "metrics", "coverage", "--by", "county", "--as-of", "2026-06-30",
                         "--format", "json", "--db", cov_db)
    assert code == 0, err
    doc = json.loads(out)
    assert {k: doc[k] for k in ("metric", "by", "as_of")} == {"metric": "coverage", "by": "county", "as_of": "2026-06-30"}
    assert doc["groups"] == [
        {"code": "130102", "name": "长安区", "households": 6, "covered": 4, "weak": 1},
        {"code": "130202", "name": "路南区", "households": 2, "covered": 1, "weak": 0},
    ]
    assert doc["total"] == {"code": None, "name": "合计", "households": 8, "covered": 5, "weak": 1}

    code, out, _ = run(capsys, "metrics", "coverage", "--by", "unit", "--as-of", "2026-06-30", "--format", "json",
                       "--db", cov_db)
    doc = json.loads(out)
    assert [(g["code"], g["name"], g["households"], g["covered"], g["weak"]) for g in doc["groups"]] == [
        ("U1", "省财政厅", 2, 1, 0), ("U2", "石家庄市教育局", 4, 2, 1)]


def test_metrics_cap_cadence_ratings_json(engine, db_url, tmp_path, capsys):
    from .test_metrics import D3

    for name, ledger in (("cap", cap_ledger()), ("cad", cadence_ledger())):
        main(["import", str(write_ledger(tmp_path / name, ledger)), "--db", db_url])
    capsys.readouterr()
    code, out, _ = run(capsys, "metrics", "cap", "--by", "city", "--as-of", "2026-06-30", "--format", "json",
                       "--db", db_url)
    doc = json.loads(out)
    assert code == 0
    assert [g["code"] for g in doc["groups"]] == ["130000", "130100", "130200"]
    assert doc["groups"][0]["name"] == "省直"
    assert all(isinstance(g[f], int) for g in doc["groups"] for f in ("helpers", "violators", "excess"))
    code, out, _ = run(capsys, "metrics", "cadence", "--by", "province", "--as-of", D3.isoformat(), "--format",
                       "json", "--db", db_url)
    doc = json.loads(out)
    # both ledgers together: the cap ledger's pairings all have no visit and started 2025-01-01 or later
    assert doc["total"]["active_pairings"] == sum(g["active_pairings"] for g in doc["groups"])
    code, out, _ = run(capsys, "metrics", "ratings", "--by", "unit", "--as-of", "2026-06-30", "--format", "json",
                       "--db", db_url)
    doc = json.loads(out)
    assert code == 0 and doc["metric"] == "ratings"
    assert set(doc["total"]) == {"code", "name", "excellent", "qualified", "unqualified", "missing"}


def test_metrics_csv_and_table(cov_db, capsys):
    code, out, _ = run(capsys, "metrics", "coverage", "--by", "city", "--as-of", "2026-06-30", "--format", "csv",
                       "--db", cov_db)
    assert code == 0
    assert out.splitlines() == ["code,name,households,covered,weak", "130100,石家庄市,6,4,1", "130200,唐山市,2,1,0",
                                ",合计,8,5,1"]
    code, out, _ = run(capsys, "metrics", "coverage", "--by", "province", "--as-of", "2026-06-30", "--db", cov_db)
    assert code == 0 and "河北省" in out and "合计" in out


def test_problems_formats(cov_db, capsys, tmp_path):
    code, out, _ = run(capsys, "problems", "uncovered", "--as-of", "2026-06-30", "--db", cov_db)
    assert code == 0
    assert json.loads(out) == [{"household_id": "H4", "village_code": "130102001001"},
                               {"household_id": "H6", "village_code": "130102001002"},
                               {"household_id": "H9", "village_code": "130202001001"}]
    code, out, _ = run(capsys, "problems", "uncovered", "--as-of", "2026-06-30", "--region", "130202", "--db", cov_db)
    assert json.loads(out) == [{"household_id": "H9", "village_code": "130202001001"}]
    code, out, _ = run(capsys, "problems", "unapproved", "--as-of", "2026-06-30", "--db", cov_db)
    assert json.loads(out) == []  # P8 was approved and ends tomorrow

    target = tmp_path / "out.xlsx"
    code, _, err = run(capsys, "problems", "uncovered", "--as-of", "2026-06-30", "--format", "xlsx",
                       "--output", str(target), "--db", cov_db)
    assert code == 0 and "3" in err
    ws = load_workbook(target).active
    assert [c.value for c in ws[1]] == ["household_id", "village_code"] and ws.max_row == 4
    target = tmp_path / "out.csv"
    code, _, _ = run(capsys, "problems", "uncovered", "--as-of", "2026-06-30", "--format", "csv",
                     "--output", str(target), "--db", cov_db)
    assert target.read_bytes().decode("utf-8-sig").splitlines()[0] == "household_id,village_code"


def test_problems_overdue_json(engine, db_url, tmp_path, capsys):
    main(["import", str(write_ledger(tmp_path / "c", cadence_ledger())), "--db", db_url])
    capsys.readouterr()
    code, out, _ = run(capsys, "problems", "overdue", "--as-of", "2026-04-30", "--unit", "U1", "--db", db_url)
    assert code == 0
    assert json.loads(out) == [
        {"pairing_id": "P09", "helper_id": "D1", "household_id": "Q9", "last_visit": "2025-12-29", "gap_days": 122,
         "interval_months": 4},
        {"pairing_id": "P10", "helper_id": "E", "household_id": "Q10", "last_visit": "2026-01-15", "gap_days": 105,
         "interval_months": 2},
    ]
    code, out, _ = run(capsys, "problems", "overdue", "--as-of", "2026-04-30", "--db", db_url)
    rows = json.loads(out)
    assert [r["pairing_id"] for r in rows] == ["P02", "P03", "P05", "P06", "P07", "P09", "P10", "P11"]
    assert rows[2]["last_visit"] is None


@pytest.mark.parametrize(
    "argv",
    [
        ["metrics", "speed", "--by", "county"],
        ["metrics", "coverage"],
        ["metrics", "coverage", "--by", "galaxy"],
        ["metrics", "coverage", "--by", "county", "--as-of", "2026-02-30"],
        ["metrics", "coverage", "--by", "county", "--year", "2025"],
        ["problems", "everything"],
        ["problems", "cap", "--format", "pdf"],
        [],
    ],
)
def test_wrong_usage_exits_2(cov_db, capsys, argv):
    with pytest.raises(SystemExit) as info:
        code = main(argv + ["--db", cov_db] if argv else argv)
        raise SystemExit(code)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()


def test_bad_input_exits_1_with_one_line(cov_db, capsys, tmp_path):
    code, _, err = run(capsys, "problems", "cap", "--region", "999999", "--db", cov_db)
    assert code == 1 and err.count("\n") == 1 and "999999" in err
    bad = write_ledger(tmp_path / "bad", {"households": [{"household_id": "Z", "head_name": "x", "village_code": "nowhere",
                                                          "status": "not_lifted"}]})
    code, _, err = run(capsys, "import", str(bad), "--db", cov_db)
    assert code == 1
    assert "households.csv:2: village_code:" in err and "Traceback" not in err


def test_unreachable_or_empty_database(tmp_path, capsys):
    code, _, err = run(capsys, "metrics", "cap", "--by", "county", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    code, _, err = run(capsys, "metrics", "cap", "--by", "county", "--db", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert code == 1 and "bangfu db upgrade" in err
    code, out, _ = run(capsys, "db", "upgrade", "--db", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert code == 0
    code, out, _ = run(capsys, "metrics", "cap", "--by", "county", "--format", "json",
                       "--db", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert code == 0 and json.loads(out)["groups"] == []


def test_console_script_runs(cov_db):
    exe = shutil.which("bangfu", path=str(Path(sys.executable).parent))
    assert exe, "the bangfu console script is installed with the package"
    res = subprocess.run([exe, "metrics", "coverage", "--by", "province", "--as-of", "2026-06-30", "--format", "json",
                          "--db", cov_db], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["total"]["covered"] == 5
    res = subprocess.run([exe, "metrics"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_refresh_keeps_stored_month_ends_unless_full(cov_db, engine, capsys):
    """`bangfu refresh` (daily): today and missing dates only, the stored month-ends kept with the
    same figures; `--full` recomputes them all."""
    import datetime as dt

    from sqlalchemy import select

    from data_access import schema
    from data_access import summary

    snaps = schema.summary_snapshots

    def stamps():
        with engine.connect() as conn:
            return dict(conn.execute(select(snaps.c.as_of, snaps.c.refreshed_at).where(snaps.c.kind == "cadence")).all())

    before = stamps()  # the import stored every summary date
    today = settings.today()
    assert len(before) == 24 and today in before
    with engine.begin() as conn:
        conn.execute(snaps.update().values(refreshed_at="2000-01-01T00:00:00"))
        conn.execute(snaps.delete().where(snaps.c.as_of == min(before)))  # one month-end went missing
    code, out, err = run(capsys, "refresh", "--db", cov_db)
    assert code == 0, err
    assert "保留已有的 22 个月末" in out
    assert min(before) != dt.date(min(before).year, 12, 31) or "1 个考核年度" in out  # that year-end's ratings too
    after = stamps()
    assert set(after) == set(before)
    redone = {d for d, s in after.items() if s != "2000-01-01T00:00:00"}
    assert redone == {today, min(before)}
    with engine.connect() as conn:
        assert summary.status_date(conn, today)
        rated = dict(conn.execute(select(snaps.c.as_of, snaps.c.refreshed_at).where(snaps.c.kind == "ratings")).all())
    # the other rating years are kept as they were (ratings change only by import), all give the live figures
    assert rated and {s for d, s in rated.items() if d != min(before)} == {"2000-01-01T00:00:00"}
    code, out, err = run(capsys, "refresh", "--db", cov_db)
    assert code == 0 and "考核年度保留已有的" in out
    from data_access import metrics as m
    from data_access import views

    for end in rated:
        assert m.ratings(engine, end.year, "county").equals(m.ratings(engine, end.year, "county", summary=False))
        assert len(views.missing_ratings(engine, end.year)) == int(m.ratings(engine, end.year, "province")["missing"].sum())
    with engine.begin() as conn:  # a rating year that is not stored is computed
        conn.execute(snaps.delete().where(snaps.c.kind == "ratings", snaps.c.as_of == max(rated)))
    code, out, err = run(capsys, "refresh", "--db", cov_db)
    assert code == 0 and "1 个考核年度" in out
    for end in rated:
        assert m.ratings(engine, end.year, "county").equals(m.ratings(engine, end.year, "county", summary=False))
    code, out, err = run(capsys, "refresh", "--full", "--db", cov_db)
    assert code == 0 and "保留" not in out
    assert all(s != "2000-01-01T00:00:00" for s in stamps().values())


# ------------------------------------------------------------------ bangfu serve: where it listens


def _serve_args(*argv):
    from data_access.cli import build_parser

    return build_parser().parse_args(["serve", *argv])


def test_serve_binds_to_localhost_unless_told(monkeypatch):
    from data_access.cli import serve_command

    monkeypatch.delenv("BANGFU_HOST", raising=False)
    cmd = serve_command(_serve_args())
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("app.py")
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8501"
    cmd = serve_command(_serve_args("--host", "0.0.0.0", "--port", "9000"))
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0" and cmd[cmd.index("--server.port") + 1] == "9000"
    monkeypatch.setenv("BANGFU_HOST", "192.0.2.10")
    assert serve_command(_serve_args())[-3] == "192.0.2.10"
    assert serve_command(_serve_args("--host", "::1"))[-3] == "::1"  # the option wins over the environment


def test_serve_rejects_a_bad_host_in_one_line(capsys):
    code, out, err = run(capsys, "serve", "--host", "no such host!", "--db", "sqlite:////nonexistent/x.sqlite")
    assert code == 1 and out == ""
    assert err.startswith("bangfu: 无法监听地址 'no such host!'") and err.count("\n") == 1


def _listening(port: int) -> set[str]:
    """The local addresses of the sockets listening on TCP `port` (from /proc/net/tcp and tcp6)."""
    import ipaddress

    out = set()
    for name in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{name}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, _, state = line.split()[1:4]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(addr)
                # the kernel writes each 32-bit word in host (little-endian) order
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                out.add(str(ipaddress.ip_address(words)))
    return out


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net")
def test_serve_listens_on_127_0_0_1_only(tmp_path, monkeypatch):
    """The real `bangfu serve`, started briefly: its one listening socket is 127.0.0.1, not 0.0.0.0 or ::."""
    import os
    import urllib.request

    from .conftest import free_port, stop_server, wait_healthy

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("BANGFU_HOST", "DATABASE_URL")}
    log_path = tmp_path / "serve.log"
    db = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "data_access.cli", "serve", "--port", str(port), "--db", db],
                                cwd=Path(__file__).resolve().parent.parent, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}", log_path, timeout_s=60)
        assert _listening(port) == {"127.0.0.1"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            assert r.status == 200
    finally:
        stop_server(proc)
