"""An import of one month of new visits: incremental refresh (the default since 072be87) against the full refresh.

    .venv/bin/python benchmarks/incremental_bench.py --households 100000 --runs 2
    .venv/bin/python benchmarks/incremental_bench.py --households 1000000 --runs 3     # issue 15's scale

PostgreSQL at --admin-url (default: the local server of the README). A database of --households demo households
is generated once (as of today, marked as real so that an import does not replace it) and refreshed; each run
imports the same visits file — one in-home visit this month for every active pairing, the month's visits an office
imports — into a fresh copy of it (CREATE DATABASE … TEMPLATE), alternately with the incremental refresh and with
the full one, so that both see the same machine. Prints the medians of the import (write + refresh) and of the
refresh alone, with the load average.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, select, text  # noqa: E402

from data_access import db, ledger, schema, settings, summary  # noqa: E402
from data_access.demo import generate  # noqa: E402


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--households", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args(argv)
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    base = f"bangfu_incbench_{args.households}"
    url = lambda name: args.admin_url.rsplit("/", 1)[0] + "/" + name  # noqa: E731
    today = settings.today()
    with admin.connect() as c:
        exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": base}).first()
    if not exists:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{base}"'))
        e = db.make_engine(url(base))
        db.upgrade(e)
        t0 = time.perf_counter()
        generate(e, households=args.households, seed=1, as_of=today)
        with e.begin() as conn:
            db.set_meta(conn, "demo", "0")
        summary.refresh_engine(e, today=today)
        print(f"generated and refreshed {args.households:,} households in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        e.dispose()
    e = db.make_engine(url(base))
    with e.connect() as conn:
        pairs = conn.execute(select(schema.pairings.c.helper_id, schema.pairings.c.household_id)
                             .where(schema.pairings.c.end_date.is_(None))).all()
    e.dispose()
    first = today.replace(day=1)
    days = max((today - first).days, 1)
    folder = Path(tempfile.mkdtemp(prefix="incbench_"))
    with open(folder / "visits.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["visit_id", "helper_id", "household_id", "visit_date", "mode", "photo_uploaded"])
        for i, (h, hh) in enumerate(pairs):
            w.writerow([f"M{today:%Y%m}-{i}", h, hh, (first + dt.timedelta(days=i % days)).isoformat(), "in_home",
                        i % 3 != 0])
    print(f"incremental bench · {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC · PostgreSQL "
          f"{args.households:,} households · {len(pairs):,} visits of {first:%Y-%m} · nproc {os.cpu_count()} · "
          f"load average {load()}")
    times: dict[str, list[tuple[float, float]]] = {"incremental": [], "full": []}
    real = ledger.ImportResult.only_visits
    for run in range(args.runs):
        for mode in ("incremental", "full"):
            copy = f"{base}_run"
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{copy}"'))
                c.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{base}"'))
            ledger.ImportResult.only_visits = real if mode == "incremental" else (lambda self: False)
            e = db.make_engine(url(copy))
            t0 = time.perf_counter()
            result = ledger.import_ledger(e, folder)
            took = time.perf_counter() - t0
            e.dispose()
            ledger.ImportResult.only_visits = real
            times[mode].append((took, result.timings.get("refresh", float("nan"))))
            print(f"run {run + 1} {mode}: import {took:.1f} s, refresh {result.timings.get('refresh', 0):.1f} s "
                  f"(load {load()})", file=sys.stderr, flush=True)
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{copy}"'))
    print("\n| refresh after the import | import incl. refresh (s), median | range | refresh alone (s), median |")
    print("|---|---:|---|---:|")
    for mode, xs in times.items():
        imp = [x[0] for x in xs]
        ref = [x[1] for x in xs]
        print(f"| {mode} | {statistics.median(imp):.1f} | {min(imp):.1f}–{max(imp):.1f} | {statistics.median(ref):.1f} |")
    inc, full = (statistics.median(x[0] for x in times[k]) for k in ("incremental", "full"))
    print(f"\nfull ÷ incremental: {full / inc:.2f}× · load average at the end {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
