"""Shares of the ratings metric (RULES.md M4): one definition of each, read by every page, chart and map.

M4 counts the helpers rated excellent, qualified and unqualified for a year, and the helpers *missing* a
rating (paired with an in-scope household during the year, no rating). A share of a grade is taken over the
helpers who were rated (参加考核的责任人: 优秀占比 is 优秀 ÷ 已考核), so that it does not move when a
missing rating is filed; the missing share (未考核率) is taken over the helpers due a rating, rated or not
(已考核 + 未考核), as in the briefing (reports/content.derive). None where the base is empty.
"""

from __future__ import annotations

from collections.abc import Mapping

GRADES = ("excellent", "qualified", "unqualified")


def rated(row: Mapping) -> int:
    """Helpers with a rating for the year (the base of a grade's share)."""
    return int(sum(int(row[g]) for g in GRADES))


def due(row: Mapping) -> int:
    """Helpers rated or missing a rating (the base of the missing share)."""
    return rated(row) + int(row["missing"])


def rating_shares(row: Mapping) -> dict[str, float | None]:
    """{excellent, qualified, unqualified: share of the rated; missing: share of those due} of one ratings
    row (a group or a total of metrics.ratings)."""
    n, d = rated(row), due(row)
    out: dict[str, float | None] = {g: (int(row[g]) / n if n else None) for g in GRADES}
    out["missing"] = int(row["missing"]) / d if d else None
    return out
