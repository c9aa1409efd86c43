"""data_access.views on the page-test ledger (tests/pages_ledger.py), on SQLite and PostgreSQL.
Expected values are worked out by hand from that ledger; the lists restricted in SQL to the scope's
helpers are also compared with straightforward province-wide references, there and on demo data."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import func, select

from data_access import demo, schema, summary, views
from data_access import metrics as m
from data_access import rules
from data_access import problems as pb
from data_access.ledger import import_ledger
from data_access.scope import ALL, Conn, Scope
from data_access.privacy import mask_frame

from .conftest import write_ledger
from .ledgers import V1, V3, hh, pr
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
    assert views.unit_options(engine).equals(views.list_units(engine)[["unit_id", "name"]])
    assert list(views.unit_options(engine, "130100")["unit_id"]) == ["U2", "U3"]
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
    assert int(df["load"].gt(rules.CAP).sum()) == m.total_row(m.cap(engine, AS_OF, "province", Scope(unit="U3")),
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
    assert len(missing) == m.total_row(m.ratings(engine, 2025, "province", ALL), "ratings")["missing"]
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


# --------------------------------------------------------------------------------------------
# The restricted queries against straightforward references built from the province-wide building
# blocks (the lists these views used to filter in Python): the same rows, in the same order, for every
# scope and date, on the hand-made ledger and on generated demo data.
# --------------------------------------------------------------------------------------------


def ref_rating_years(engine):
    with engine.connect() as conn:
        return sorted(conn.execute(select(schema.ratings.c.year).distinct()).scalars().all(), reverse=True)


def ref_unit_helpers(engine, as_of, year, scope, unmasked=False):
    """Every helper's load and own last visit province-wide, the scope's overdue list, then kept per helper."""
    with Conn(engine) as conn:
        h, u, ur = rules.T_HELP.alias("h"), rules.T_UNIT.alias("u"), rules.T_REG.alias("ur")
        loads = rules._helper_loads(as_of)
        v = schema.visits.alias("ov")
        last = (select(v.c.helper_id, func.max(v.c.visit_date).label("last_home_visit"))
                .where(v.c.mode == "in_home", v.c.visit_date <= as_of).group_by(v.c.helper_id).subquery("own_last"))
        rt = rules.T_RATE.alias("rt")
        q = (
            select(h.c.helper_id, h.c.name, h.c.unit_id, u.c.name, h.c.department, h.c.category, h.c.phone,
                   func.coalesce(loads.c.load, 0), last.c.last_home_visit, rt.c.grade)
            .select_from(h.join(u, u.c.unit_id == h.c.unit_id).join(ur, ur.c.code == u.c.region_code)
                         .outerjoin(loads, loads.c.helper_id == h.c.helper_id)
                         .outerjoin(last, last.c.helper_id == h.c.helper_id)
                         .outerjoin(rt, (rt.c.helper_id == h.c.helper_id) & (rt.c.year == year)))
            .where(*rules._helper_scope(conn, h, u, ur, scope))
        )
        df = pd.DataFrame([tuple(x) for x in conn.execute(q).all()], columns=[
            "helper_id", "helper_name", "unit_id", "unit_name", "department", "category", "phone", "load",
            "last_home_visit", "grade"])
        status = pb.overdue(conn, as_of, Scope(unit=scope.unit) if scope.unit else scope, include_all=True)
    counts = status.groupby("helper_id").agg(active_pairings=("pairing_id", "count"), overdue=("is_overdue", "sum"))
    df = df.merge(counts, how="left", left_on="helper_id", right_index=True)
    for c in ("active_pairings", "overdue", "load"):
        df[c] = df[c].fillna(0).astype("int64")
    df["category"] = df["category"].map(pb.CATEGORY_ZH)
    df["grade"] = df["grade"].map(views.GRADE_ZH)
    df["last_home_visit"] = [views._as_date(x) for x in df["last_home_visit"]]
    df = df.sort_values(["load", "helper_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return mask_frame(df, views.PERSONAL, unmasked)


def ref_missing_ratings(engine, year, scope, unmasked=False):
    """Every helper paired during the year province-wide, joined to the scope's helpers and their ratings."""
    with Conn(engine) as conn:
        h, u, ur = rules.T_HELP.alias("h"), rules.T_UNIT.alias("u"), rules.T_REG.alias("ur")
        rt = rules.T_RATE.alias("rt")
        p, hh = rules.T_PAIR.alias("yp"), rules.T_HH.alias("yh")
        paired = (select(p.c.helper_id).select_from(p.join(hh, hh.c.household_id == p.c.household_id))
                  .where(rules.active_in_year(p, year), rules.in_scope(hh)).distinct().subquery("paired"))
        q = (
            select(h.c.helper_id, h.c.name, h.c.unit_id, u.c.name, h.c.department, h.c.category, h.c.phone)
            .select_from(h.join(u, u.c.unit_id == h.c.unit_id).join(ur, ur.c.code == u.c.region_code)
                         .join(paired, paired.c.helper_id == h.c.helper_id)
                         .outerjoin(rt, (rt.c.helper_id == h.c.helper_id) & (rt.c.year == year)))
            .where(rt.c.grade.is_(None), *rules._helper_scope(conn, h, u, ur, scope))
        )
        rows = conn.execute(q).all()
    df = pd.DataFrame([tuple(x) for x in rows],
                      columns=["helper_id", "helper_name", "unit_id", "unit_name", "department", "category", "phone"])
    df["category"] = df["category"].map(pb.CATEGORY_ZH)
    df = df.sort_values("helper_id", kind="stable").reset_index(drop=True)
    return mask_frame(df, views.PERSONAL, unmasked)


