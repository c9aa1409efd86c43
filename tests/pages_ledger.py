"""A small fixed ledger for the page tests (tests/test_pages.py): two cities, three villages,
a helper over the cap, overdue and department-based pairings, an unapproved replacement,
uncovered households, ratings for two years and village assignments."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from data_access.db import make_engine, upgrade
from data_access.ledger import import_ledger

from .conftest import write_ledger
from .ledgers import HELPERS, REGIONS, UNITS, V1, V2, V3, hh, pr

AS_OF = dt.date(2026, 6, 30)


def tables() -> dict[str, list[dict]]:
    helpers = HELPERS + [{"helper_id": "G", "name": "冯十一", "unit_id": "U3", "category": "cadre",
                          "phone": "13912345678"}]
    households = [hh(f"H{i}", V1) for i in (1, 2, 3, 4)] + [hh("H5", V2), hh("H6", V2), hh("H7", V2)]
    households += [hh("H8", V3), hh("H9", V3, "lifted_with_policy"), hh("H10", V3), hh("H11", V3)]
    households += [hh("H12", V1), hh("H13", V1, "exited")]
    households[0]["head_name"] = "=HYPERLINK(1)"  # a formula-looking name: masked on pages, neutralised in files
    pairings = [pr(f"PG{i}", "G", f"H{i}", "2025-01-01") for i in range(1, 7)]
    pairings += [
        pr("PA7", "A", "H7", "2025-01-01"),
        pr("PF8", "F", "H8", "2025-01-01"),
        pr("PF9", "F", "H9", "2025-01-01"),
        pr("PD10", "D1", "H10", "2025-01-01"),
        pr("PB12", "B", "H12", "2025-01-01", "2026-06-15", "transfer"),  # unapproved, ended in June
        pr("PC12", "C", "H12", "2025-01-01", "2026-03-01", "illness", "1"),  # approved replacement
        pr("PA13", "A", "H13", "2025-01-01"),  # exited household: out of scope
    ]
    visits = []

    def vis(vid, helper, household, date, mode="in_home", photo="1"):
        visits.append({"visit_id": vid, "helper_id": helper, "household_id": household, "visit_date": date,
                       "mode": mode, "photo_uploaded": photo})

    for i in (1, 2, 3):
        vis(f"VG{i}", "G", f"H{i}", "2026-06-01")
        vis(f"VGo{i}", "G", f"H{i}", "2026-02-01", photo="0")
    vis("VG4", "G", "H4", "2026-03-01")  # overdue on 2026-06-30 (cut-off 2026-04-30)
    vis("VA7", "A", "H7", "2026-06-20", mode="phone")  # a phone call is not a visit: overdue
    vis("VF8", "F", "H8", "2026-05-15", photo="0")
    vis("VF9", "F", "H9", "2026-06-10")
    vis("VD10", "D2", "H10", "2026-04-01")  # department colleague: 4-month interval, on time
    ratings = [
        {"helper_id": "G", "year": 2025, "grade": "excellent"},
        {"helper_id": "A", "year": 2025, "grade": "qualified"},
        {"helper_id": "F", "year": 2025, "grade": "excellent"},
        {"helper_id": "D1", "year": 2025, "grade": "unqualified"},
        {"helper_id": "G", "year": 2024, "grade": "qualified"},
        {"helper_id": "A", "year": 2024, "grade": "excellent"},
    ]
    assignments = [
        {"unit_id": "U3", "village_code": V1, "start_date": "2025-01-01"},
        {"unit_id": "U4", "village_code": V3, "start_date": "2025-01-01"},
    ]
    return {"regions": REGIONS, "units": UNITS, "helpers": helpers, "households": households, "pairings": pairings,
            "visits": visits, "ratings": ratings, "assignments": assignments}


def build(folder: Path) -> str:
    """Create a migrated SQLite database holding the ledger; returns its URL."""
    url = f"sqlite:///{folder / 'pages.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    import_ledger(engine, write_ledger(folder / "ledger", tables()))
    engine.dispose()
    return url


ADMIN, ADMIN_PASSWORD = "admin", "admin-password-1"


def add_admin(url: str) -> None:
    """The page tests sign in as a province user (a database with users requires login)."""
    from data_access import users

    engine = make_engine(url)
    if users.get_user(engine, ADMIN) is None:
        users.add_user(engine, ADMIN, ADMIN_PASSWORD, "province", display_name="管理员")
    engine.dispose()


def login(at, username: str = ADMIN, password: str = ADMIN_PASSWORD):
    """Sign in through the real login form of an AppTest that shows it; returns the AppTest."""
    at.text_input(key="login_user").input(username)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    return at
