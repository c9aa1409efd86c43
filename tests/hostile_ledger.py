"""A small ledger whose texts are hostile (tests/test_hostile_text.py, tests/test_browser.py): the page
tests' ledger (tests/pages_ledger.py) with names that would be live markup if a page rendered them as
Markdown or plotly HTML — a phishing link, a tracking image, tags, Streamlit's :directives:, GFM autolinks,
LaTeX, a blank line."""

from __future__ import annotations

import copy
from pathlib import Path

from .ledgers import V1
from .pages_ledger import tables

CITY, COUNTY, TOWNSHIP = "130100", "130102", "130102001"
EVIL = "evil.example"  # the only host the hostile texts point to
UNIT_LINK = "[点我登录](http://evil.example/login) ![t](http://evil.example/track.png)"  # U3
UNIT_TAGS = '<a href="http://evil.example/a">民政局</a><img src="http://evil.example/u.png">'  # U4
CITY_NAME = ":red[石家庄] :material/home: :streamlit: **粗体** www.evil.example"
COUNTY_NAME = "长安区<b>粗</b> a@evil.example -> `code` $x$ &lt;i&gt;"
TOWNSHIP_NAME = "# 建北街道\n\n- [列表](http://evil.example/t)"
VILLAGE_NAME = '东村<img src="http://evil.example/v.png">'
HELPER_NAME = '<img src="http://evil.example/g.png">冯十一'  # helper G (masked unless unmasked)
DEPARTMENT = "[处室](http://evil.example/d)"
POSITION = "![职务](http://evil.example/p.png)"
HEAD_NAME = "[户主](http://evil.example/hh)"  # household H2 (helper G's)
NOTE = '[备注](http://evil.example/n) <img src="http://evil.example/n.png">'
HOSTILE = [UNIT_LINK, UNIT_TAGS, CITY_NAME, COUNTY_NAME, TOWNSHIP_NAME, VILLAGE_NAME, HELPER_NAME, DEPARTMENT,
           POSITION, HEAD_NAME, NOTE]


def ledger() -> dict:
    t = copy.deepcopy(tables())  # tables() shares the dicts of tests/ledgers.py
    names = {CITY: CITY_NAME, COUNTY: COUNTY_NAME, TOWNSHIP: TOWNSHIP_NAME, V1: VILLAGE_NAME}
    for r in t["regions"]:
        r["name"] = names.get(r["code"], r["name"])
    for u in t["units"]:
        u["name"] = {"U3": UNIT_LINK, "U4": UNIT_TAGS}.get(u["unit_id"], u["name"])
    for h in t["helpers"]:
        if h["helper_id"] == "G":
            h.update(name=HELPER_NAME, department=DEPARTMENT, position=POSITION)
    for h in t["households"]:
        if h["household_id"] == "H2":
            h["head_name"] = HEAD_NAME
    for v in t["visits"]:
        v["note"] = NOTE
    return t


def build_demo(folder: Path) -> str:
    """A migrated SQLite database holding the hostile ledger, marked as demo data (so that the dashboard
    opens without a login, names masked); returns its URL."""
    from data_access.db import make_engine, set_meta, upgrade
    from data_access.ledger import import_ledger

    from .conftest import write_ledger

    url = f"sqlite:///{folder / 'hostile.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    import_ledger(engine, write_ledger(folder / "ledger", ledger()))
    with engine.begin() as conn:
        set_meta(conn, "demo", "1")
    engine.dispose()
    return url