def ref_excellent_with_problems(engine, year, as_of, scope, unmasked=False):
    """The scope's whole overdue list and cap list on the check date, then the excellent helpers kept."""
    d = views.rating_check_date(year, as_of)
    with Conn(engine) as conn:
        over = pb.overdue(conn, d, scope)
        caps = pb.cap_violators(conn, d, scope)
        all_loads = pb.cap_violators(conn, d, scope, min_load=1)
        rt = rules.T_RATE
        excellent = set(conn.execute(select(rt.c.helper_id).where(rt.c.year == year, rt.c.grade == "excellent"))
                        .scalars().all())
        h, u = rules.T_HELP.alias("h"), rules.T_UNIT.alias("u")
        info = conn.execute(select(h.c.helper_id, h.c.name, h.c.unit_id, u.c.name, h.c.department, h.c.category,
                                   h.c.phone).select_from(h.join(u, u.c.unit_id == h.c.unit_id))).all()
    od = over.groupby("helper_id").size()
    violators = set(caps["helper_id"])
    loads = dict(zip(all_loads["helper_id"], all_loads["load"]))
    rows = []
    for helper_id, name, unit_id, unit_name, department, category, phone in info:
        if helper_id not in excellent or not (helper_id in violators or helper_id in od.index):
            continue
        n_over, load = int(od.get(helper_id, 0)), int(loads.get(helper_id, 0))
        problems = ([f"超上限（帮扶{load}户）"] if helper_id in violators else []) + (
            [f"{n_over}个结对走访逾期"] if n_over else [])
        rows.append({"helper_id": helper_id, "helper_name": name, "unit_id": unit_id, "unit_name": unit_name,
                     "department": department, "category": pb.CATEGORY_ZH.get(category, category), "phone": phone,
                     "load": load, "overdue": n_over, "problems": "；".join(problems), "checked_on": d})
    df = pd.DataFrame(rows, columns=["helper_id", "helper_name", "unit_id", "unit_name", "department", "category",
                                     "phone", "load", "overdue", "problems", "checked_on"])
    df = df.sort_values("helper_id", kind="stable").reset_index(drop=True)
    return mask_frame(df, views.PERSONAL, unmasked)


