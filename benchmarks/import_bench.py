"""Time `bangfu import` of a large ledger: the SQL validation (PostgreSQL) against the Python validation.

    .venv/bin/python benchmarks/import_bench.py --households 1000000 --runs 3 \
        --db postgresql+psycopg://postgres@127.0.0.1/ingest_bench [--ledger /tmp/ledger1m] [--month-runs 3]

1. **Full import**: a synthetic ledger of N households (build(): regions, units, N/4 helpers, N households,
   N pairings and 12·N visits) is written to --ledger (reused when it is already there) and imported into the
   emptied database, summaries refreshed, by each path in turn ("sql" = import_ledger's default on
   PostgreSQL, "python" = validation="python"); the paths alternate run by run.
2. **A month of new visits**: ~N/2 visits dated in the month after the ledger's last one (new ids) imported
   into the database holding the full ledger, refresh included; after each run the month's rows are deleted
   again (VACUUM ANALYZE, not timed) so that every run inserts the same rows.

Prints the median, min and max seconds per path and phase (read, stage/check, cross-checks, write, refresh
as ImportResult.timings reports them; validate = stage_and_check + cross_checks on the SQL path, where the
staging COPY counts as validation), the sql/python ratio within the same run, the load average before and
after each scenario, and the commit. Without --households it keeps its old meaning: --visits N of which
households = N/12.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from data_access import schema  # noqa: E402
from data_access.db import make_engine, upgrade  # noqa: E402
from data_access.ledger import import_ledger  # noqa: E402


def write_csv(path: Path, header: list[str], rows) -> int:
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow(r)
            n += 1
    return n


def build(folder: Path, visits: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    households = max(visits // 12, 100)
    helpers = max(households // 4, 10)
    villages = max(households // 40, 1)
    write_csv(folder / "regions.csv", ["code", "name", "level", "parent_code"],
              [("130000", "河北省", "province", ""), ("130100", "石家庄市", "city", "130000"),
               ("130102", "长安区", "county", "130100"), ("130102001", "某镇", "township", "130102")]
              + [(f"130102001{i:03d}", f"村{i}", "village", "130102001") for i in range(villages)])
    write_csv(folder / "units.csv", ["unit_id", "name", "level", "region_code"], [("U1", "长安区某局", "county", "130102")])
    write_csv(folder / "helpers.csv", ["helper_id", "name", "unit_id", "category"],
              ((f"A{i:07d}", "张三", "U1", "cadre") for i in range(helpers)))
    write_csv(folder / "households.csv", ["household_id", "head_name", "village_code", "status"],
              ((f"H{i:08d}", "李四", f"130102001{i % villages:03d}", "not_lifted") for i in range(households)))
    write_csv(folder / "pairings.csv", ["pairing_id", "helper_id", "household_id", "start_date"],
              ((f"P{i:08d}", f"A{i % helpers:07d}", f"H{i:08d}", "2024-01-01") for i in range(households)))
    start = dt.date(2024, 1, 1)

    def visit_rows():
        for i in range(visits):
            h = rnd.randrange(households)
            yield (f"V{i:09d}", f"A{h % helpers:07d}", f"H{h:08d}", (start + dt.timedelta(days=rnd.randrange(700))).isoformat(),
                   "in_home" if rnd.random() < 0.8 else "phone", "1" if rnd.random() < 0.7 else "0", "")

    write_csv(folder / "visits.csv", ["visit_id", "helper_id", "household_id", "visit_date", "mode", "photo_uploaded", "note"],
              visit_rows())


def load_average() -> str:
    import os

    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def commit() -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "data_access/ledger.py",
                                "benchmarks/import_bench.py"], capture_output=True, text=True, check=False).stdout.strip()
        return out + (" (ledger.py/import_bench.py modified)" if dirty else "")
    except OSError:
        return "?"


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def empty_database(engine) -> None:
    names = [t.name for t in schema.metadata.sorted_tables if t.name != "alembic_version"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)}"))
        else:
            for t in reversed(schema.metadata.sorted_tables):
                if t.name != "alembic_version":
                    conn.execute(t.delete())


def write_month(folder: Path, households: int, rows: int, seed: int = 11) -> str:
    """~rows new visits dated in 2025-12 (the month after build()'s last visit), ids M000000000…"""
    rnd = random.Random(seed)
    helpers = max(households // 4, 10)
    folder.mkdir(parents=True, exist_ok=True)

    def visit_rows():
        for i in range(rows):
            h = rnd.randrange(households)
            yield (f"M{i:09d}", f"A{h % helpers:07d}", f"H{h:08d}", f"2025-12-{1 + rnd.randrange(31):02d}",
                   "in_home" if rnd.random() < 0.8 else "phone", "1" if rnd.random() < 0.7 else "0", "")

    write_csv(folder / "visits.csv", ["visit_id", "helper_id", "household_id", "visit_date", "mode", "photo_uploaded",
                                      "note"], visit_rows())
    return "M%"


PHASES = ("read", "validate", "stage_and_check", "cross_checks", "write", "refresh")


def timed_import(engine, folder: Path, path: str, refresh: bool = True) -> dict:
    validation = "python" if path == "python" else "auto"
    t0 = time.perf_counter()
    r = import_ledger(engine, folder, validation=validation, refresh_summaries=refresh)
    out = {"total": time.perf_counter() - t0, "by": r.validated_by, **r.timings,
           "inserted": sum(r.inserted.values())}
    print(f"  {path:<6} {out['total']:8.1f} s  validated by {r.validated_by}, {out['inserted']:,} rows inserted, "
          + ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items()) + f"  [load {load_average()}]", flush=True)
    return out


def report(title: str, runs: dict[str, list[dict]]) -> None:
    print(f"\n{title}")
    print("| path | runs | total median (min–max) s | " + " | ".join(PHASES) + " |")
    print("|---|---:|---|" + "---:|" * len(PHASES))
    for path, rs in runs.items():
        if not rs:
            continue
        tot = [r["total"] for r in rs]
        phases = [f"{median([r[p] for r in rs if p in r]):.1f}" if any(p in r for r in rs) else "–" for p in PHASES]
        print(f"| {path} | {len(rs)} | {median(tot):.1f} ({min(tot):.1f}–{max(tot):.1f}) | " + " | ".join(phases) + " |")
    pairs = [s["total"] / p["total"] for s, p in zip(runs.get("sql", []), runs.get("python", []))]
    if pairs:
        print(f"sql/python ratio per run (same run): {', '.join(f'{x:.2f}' for x in pairs)}; median {median(pairs):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--visits", type=int, default=1_000_000)
    ap.add_argument("--households", type=int, help="build a ledger of this many households (12 visits each)")
    ap.add_argument("--db", required=True)
    ap.add_argument("--ledger", type=Path, help="folder of the full ledger (built there when it has no visits.csv)")
    ap.add_argument("--runs", type=int, default=1, help="full imports per path")
    ap.add_argument("--month-runs", type=int, default=0, help="imports per path of a month of new visits")
    ap.add_argument("--month-rows", type=int, help="rows of the month file (default households/2)")
    ap.add_argument("--month-refresh-runs", type=int, help="how many of the month runs per path include the summary "
                    "refresh (default all; the others time the import alone, refresh_summaries=False)")
    ap.add_argument("--paths", default="sql,python")
    args = ap.parse_args()
    visits = args.households * 12 if args.households else args.visits
    households = max(visits // 12, 100)
    paths = args.paths.split(",")
    engine = make_engine(args.db)
    upgrade(engine)
    print(f"commit {commit()} · {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC · database {engine.dialect.name} "
          f"· load average {load_average()}", flush=True)
    tmp = tempfile.TemporaryDirectory(prefix="ingest_bench_")
    folder = args.ledger or Path(tmp.name) / "full"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "visits.csv").exists():
        t0 = time.perf_counter()
        build(folder, visits)
        print(f"ledger built in {time.perf_counter() - t0:.1f} s", flush=True)
    size = sum(f.stat().st_size for f in folder.glob("*.csv"))
    print(f"ledger {folder}: {households:,} households, {visits:,} visits, {size / 1e6:,.0f} MB of CSV", flush=True)
    full: dict[str, list[dict]] = {p: [] for p in paths}
    if args.runs:
        print(f"\nfull import into an emptied database, {args.runs} run(s) per path, load average {load_average()}")
        for i in range(args.runs):
            for path in paths if i % 2 == 0 else paths[::-1]:
                empty_database(engine)
                full[path].append(timed_import(engine, folder, path))
        report(f"Full import ({visits:,} visits, refresh included) — load average at the end {load_average()}", full)
    if args.month_runs:
        if not args.runs:  # the database must hold the full ledger
            with engine.connect() as conn:
                n = conn.execute(text("SELECT count(*) FROM households")).scalar()
            if n != households:
                empty_database(engine)
                import_ledger(engine, folder)
        month_rows = args.month_rows or households // 2
        mfolder = Path(tmp.name) / "month"
        pattern = write_month(mfolder, households, month_rows)
        month: dict[str, list[dict]] = {p: [] for p in paths}
        bare: dict[str, list[dict]] = {p: [] for p in paths}
        with_refresh = args.month_runs if args.month_refresh_runs is None else args.month_refresh_runs
        print(f"\na month of new visits ({month_rows:,} rows) into the full database, {args.month_runs} run(s) per path "
              f"({with_refresh} with the refresh), load average {load_average()}", flush=True)
        for i in range(args.month_runs):
            for path in paths if i % 2 == 0 else paths[::-1]:
                refresh = i < with_refresh
                (month if refresh else bare)[path].append(timed_import(engine, mfolder, path, refresh))
                with engine.begin() as conn:  # back to the full ledger (not timed)
                    conn.execute(text("DELETE FROM visits WHERE visit_id LIKE :p"), {"p": pattern})
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE visits"))
        if with_refresh:
            report(f"A month of new visits ({month_rows:,} rows, refresh included) — load average at the end "
                   f"{load_average()}", month)
        if with_refresh < args.month_runs:
            report(f"A month of new visits ({month_rows:,} rows, import alone: no refresh) — load average at the end "
                   f"{load_average()}", bare)
    tmp.cleanup()


if __name__ == "__main__":
    main()
