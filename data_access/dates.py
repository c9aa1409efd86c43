"""Calendar helpers shared by every metric (RULES.md "Time")."""

from __future__ import annotations

import calendar
import datetime as dt


def months_before(d: dt.date, k: int) -> dt.date:
    """The same day k calendar months earlier, clamped to that month's last day.

    2026-04-30 minus 2 months = 2026-02-28; 2026-03-31 minus 4 months = 2025-11-30.
    """
    month_index = d.year * 12 + (d.month - 1) - k
    year, month0 = divmod(month_index, 12)
    month = month0 + 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(d.day, last))


def month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def previous_month_end(d: dt.date) -> dt.date:
    """The last day of the month before d's month."""
    return d.replace(day=1) - dt.timedelta(days=1)


def last_month_ends(d: dt.date, n: int = 12) -> list[dt.date]:
    """The n month-ends up to d, oldest first; d itself stands for its (unfinished) month."""
    out = [d]
    cur = d
    for _ in range(n - 1):
        cur = previous_month_end(cur)
        out.append(cur)
    return list(reversed(out))


def parse_date(text: str) -> dt.date:
    """YYYY-MM-DD for the command line; ValueError with a plain message otherwise."""
    try:
        return dt.date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"日期 '{text}' 无效，应为 YYYY-MM-DD") from None
