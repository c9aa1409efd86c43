"""Region tree upkeep: the ancestor-or-self code at every level, denormalised onto each region."""

from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from .schema import LEVEL_RANK, LEVELS, regions

ANCESTOR_COLUMNS = {lvl: f"{lvl}_code" for lvl in LEVELS}


def compute_ancestors(rows: dict[str, tuple[str, str | None]]) -> dict[str, dict[str, str | None]]:
    """rows: code -> (level, parent_code). Returns code -> {level_code: ancestor-or-self or None}."""
    out: dict[str, dict[str, str | None]] = {}

    def resolve(code: str) -> dict[str, str | None]:
        if code in out:
            return out[code]
        chain = []
        cur: str | None = code
        seen = set()
        while cur is not None and cur in rows and cur not in seen and cur not in out:
            seen.add(cur)
            chain.append(cur)
            cur = rows[cur][1]
        base = dict(out[cur]) if cur is not None and cur in out else {c: None for c in ANCESTOR_COLUMNS.values()}
        for c in reversed(chain):
            level = rows[c][0]
            vals = dict(base)
            if level in ANCESTOR_COLUMNS:
                col = ANCESTOR_COLUMNS[level]
                # lower levels than this region are not its ancestors
                for lvl in LEVELS[LEVEL_RANK[level]:]:
                    vals[ANCESTOR_COLUMNS[lvl]] = None
                vals[col] = c
            out[c] = vals
            base = vals
        return out[code]

    for code in rows:
        resolve(code)
    return out


def refresh_ancestors(conn: Connection) -> int:
    """Recompute the ancestor columns of every region; returns how many rows changed."""
    cols = [regions.c[c] for c in ANCESTOR_COLUMNS.values()]
    current = conn.execute(select(regions.c.code, regions.c.level, regions.c.parent_code, *cols)).all()
    rows = {r.code: (r.level, r.parent_code) for r in current}
    computed = compute_ancestors(rows)
    changes = []
    for r in current:
        want = computed[r.code]
        have = {c: getattr(r, c) for c in ANCESTOR_COLUMNS.values()}
        if want != have:
            changes.append({"b_code": r.code, **want})
    if changes:
        stmt = (
            update(regions)
            .where(regions.c.code == bindparam("b_code"))
            .values({c: bindparam(c) for c in ANCESTOR_COLUMNS.values()})
        )
        conn.execute(stmt, changes)
    return len(changes)


def map_places(conn: Connection):
    """City-level regions and the county-level regions directly under them, with their city:
    (code, name, level, city_code, city_name), cities first, then each city's counties, by code.
    One query (the map's scope and hover text)."""
    import pandas as pd

    r, c = regions.alias("r"), regions.alias("c")
    cities = conn.execute(select(r.c.code, r.c.name).where(r.c.level == "city").order_by(r.c.code)).all()
    counties = conn.execute(
        select(r.c.code, r.c.name, r.c.level, c.c.code, c.c.name)
        .select_from(r.join(c, c.c.code == r.c.parent_code))
        .where(r.c.level == "county", c.c.level == "city")
        .order_by(c.c.code, r.c.code)
    ).all()
    rows = [(code, name, "city", code, name) for code, name in cities] + [tuple(x) for x in counties]
    return pd.DataFrame(rows, columns=["code", "name", "level", "city_code", "city_name"])
