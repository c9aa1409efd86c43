"""A metric declared once (data_access/registry.py) reaches every reader: adding one — "helpers with no in-home
visit in six months", the example of issue 15 — needs only its fact rows and its registry entry (here both in
this file; in the product rules.py and registry.py), and then the query, the refresh, `bangfu metrics` and
ui.data answer it, stored = live, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import String, case, literal, select

from data_access import metrics, registry, rules, summary
from data_access.cli import main
from data_access.dates import months_before
from data_access.schema import IN_SCOPE_STATUSES
from data_access.scope import ALL, Scope

D = dt.date(2026, 6, 30)
NAME = "idle_helpers"


def idle_rows(conn, as_of: dt.date, scope: Scope):
    """One row per helper actively paired on the date with an in-scope household (unit_id; helpers=1, idle=1
    when the helper made no in-home visit dated in the six months up to the date)."""
    p, hh = rules.T_PAIR.alias("ip"), rules.T_HH.alias("ih")
    h, u, ur = rules.T_HELP.alias("h"), rules.T_UNIT.alias("u"), rules.T_REG.alias("ur")
    v = rules.T_VIS.alias("iv")
    active = (select(p.c.helper_id).select_from(p.join(hh, hh.c.household_id == p.c.household_id))
              .where(rules.active_on(p, as_of), rules.in_scope(hh)).distinct().subquery("active"))
    visited = select(v.c.helper_id).where(v.c.mode == "in_home", v.c.visit_date > months_before(as_of, 6),
                                          v.c.visit_date <= as_of)
    return (select(literal(None, String).label("village_code"), h.c.unit_id.label("unit_id"),
                   literal(1).label("helpers"), case((h.c.helper_id.in_(visited), 0), else_=1).label("idle"))
            .select_from(active.join(h, h.c.helper_id == active.c.helper_id).join(u, u.c.unit_id == h.c.unit_id)
                         .join(ur, ur.c.code == u.c.region_code))
            .where(*rules._helper_scope(conn, h, u, ur, scope)))


IDLE = registry.Metric(NAME, "M7", "半年未入户责任人", ("helpers", "idle"), "helpers", "unit", cli=True, rows=idle_rows)


@pytest.fixture
def declared(monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, NAME, IDLE)
    return IDLE


@pytest.fixture
def ledger(engine):
    from data_access.demo import generate

    generate(engine, households=1500, seed=3, as_of=D)
    return engine


def oracle(engine, as_of: dt.date) -> pd.DataFrame:
    """The same figures by unit from the raw tables in pandas (not through rules.py)."""
    with engine.connect() as conn:
        p = pd.read_sql("SELECT helper_id, household_id, start_date, end_date FROM pairings", conn)
        hh = pd.read_sql("SELECT household_id, status FROM households", conn)
        h = pd.read_sql("SELECT helper_id, unit_id FROM helpers", conn)
        v = pd.read_sql("SELECT helper_id, visit_date, mode FROM visits", conn)
    for col in ("start_date", "end_date"):
        p[col] = pd.to_datetime(p[col]).dt.date
    v["visit_date"] = pd.to_datetime(v["visit_date"]).dt.date
    p = p.merge(hh, on="household_id")
    active = p[(p.start_date <= as_of) & (p.end_date.isna() | (p.end_date > as_of))
               & p.status.isin(IN_SCOPE_STATUSES)].helper_id.unique()
    since = months_before(as_of, 6)
    seen = set(v[(v["mode"] == "in_home") & (v.visit_date > since) & (v.visit_date <= as_of)].helper_id)
    df = h[h.helper_id.isin(active)].copy()
    df["helpers"], df["idle"] = 1, (~df.helper_id.isin(seen)).astype(int)
    return (df.groupby("unit_id")[["helpers", "idle"]].sum().reset_index().rename(columns={"unit_id": "code"})
            .sort_values("code").reset_index(drop=True))


def test_declared_metric_is_answered_by_the_query(ledger, declared):
    live = metrics.compute(ledger, NAME, "unit", D)
    want = oracle(ledger, D)
    assert len(want) > 20 and 0 < want.idle.sum() < want.helpers.sum()  # the data exercise both outcomes
    pd.testing.assert_frame_equal(live[["code", "helpers", "idle"]].reset_index(drop=True), want, check_dtype=False)
    county = metrics.compute(ledger, NAME, "county", D)
    assert metrics.total_row(county, NAME)["idle"] == want.idle.sum()


def test_refresh_stores_it_and_stored_equals_live(ledger, declared):
    summary.refresh_engine(ledger, today=D)
    with ledger.connect() as conn:
        assert summary.available(conn, NAME, D) and summary.available(conn, NAME, dt.date(2026, 5, 31))
        assert summary.stored_rows(conn, NAME, "county", ALL, [D]) is not None  # the query reads stored rows
        city, county = (conn.execute(select(rules.T_REG.c.code).where(rules.T_REG.c.level == lv)
                                     .order_by(rules.T_REG.c.code)).scalars().first() for lv in ("city", "county"))
        unit = conn.execute(select(rules.T_UNIT.c.unit_id).order_by(rules.T_UNIT.c.unit_id)).scalars().first()
    for day in (D, dt.date(2026, 5, 31)):
        for scope in (ALL, Scope(region=city), Scope(region=county), Scope(unit=unit)):
            for by in ("province", "city", "county", "unit"):
                stored = metrics.declared(ledger, NAME, day, by, scope, summary=True)
                live = metrics.declared(ledger, NAME, day, by, scope, summary=False)
                pd.testing.assert_frame_equal(stored, live, obj=f"{day} {scope} by {by}")


def test_bangfu_metrics_offers_it(ledger, declared, capsys, db_url):
    assert main(["metrics", NAME, "--by", "unit", "--as-of", D.isoformat(), "--format", "json", "--db", db_url]) == 0
    doc = json.loads(capsys.readouterr().out)
    want = oracle(ledger, D)
    assert doc["metric"] == NAME and doc["total"]["idle"] == want.idle.sum()
    assert {g["code"]: g["idle"] for g in doc["groups"]} == dict(zip(want.code, want.idle))


def test_bangfu_metrics_rejects_an_undeclared_name(ledger, capsys, db_url):
    with pytest.raises(SystemExit) as exc:
        main(["metrics", NAME, "--by", "unit", "--db", db_url])
    assert exc.value.code == 2 and "idle_helpers" in capsys.readouterr().err


def test_ui_reads_it_by_name(ledger, declared, db_url):
    from ui import data

    data.clear()
    got = data.metric(db_url, NAME, D, "unit", ALL)
    want = oracle(ledger, D)
    assert dict(zip(got.code, got.idle)) == dict(zip(want.code, want.idle))


def test_registry_refuses_a_bad_declaration():
    with pytest.raises(ValueError, match="primary"):
        registry.Metric("x", "M9", "x", ("a",), "b", "unit")
    with pytest.raises(ValueError, match="four"):
        registry.Metric("x", "M9", "x", ("a", "b", "c", "d", "e"), "a", "unit", rows=idle_rows)
    with pytest.raises(ValueError, match="twice"):
        registry.register(registry.metric("cap"))


def test_declarations_name_real_lists_and_pages():
    from data_access.problems import PROBLEMS

    root = Path(__file__).resolve().parents[1]
    for m in registry.REGISTRY.values():
        assert m.problem is None or m.problem in PROBLEMS, m.name
        assert m.page is None or (root / "pages" / f"{m.page}.py").is_file(), m.name
    assert registry.cli_names() == ["coverage", "cap", "cadence", "ratings"]  # CONTRACT.md's four


def test_cli_help_gives_each_metric_its_title(capsys):
    with pytest.raises(SystemExit):
        main(["metrics", "--help"])
    out = capsys.readouterr().out
    assert all(f"{n}：{registry.metric(n).title}" in out for n in registry.cli_names())