def assert_same_as_references(engine, scopes, unit_scopes, years, checks, days):
    """Every restricted view equals its reference: missing ratings for each of ``years``, excellent helpers
    with problems for each (year, as_of) of ``checks``, unit helpers on each of ``days``. Returns how many
    rows were compared (so that a caller can check the comparison was not vacuous)."""
    assert views.rating_years(engine) == ref_rating_years(engine)
    compared = 0

    def same(got, want, what):
        nonlocal compared
        pd.testing.assert_frame_equal(got, want, obj=repr(what))
        compared += len(want)

    for scope in scopes:
        for year in years:
            same(views.missing_ratings(engine, year, scope), ref_missing_ratings(engine, year, scope),
                 ("missing_ratings", year, scope))
        for year, as_of in checks:
            same(views.excellent_with_problems(engine, year, as_of, scope),
                 ref_excellent_with_problems(engine, year, as_of, scope),
                 ("excellent_with_problems", year, as_of, scope))
    for scope in unit_scopes:
        for d in days:
            same(views.unit_helpers(engine, d, years[-1], scope), ref_unit_helpers(engine, d, years[-1], scope),
                 ("unit_helpers", d, scope))
    # unmasked, the same rows too
    scope = unit_scopes[0]
    same(views.unit_helpers(engine, days[0], years[-1], scope, unmasked=True),
         ref_unit_helpers(engine, days[0], years[-1], scope, unmasked=True), ("unit_helpers unmasked", scope))
    same(views.excellent_with_problems(engine, *checks[0], ALL, unmasked=True),
         ref_excellent_with_problems(engine, *checks[0], ALL, unmasked=True), "excellent unmasked")
    same(views.missing_ratings(engine, years[-1], ALL, unmasked=True),
         ref_missing_ratings(engine, years[-1], ALL, unmasked=True), "missing unmasked")
    return compared


# (year, as_of): checked on 2025-12-31, on 2025-03-01 (the as-of date inside the year) and on 2024-12-31
CHECKS = [(2025, AS_OF), (2025, dt.date(2025, 3, 1)), (2024, AS_OF)]
DAYS = [AS_OF, dt.date(2025, 12, 31), dt.date(2025, 3, 1)]


def edge_tables() -> dict[str, list[dict]]:
    """The page ledger plus the cases a restriction could get wrong: a helper paired across regions, a
    helper paired only with an exited household, a pairing that ends on the first day of a year and a
    department-based pairing kept on time only by a colleague's visit."""
    t = tables()
    t["households"] = t["households"] + [hh("H14", V3)]
    t["helpers"] = t["helpers"] + [
        {"helper_id": "X", "name": "王小", "unit_id": "U4", "category": "cadre"},
        {"helper_id": "Y", "name": "李小", "unit_id": "U2", "category": "cadre"},
        {"helper_id": "Z", "name": "赵小", "unit_id": "U1", "category": "cadre", "department": "规划处"},
    ]
    t["pairings"] = t["pairings"] + [
        pr("PA14", "A", "H14", "2024-06-01"),  # U3 (长安区, 石家庄) with a household in 唐山
        pr("PX13", "X", "H13", "2025-01-01"),  # only an exited household: never missing a rating
        pr("PY10", "Y", "H10", "2024-01-01", "2025-01-01", "other"),  # active in 2024, not in 2025
        pr("PZ11", "Z", "H11", "2025-01-01"),
    ]
    t["visits"] = t["visits"] + [{"visit_id": "VD3", "helper_id": "D3", "household_id": "H11",
                                  "visit_date": "2025-10-01", "mode": "in_home", "photo_uploaded": "1"}]
    t["ratings"] = t["ratings"] + [{"helper_id": "Z", "year": 2025, "grade": "excellent"},
                                   {"helper_id": "E", "year": 2021, "grade": "qualified"}]  # a gap in the years
    return t


