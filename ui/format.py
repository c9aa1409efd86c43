"""Numbers, dates and deltas formatted for Chinese readers."""

from __future__ import annotations

import datetime as dt

DASH = "—"


def rate(part: int | float | None, whole: int | float | None) -> float | None:
    """part / whole, or None where there is nothing to divide."""
    if not whole or part is None:
        return None
    return part / whole


def pct(x: float | None, digits: int = 1) -> str:
    """0.97345 -> '97.3%'."""
    if x is None:
        return DASH
    return f"{x * 100:.{digits}f}%"


def num(n: int | float | None) -> str:
    """12345 -> '12,345'."""
    if n is None:
        return DASH
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.1f}"
    return f"{int(n):,}"


def pp_delta(cur: float | None, prev: float | None) -> str | None:
    """Change of a rate in percentage points: '+0.3 个百分点'; None when either side is missing."""
    if cur is None or prev is None:
        return None
    d = round((cur - prev) * 100, 1)
    if d == 0:
        return "持平"
    return f"{d:+.1f} 个百分点"


def count_delta(cur: int | None, prev: int | None) -> str | None:
    """Change of a count: '+12' / '-3'; '持平' when unchanged."""
    if cur is None or prev is None:
        return None
    d = int(cur) - int(prev)
    if d == 0:
        return "持平"
    return f"{d:+,}"


def date_zh(d: dt.date | None) -> str:
    if d is None:
        return DASH
    return f"{d.year}年{d.month}月{d.day}日"


def month_zh(d: dt.date) -> str:
    return f"{d.year}年{d.month}月"
