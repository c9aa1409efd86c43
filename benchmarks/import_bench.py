"""Time `bangfu import` of a large visits ledger.

    .venv/bin/python benchmarks/import_bench.py --visits 1000000 --db postgresql+psycopg://postgres@127.0.0.1/bangfu_bench

Writes a synthetic ledger (regions, units, helpers, households, pairings and N visits) to a temp
folder, imports it into an emptied database, then imports it again (the idempotent no-op path),
and prints one table with rows/second.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--visits", type=int, default=1_000_000)
    ap.add_argument("--db", required=True)
    args = ap.parse_args()
    engine = make_engine(args.db)
    upgrade(engine)
    with engine.begin() as conn:
        for t in reversed(schema.metadata.sorted_tables):
            if t.name != "alembic_version":
                conn.execute(t.delete())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        build(folder, args.visits)
        t_build = time.perf_counter() - t0
        results = []
        for label in ("first import (insert)", "second import (no change)"):
            t0 = time.perf_counter()
            r = import_ledger(engine, folder)
            el = time.perf_counter() - t0
            results.append((label, el, r.inserted.get("visits", 0), r.unchanged.get("visits", 0)))
    print(f"ledger: {args.visits:,} visits, written in {t_build:.1f} s; database {engine.dialect.name}")
    print(f"| run | seconds | visits inserted | visits unchanged | visit rows/s |")
    print(f"|---|---:|---:|---:|---:|")
    for label, el, ins, unch in results:
        print(f"| {label} | {el:.1f} | {ins:,} | {unch:,} | {args.visits / el:,.0f} |")


if __name__ == "__main__":
    main()