def test_restricted_views_match_references_on_the_page_ledger(engine, tmp_path):
    assert views.rating_years(engine) == []
    import_ledger(engine, write_ledger(tmp_path / "ledger", edge_tables()))
    assert views.rating_years(engine) == [2025, 2024, 2021]
    regions = ["130000", "130100", "130102", "130102001", V1, "130200", "130202", "nope"]
    units = ["U1", "U2", "U3", "U4", "nope"]
    both = [Scope(region="130100", unit="U3"), Scope(region="130102", unit="U3"), Scope(region="130200", unit="U3"),
            Scope(region="130102", unit="U2"), Scope(region="130000", unit="U1")]
    scopes = [Scope(region=r) for r in regions] + [Scope(unit=u) for u in units] + both
    assert assert_same_as_references(engine, [ALL, *scopes], scopes, [2024, 2025], CHECKS, DAYS) > 100

    # the edge cases themselves
    assert list(views.missing_ratings(engine, 2025)["helper_id"]) == ["B", "C"]  # not X (exited), not Y
    assert list(views.missing_ratings(engine, 2024)["helper_id"]) == ["Y"]  # A (PA14) is rated for 2024
    # A's unit is seated in 石家庄, its pairing PA14 with a household in 唐山: on 唐山's list for the overdue
    # pairing (a household-based list) without its load (the cap list goes by the helper's unit)
    df = views.excellent_with_problems(engine, 2024, AS_OF, Scope(region="130200")).set_index("helper_id")
    assert list(df.index) == ["A"] and df.loc["A", "load"] == 0 and df.loc["A", "overdue"] == 1
    df = views.excellent_with_problems(engine, 2024, AS_OF).set_index("helper_id")
    assert list(df.index) == ["A"] and df.loc["A", "load"] == 1 and df.loc["A", "overdue"] == 1
    # Z: on time on 2025-12-31 through a department colleague's visit (4-month interval), overdue by mid-2026
    assert "Z" not in set(views.excellent_with_problems(engine, 2025, AS_OF)["helper_id"])
    z = views.unit_helpers(engine, AS_OF, 2025, Scope(unit="U1")).set_index("helper_id")
    assert z.loc["Z", "overdue"] == 1 and z.loc["Z", "last_home_visit"] is None
    # a unit scope counts all of the unit's pairings; a region scope only those with households under it
    a = views.unit_helpers(engine, AS_OF, 2025, Scope(region="130102", unit="U3")).set_index("helper_id")
    assert a.loc["A", "active_pairings"] == 2 and a.loc["A", "load"] == 2
    a = views.unit_helpers(engine, AS_OF, 2025, Scope(region="130102")).set_index("helper_id")
    assert a.loc["A", "active_pairings"] == 1 and a.loc["A", "load"] == 2

    # with the pairing status stored for the date (a refresh on that day), read from there: the same rows
    day = dt.date(2025, 12, 31)
    live = [(views.unit_helpers(engine, day, 2025, s), views.excellent_with_problems(engine, 2025, AS_OF, s))
            for s in [ALL, *scopes]]
    with engine.begin() as conn:
        summary.refresh(conn, today=day)
        assert summary.status_date(conn, day)
    for s, (helpers, excellent) in zip([ALL, *scopes], live):
        pd.testing.assert_frame_equal(views.unit_helpers(engine, day, 2025, s), helpers, obj=f"stored {s}")
        pd.testing.assert_frame_equal(views.excellent_with_problems(engine, 2025, AS_OF, s), excellent,
                                      obj=f"stored {s}")


@pytest.fixture
def demo_engine(engine):
    demo.generate(engine, households=3000, seed=11, as_of=AS_OF)
    return engine


def test_restricted_views_match_references_on_demo_data(demo_engine):
    engine = demo_engine
    with engine.connect() as conn:
        h, u = schema.helpers, schema.units
        n = func.count().label("n")
        biggest = conn.execute(select(h.c.unit_id, n).group_by(h.c.unit_id).order_by(n.desc(), h.c.unit_id)).first()[0]
        province_unit = conn.execute(  # department-based pairings (第六条)
            select(u.c.unit_id).where(u.c.level == "province").order_by(u.c.unit_id)).scalars().first()
        r = schema.regions
        city, county = conn.execute(  # the city and county seating the most helpers' units
            select(r.c.city_code, r.c.county_code, n).select_from(h.join(u, u.c.unit_id == h.c.unit_id).join(
                r, r.c.code == u.c.region_code)).where(r.c.county_code.is_not(None))
            .group_by(r.c.city_code, r.c.county_code).order_by(n.desc(), r.c.county_code)).first()[:2]
        township = conn.execute(select(r.c.code).where(r.c.level == "township", r.c.county_code == county)
                                .order_by(r.c.code)).scalars().first()
    scopes = [ALL, Scope(unit=biggest), Scope(unit=province_unit), Scope(region=city), Scope(region=county),
              Scope(region=township), Scope(region=city, unit=biggest)]
    assert assert_same_as_references(engine, scopes, scopes[1:], [2024, 2025], CHECKS, DAYS) > 500
    # not vacuous: the excellent helpers with problems and the missing ratings are there province-wide
    assert len(views.excellent_with_problems(engine, 2025, AS_OF)) > 10
    assert len(views.missing_ratings(engine, 2025)) > 10
