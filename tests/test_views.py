"""data_access.views on the page-test ledger (tests/pages_ledger.py), on SQLite and PostgreSQL.
Expected values are worked out by hand from that ledger."""

from __future__ import annotations

import datetime as dt

from data_access import metrics as m
from data_access import views
from data_access.ledger import import_ledger
from data_access.metrics import Scope

from .conftest import write_ledger
from .ledgers import V1
from .pages_ledger import AS_OF, tables


def load(engine, tmp_path):
    import_ledger(engine, write_ledger(tmp_path / "ledger", tables()))


def test_database_status(engine, tmp_path):
    assert views.database_status(engine) == "blank"
    import_ledger(engine, write_ledger(tmp_path / "regions", {"regions": tables()["regions"]}))
    assert views.database_status(engine) == "empty"
    load(engine, tmp_path)
    assert views.database_status(engine) == "ok"


def test_region_tree_and_units(engine, tmp_path):
    load(engine, tmp_path)
    assert views.child_level(None) == "city"
    assert views.child_level("county") == "township"
    assert views.child_level("village") is None
    info = views.region_info(engine, "130102001")
    assert info["level"] == "township" and info["city_code"] == "130100" and info["county_code"] == "130102"
    assert views.region_info(engine, "nope") is None
    assert [r["name"] for r in views.region_path(engine, V1)] == ["河北省", "石家庄市", "长安区", "建北街道", "东村"]
    assert list(views.list_regions(engine, level="city")["code"]) == ["130100", "130200"]
    assert list(views.list_regions(engine, parent_code="130102001")["code"]) == [V1, "130102001002"]
    assert list(views.list_units(engine)["unit_id"]) == ["U1", "U2", "U3", "U4"]
    assert list(views.list_units(engine, "130100")["unit_id"]) == ["U2", "U3"]
    assert views.unit_info(engine, "U3")["region_name"] == "长安区"
    helper = views.helper_info(engine, "G")
    assert helper["helper_name"] == "冯**" and helper["phone"] == "139****5678" and helper["category"] == "干部职工"
    assert views.rating_years(engine) == [2025, 2024]


def test_unit_helpers(engine, tmp_path):
    load(engine, tmp_path)
    df = views.unit_helpers(engine, AS_OF, 2025, Scope(unit="U3")).set_index("helper_id")
    assert list(df.index) == ["G", "A", "B"]  # by load, then id
    assert df.loc["G", "load"] == 6 and df.loc["G", "overdue"] == 3 and df.loc["G", "active_pairings"] == 6
    assert df.loc["A", "load"] == 1 and df.loc["A", "overdue"] == 1  # a phone call is not a visit
    assert df.loc["B", "load"] == 0 and df.loc["B", "active_pairings"] == 0  # pairing ended 2026-06-15
    assert df.loc["G", "last_home_visit"] == dt.date(2026, 6, 1)
    assert df.loc["G", "grade"] == "优秀" and df.loc["A", "grade"] == "合格"
    assert df.loc["G", "helper_name"] == "冯**" and df.loc["A", "phone"] == "138****1111"
    # the loads agree with the metric engine
    assert int(df["load"].gt(m.CAP).sum()) == m.total_row(m.cap(engine, AS_OF, "province", Scope(unit="U3")),
                                                          "cap")["violators"]


def test_helper_pairings_and_visits(engine, tmp_path):
    load(engine, tmp_path)
    df = views.helper_pairings(engine, AS_OF, "G").set_index("pairing_id")
    assert len(df) == 6 and df["active"].all()
    assert set(df.index[df["is_overdue"].astype(bool)]) == {"PG4", "PG5", "PG6"}
    assert df.loc["PG1", "gap_days"] == (AS_OF - dt.date(2026, 6, 1)).days
    assert df.loc["PG5", "last_visit"] is None and df.loc["PG5", "gap_days"] == (AS_OF - dt.date(2025, 1, 1)).days
    assert df.loc["PG1", "head_name"] == "=**"  # masked
    b = views.helper_pairings(engine, AS_OF, "B")
    assert list(b["pairing_id"]) == ["PB12"] and not b["active"].any() and b["end_reason"].iloc[0] == "调离"
    v = views.helper_visits(engine, "G", None, AS_OF)
    assert len(v) == 7 and set(v["mode"]) == {"入户走访"}
    assert list(v["visit_date"]) == sorted(v["visit_date"])
    a = views.helper_visits(engine, "A", dt.date(2026, 6, 1), AS_OF)
    assert list(a["mode"]) == ["电话"]


def test_missing_and_excellent_with_problems(engine, tmp_path):
    load(engine, tmp_path)
    missing = views.missing_ratings(engine, 2025)
    assert list(missing["helper_id"]) == ["B", "C"]
    assert len(missing) == m.total_row(m.ratings(engine, 2025, "province", m.ALL), "ratings")["missing"]
    assert list(views.missing_ratings(engine, 2025, Scope(unit="U2"))["helper_id"]) == ["C"]

    assert views.rating_check_date(2025, AS_OF) == dt.date(2025, 12, 31)
    assert views.rating_check_date(2026, AS_OF) == AS_OF
    df = views.excellent_with_problems(engine, 2025, AS_OF).set_index("helper_id")
    assert list(df.index) == ["F", "G"]
    # on 2025-12-31 nobody had visited yet: every pairing started 2025-01-01 is overdue
    assert df.loc["G", "load"] == 6 and df.loc["G", "overdue"] == 6
    assert df.loc["G", "problems"] == "超上限（帮扶6户）；6个结对走访逾期"
    assert df.loc["F", "problems"] == "2个结对走访逾期"
    assert list(views.excellent_with_problems(engine, 2025, AS_OF, Scope(region="130100")).helper_id) == ["G"]
    assert views.excellent_with_problems(engine, 2024, AS_OF).empty  # A: excellent in 2024, no pairing then
