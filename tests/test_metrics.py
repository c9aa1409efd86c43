"""Each rule of RULES.md on a small hand-made ledger, with the answer worked out by hand here.

Runs on SQLite and PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

import datetime as dt

import pytest

from data_access import metrics as m
from data_access import problems as pb
from data_access.dates import last_month_ends, months_before
from data_access.ledger import import_ledger
from data_access.scope import ALL, Scope
from data_access.summary import refresh_engine

from .conftest import write_ledger
from .ledgers import HELPERS, V1, V2, V3, base, hh, pr

D = dt.date(2026, 6, 30)

# Every test runs twice: on the live SQL, and on the stored summaries for the dates it asks about.
SUMMARY_DATES = sorted({*last_month_ends(D, 12), dt.date(2025, 6, 30), dt.date(2026, 7, 1), dt.date(2026, 4, 30),
                        dt.date(2026, 3, 31), dt.date(2026, 6, 29)})
PATH = {"mode": "live"}


@pytest.fixture(params=["live", "summary"], autouse=True)
def metric_path(request):
    PATH["mode"] = request.param
    yield request.param


def load(engine, tmp_path, tables):
    import_ledger(engine, write_ledger(tmp_path / "ledger", tables), refresh_summaries=False)
    if PATH["mode"] == "summary":
        refresh_engine(engine, dates=SUMMARY_DATES, years=[2024, 2025])


def rows(df, *fields):
    """{code: (field, ...)} of a metric frame."""
    return {r["code"]: tuple(int(r[f]) for f in fields) for r in df.to_dict("records")}


# ---------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "d,k,want",
    [
        ("2026-04-30", 2, "2026-02-28"),
        ("2026-03-31", 4, "2025-11-30"),
        ("2024-04-30", 2, "2024-02-29"),
        ("2026-01-15", 2, "2025-11-15"),
        ("2026-12-31", 12, "2025-12-31"),
        ("2026-05-31", 1, "2026-04-30"),
    ],
)
def test_months_before_clamps_to_month_end(d, k, want):
    assert months_before(dt.date.fromisoformat(d), k) == dt.date.fromisoformat(want)


# ---------------------------------------------------------------------------- M1 coverage


def coverage_ledger():
    return base(
        households=[
            hh("H1", V1), hh("H2", V1), hh("H3", V1, "lifted_with_policy"), hh("H4", V1), hh("H5", V1, "exited"),
            hh("H6", V2), hh("H7", V2), hh("H8", V3, "lifted_with_policy"), hh("H9", V3),
        ],
        pairings=[
            pr("P1", "A", "H1", "2025-01-01"),
            pr("P1b", "C", "H1", "2025-01-01"),
            pr("P2", "B", "H2", "2025-01-01"),           # H2: only non-cadre helpers -> weak
            pr("P2b", "C2", "H2", "2025-01-01"),
            pr("P3", "B", "H3", "2025-01-01"),           # lifted: never weak
            pr("P4", "A", "H4", "2025-01-01", "2026-06-30", "other"),  # ends on the day: not active
            pr("P5", "A", "H5", "2025-01-01"),           # exited household: out of scope
            pr("P6", "A", "H6", "2026-07-01"),           # starts tomorrow
            pr("P7a", "A", "H7", "2026-06-30"),          # starts on the day: active
            pr("P7b", "B", "H7", "2026-01-01"),
            pr("P8", "D1", "H8", "2025-01-01", "2026-07-01", "transfer", "1"),  # ends tomorrow: active
        ],
        assignments=[
            {"unit_id": "U2", "village_code": V1, "start_date": "2025-01-01"},
            {"unit_id": "U2", "village_code": V2, "start_date": "2025-01-01", "end_date": "2026-06-30"},
            {"unit_id": "U1", "village_code": V3, "start_date": "2024-01-01", "end_date": "2027-01-01"},
            {"unit_id": "U4", "village_code": V3, "start_date": "2026-07-01"},
        ],
    )


def test_coverage_by_region(engine, tmp_path):
    load(engine, tmp_path, coverage_ledger())
    f = ("households", "covered", "weak")
    assert rows(m.coverage(engine, D, "county"), *f) == {"130102": (6, 4, 1), "130202": (2, 1, 0)}
    assert rows(m.coverage(engine, D, "city"), *f) == {"130100": (6, 4, 1), "130200": (2, 1, 0)}
    assert rows(m.coverage(engine, D, "province"), *f) == {"130000": (8, 5, 1)}
    assert rows(m.coverage(engine, D, "village"), *f) == {V1: (4, 3, 1), V2: (2, 1, 0), V3: (2, 1, 0)}
    # scope: a county only
    assert rows(m.coverage(engine, D, "county", Scope(region="130202")), *f) == {"130202": (2, 1, 0)}
    # an unknown region scope is empty, not everything
    assert m.coverage(engine, D, "county", Scope(region="999999")).empty


def test_coverage_past_date(engine, tmp_path):
    load(engine, tmp_path, coverage_ledger())
    d = dt.date(2025, 6, 30)  # P7a/P7b not started; P4 still active
    f = ("households", "covered", "weak")
    assert rows(m.coverage(engine, d, "county"), *f) == {"130102": (6, 4, 1), "130202": (2, 1, 0)}
    # H7 uncovered then, H4 covered by A (cadre)
    assert list(pb.uncovered(engine, d)["household_id"]) == ["H6", "H7", "H9"]


def test_assigned_village_coverage_by_unit(engine, tmp_path):
    load(engine, tmp_path, coverage_ledger())
    got = m.coverage(engine, D, "unit")
    assert rows(got, "households", "covered", "weak") == {"U1": (2, 1, 0), "U2": (4, 2, 1)}
    assert dict(zip(got["code"], got["name"])) == {"U1": "省财政厅", "U2": "石家庄市教育局"}


def test_uncovered_list(engine, tmp_path):
    load(engine, tmp_path, coverage_ledger())
    df = pb.uncovered(engine, D)
    assert list(df.columns) == ["household_id", "village_code"]
    assert df.values.tolist() == [["H4", V1], ["H6", V2], ["H9", V3]]
    assert list(pb.uncovered(engine, D, Scope(region="130202"))["household_id"]) == ["H9"]
    assert list(pb.uncovered(engine, D, Scope(region=V2))["household_id"]) == ["H6"]
    # a unit's list: the uncovered households of the villages assigned to it on the date
    assert list(pb.uncovered(engine, D, Scope(unit="U2"))["household_id"]) == ["H4"]
    detail = pb.uncovered(engine, D, detail=True)
    assert detail.loc[0, "head_name"] == "户**"
    assert detail.loc[0, "id_number"] == "130102********1237"
    assert detail.loc[0, "county"] == "长安区"


# ---------------------------------------------------------------------------- M2 cap


def cap_ledger():
    households = [hh(f"K{i}", V3) for i in range(1, 9)] + [hh(f"K{i}", V1) for i in range(9, 16)]
    households += [hh(f"K{i}", V2) for i in range(16, 22)]
    households[6] = hh("K7", V3, "exited")
    pairings = [pr(f"F{i}", "F", f"K{i}", "2025-01-01") for i in range(1, 7)]
    pairings += [
        pr("F1again", "F", "K1", "2026-01-01"),  # same household twice: counted once
        pr("F7", "F", "K7", "2025-01-01"),       # exited household
        pr("F8", "F", "K8", "2026-07-01"),       # not yet started
    ]
    pairings += [pr(f"D{i}", "D1", f"K{i}", "2025-01-01") for i in range(9, 16)]  # province helper: 7
    pairings += [pr(f"C{i}", "C", f"K{i}", "2025-01-01") for i in range(16, 21)]  # city helper: exactly 5
    pairings += [pr("A21", "A", "K21", "2025-01-01", "2026-06-30", "other"), pr("B21", "B", "K21", "2025-01-01")]
    return base(households=households, pairings=pairings)


def test_cap_by_region_and_unit(engine, tmp_path):
    load(engine, tmp_path, cap_ledger())
    f = ("helpers", "violators", "excess")
    by_county = m.cap(engine, D, "county")
    assert rows(by_county, *f) == {
        "130000": (1, 1, 2),   # province unit U1 -> 省直 row
        "130100": (1, 0, 0),   # city unit U2 -> 石家庄市直 row
        "130102": (1, 0, 0),   # B (A's only pairing ended on the day)
        "130202": (1, 1, 1),   # F: 6 distinct in-scope households
    }
    names = dict(zip(by_county["code"], by_county["name"]))
    assert names["130000"] == "省直" and names["130100"] == "石家庄市直" and names["130202"] == "路南区"
    assert rows(m.cap(engine, D, "city"), *f) == {"130000": (1, 1, 2), "130100": (2, 0, 0), "130200": (1, 1, 1)}
    assert rows(m.cap(engine, D, "province"), *f) == {"130000": (4, 2, 3)}
    assert rows(m.cap(engine, D, "unit"), *f) == {"U1": (1, 1, 2), "U2": (1, 0, 0), "U3": (1, 0, 0), "U4": (1, 1, 1)}
    # F8 has started by 2026-07-01: F carries 7
    assert rows(m.cap(engine, dt.date(2026, 7, 1), "unit"), *f)["U4"] == (1, 1, 2)


def test_cap_list(engine, tmp_path):
    load(engine, tmp_path, cap_ledger())
    assert pb.cap_violators(engine, D).values.tolist() == [["D1", "U1", 7], ["F", "U4", 6]]
    assert pb.cap_violators(engine, D, Scope(region="130202")).values.tolist() == [["F", "U4", 6]]
    assert pb.cap_violators(engine, D, Scope(region="130100")).empty  # D1's unit sits at province level
    assert pb.cap_violators(engine, D, Scope(unit="U1")).values.tolist() == [["D1", "U1", 7]]


# ---------------------------------------------------------------------------- M3 cadence

D3 = dt.date(2026, 4, 30)  # 2-month cut-off 2026-02-28 (clamped), 4-month cut-off 2025-12-30


def v(vid, helper, household, date, mode="in_home", photo="1"):
    return {"visit_id": vid, "helper_id": helper, "household_id": household, "visit_date": date, "mode": mode,
            "photo_uploaded": photo}


def cadence_ledger():
    households = [hh(f"Q{i}", V1) for i in range(1, 15)]
    households[11] = hh("Q12", V1, "exited")
    s = "2025-01-01"
    pairings = [
        pr("P01", "A", "Q1", s), pr("P02", "A", "Q2", s), pr("P03", "A", "Q3", s),
        pr("P04", "A", "Q4", "2026-03-01"), pr("P05", "A", "Q5", "2026-02-27"), pr("P06", "A", "Q6", s),
        pr("P07", "A", "Q7", s), pr("P08", "D1", "Q8", s), pr("P09", "D1", "Q9", s), pr("P10", "E", "Q10", s),
        pr("P11", "C", "Q11", s), pr("P12", "A", "Q12", s), pr("P13", "A", "Q13", s, "2026-04-30", "other"),
        pr("P14", "A", "Q14", "2026-03-15"),
    ]
    visits = [
        v("V01", "A", "Q1", "2026-02-28"),                     # exactly on the cut-off: in time
        v("V02", "A", "Q2", "2026-02-27"),                     # one day late
        v("V03", "A", "Q3", "2026-01-01"), v("V03p", "A", "Q3", "2026-04-01", "phone"),
        v("V03w", "A", "Q3", "2026-04-02", "wechat"), v("V03s", "A", "Q3", "2026-04-03", "sms"),
        v("V06b", "B", "Q6", "2026-04-01"), v("V06", "A", "Q6", "2025-12-01"),  # B's visit is not A's
        v("V07", "A", "Q7", "2026-05-01"),                     # after the date
        v("V08", "D2", "Q8", "2026-01-01"),                    # same unit and department: counts, 4 months
        v("V09x", "D3", "Q9", "2026-04-01"), v("V09", "D1", "Q9", "2025-12-29"),  # other department
        v("V10", "E", "Q10", "2026-01-15"),                    # province unit, no department: 2 months
        v("V11", "C", "Q11", "2026-01-15"),                    # city unit with a department: 2 months
        v("V14", "A", "Q14", "2025-06-01"),                    # before the pairing: clock starts at start
    ]
    return base(households=households, pairings=pairings, visits=visits)


def test_cadence_counts(engine, tmp_path):
    load(engine, tmp_path, cadence_ledger())
    f = ("active_pairings", "overdue")
    assert rows(m.cadence(engine, D3, "county"), *f) == {"130102": (12, 8)}
    assert rows(m.cadence(engine, D3, "province"), *f) == {"130000": (12, 8)}
    # by sending unit: the helper's unit, not the household's region
    assert rows(m.cadence(engine, D3, "unit"), *f) == {"U1": (3, 2), "U2": (1, 1), "U3": (8, 5)}
    assert rows(m.cadence(engine, D3, "unit", Scope(unit="U1")), *f) == {"U1": (3, 2)}


def test_overdue_list(engine, tmp_path):
    load(engine, tmp_path, cadence_ledger())
    df = pb.overdue(engine, D3)
    assert list(df.columns) == ["pairing_id", "helper_id", "household_id", "last_visit", "gap_days", "interval_months"]
    got = {r["pairing_id"]: (r["last_visit"], r["gap_days"], r["interval_months"]) for r in df.to_dict("records")}
    d = dt.date.fromisoformat
    assert got == {
        "P02": (d("2026-02-27"), 62, 2),
        "P03": (d("2026-01-01"), 119, 2),
        "P05": (None, 62, 2),
        "P06": (d("2025-12-01"), 150, 2),
        "P07": (None, 484, 2),
        "P09": (d("2025-12-29"), 122, 4),
        "P10": (d("2026-01-15"), 105, 2),
        "P11": (d("2026-01-15"), 105, 2),
    }
    assert list(df["pairing_id"]) == sorted(got)
    assert list(pb.overdue(engine, D3, Scope(unit="U1"))["pairing_id"]) == ["P09", "P10"]
    assert pb.overdue(engine, D3, Scope(region="130202")).empty


def test_cadence_month_end_clamping_four_months(engine, tmp_path):
    d = dt.date(2026, 3, 31)  # 4 months -> 2025-11-30, 2 months -> 2026-01-31
    ledger = base(
        households=[hh(f"R{i}", V1) for i in range(1, 5)],
        pairings=[pr("R1", "D1", "R1", "2025-01-01"), pr("R2", "D1", "R2", "2025-01-01"),
                  pr("R3", "A", "R3", "2025-01-01"), pr("R4", "A", "R4", "2025-01-01")],
        visits=[v("W1", "D1", "R1", "2025-11-30"), v("W2", "D2", "R2", "2025-11-29"),
                v("W3", "A", "R3", "2026-01-31"), v("W4", "A", "R4", "2026-01-30")],
    )
    load(engine, tmp_path, ledger)
    assert list(pb.overdue(engine, d)["pairing_id"]) == ["R2", "R4"]
    assert rows(m.cadence(engine, d, "unit"), "active_pairings", "overdue") == {"U1": (2, 1), "U3": (2, 1)}


# ---------------------------------------------------------------------------- M4 ratings


def test_ratings_with_missing(engine, tmp_path):
    helpers = HELPERS + [{"helper_id": "G", "name": "冯二", "unit_id": "U4", "category": "cadre"}]
    ledger = base(
        households=[hh("Y1", V1), hh("Y2", V1), hh("Y3", V1), hh("Y4", V1), hh("Y5", V1), hh("Y6", V1),
                    hh("YX", V1, "exited")],
        pairings=[
            pr("Z1", "D1", "Y1", "2025-06-01"),                       # no rating: missing
            pr("Z2", "D2", "Y2", "2024-01-01", "2025-01-01", "other"),  # ended before 2025 began
            pr("Z3", "D3", "Y3", "2026-01-01"),                       # starts after 2025
            pr("Z4", "E", "Y4", "2025-12-31"),                        # one day in 2025: missing
            pr("Z5", "F", "Y5", "2024-01-01", "2025-01-02", "other"),  # active on 2025-01-01: missing
            pr("Z6", "G", "Y6", "2025-03-01"),                        # rated 2024 only: missing
            pr("Z7", "C2", "YX", "2025-03-01"),                       # only an exited household
        ],
        ratings=[
            {"helper_id": "A", "year": 2025, "grade": "excellent"},
            {"helper_id": "A", "year": 2024, "grade": "unqualified"},
            {"helper_id": "B", "year": 2025, "grade": "qualified"},
            {"helper_id": "C", "year": 2025, "grade": "unqualified"},
            {"helper_id": "G", "year": 2024, "grade": "excellent"},
        ],
    )
    ledger["helpers"] = helpers
    load(engine, tmp_path, ledger)
    f = ("excellent", "qualified", "unqualified", "missing")
    assert rows(m.ratings(engine, 2025, "unit"), *f) == {
        "U1": (0, 0, 0, 2), "U2": (0, 0, 1, 0), "U3": (1, 1, 0, 0), "U4": (0, 0, 0, 2)}
    assert rows(m.ratings(engine, 2025, "county"), *f) == {
        "130000": (0, 0, 0, 2), "130100": (0, 0, 1, 0), "130102": (1, 1, 0, 0), "130202": (0, 0, 0, 2)}
    assert rows(m.ratings(engine, 2025, "province"), *f) == {"130000": (1, 1, 1, 4)}
    assert rows(m.ratings(engine, 2024, "province"), *f) == {"130000": (1, 0, 1, 2)}  # D2 and F missing in 2024
    assert rows(m.compute(engine, "ratings", "province", dt.date(2026, 3, 1)), *f) == {"130000": (1, 1, 1, 4)}


# ---------------------------------------------------------------------------- M5 replacements, M6 photos


def test_unapproved_replacements(engine, tmp_path):
    ledger = base(
        households=[hh(f"X{i}", V1) for i in range(1, 8)] + [hh("XX", V1, "exited")],
        pairings=[
            pr("X1", "A", "X1", "2025-01-01", "2026-06-30", "illness"),          # on the day, no approval
            pr("X2", "A", "X2", "2025-01-01", "2026-07-01", "transfer"),         # not ended yet
            pr("X3", "A", "X3", "2025-01-01", "2026-01-01", "other", "0"),       # not a replacement
            pr("X4", "B", "X4", "2025-01-01", "2025-05-05", "discipline", "是"),  # approved
            pr("X5", "C", "X5", "2025-01-01", "2026-03-03", "transfer", "否"),    # refused
            pr("X6", "C2", "XX", "2025-01-01", "2026-03-03", "illness"),         # exited household
            pr("X7", "A", "X7", "2025-01-01", "2026-03-03", "household_exited"),
        ],
    )
    load(engine, tmp_path, ledger)
    df = pb.unapproved(engine, D)
    assert df.values.tolist() == [["X1", "A", dt.date(2026, 6, 30), "illness"],
                                  ["X5", "C", dt.date(2026, 3, 3), "transfer"]]
    assert rows(m.replacements(engine, D, "unit"), "replacements", "unapproved") == {"U2": (1, 1), "U3": (2, 1)}
    assert list(pb.unapproved(engine, D, Scope(region="130102"))["pairing_id"]) == ["X1"]
    assert list(pb.unapproved(engine, dt.date(2026, 6, 29))["pairing_id"]) == ["X5"]


def test_photo_upload_rate(engine, tmp_path):
    ledger = base(
        households=[hh("F1", V1), hh("F2", V3), hh("FX", V1, "exited")],
        visits=[
            v("a", "A", "F1", "2026-05-01", photo="1"), v("b", "A", "F1", "2026-05-02", photo="0"),
            v("c", "A", "F1", "2026-05-03", photo=None), v("d", "A", "F1", "2026-05-04", "phone", "1"),
            v("e", "F", "F2", "2026-06-30", photo="1"), v("f", "F", "F2", "2026-07-01", photo="1"),
            v("g", "A", "FX", "2026-05-01", photo="1"),
        ],
    )
    load(engine, tmp_path, ledger)
    got = m.photos(engine, dt.date(2026, 5, 1), D, "county")
    assert rows(got, "in_home_visits", "with_photo") == {"130102": (3, 1), "130202": (1, 1)}
    assert rows(m.photos(engine, dt.date(2026, 5, 1), D, "unit"), "in_home_visits", "with_photo") == {
        "U3": (3, 1), "U4": (1, 1)}


def test_trend_matches_point_metrics(engine, tmp_path):
    load(engine, tmp_path, coverage_ledger())
    t = pb.trend(engine, D)
    assert len(t) == 12 and t["date"].iloc[-1] == D and t["date"].iloc[0] == dt.date(2025, 7, 31)
    for _, r in t.iterrows():
        tot = m.total_row(m.coverage(engine, r["date"], "province"), "coverage")
        assert (r["households"], r["covered"]) == (tot["households"], tot["covered"])
    assert t["covered"].iloc[-1] == 5
