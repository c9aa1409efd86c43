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
