"""Every environment variable the product reads, read here, and the one clock of the product.

China has one time zone (Asia/Shanghai, UTC+8, no daylight saving). Servers often run in UTC, where
``date.today()`` is yesterday until 08:00 Beijing time: every "today" of the product is ``today()``.
Tests may set ``BANGFU_TODAY`` (YYYY-MM-DD) to pin the date.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")


def env(name: str, default: str | None = None) -> str | None:
    """The raw value of an environment variable (stripped; empty counts as unset)."""
    value = os.environ.get(name, "")
    value = value.strip()
    return value if value else default


def now(at: dt.datetime | None = None) -> dt.datetime:
    """Aware datetime in Beijing time: now, or the instant ``at`` (aware; naive means UTC)."""
    if at is None:
        return dt.datetime.now(TZ)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    return at.astimezone(TZ)


def today(at: dt.datetime | None = None) -> dt.date:
    """Today in Beijing (or the Beijing date of the instant ``at``). ``BANGFU_TODAY`` pins it, for tests
    and replays."""
    pinned = env("BANGFU_TODAY")
    if pinned and at is None:
        return dt.date.fromisoformat(pinned)
    return now(at).date()


def database_url() -> str | None:
    return env("DATABASE_URL")


def read_database_url() -> str | None:
    """``BANGFU_READ_DATABASE_URL``: where the dashboard's page reads go (a PostgreSQL streaming replica);
    unset, they go to ``DATABASE_URL``. Writes always go to ``DATABASE_URL`` (data_access/routing.py)."""
    return env("BANGFU_READ_DATABASE_URL")


def read_retry_s() -> float:
    """Seconds the page reads stay on the primary after the read replica could not be reached, before the
    replica is tried again (``BANGFU_READ_RETRY_S``, default 10)."""
    try:
        value = float(env("BANGFU_READ_RETRY_S", "10"))
    except ValueError:
        return 10.0
    return min(3600.0, max(0.5, value)) if math.isfinite(value) else 10.0


def debug() -> bool:
    return bool(env("BANGFU_DEBUG"))


def strict_ids() -> bool:
    return env("BANGFU_STRICT_IDS", "0") != "0"


def idle_timeout_min() -> int:
    return max(1, int(env("BANGFU_IDLE_TIMEOUT_MIN", "30")))


def statement_timeout_raw() -> str:
    return env("BANGFU_STATEMENT_TIMEOUT_MS", "") or ""


def server_host() -> str:
    """The address ``bangfu serve`` listens on: ``BANGFU_HOST``, default 127.0.0.1 (this machine only; put a
    reverse proxy in front, or set e.g. 0.0.0.0 to listen on every interface)."""
    return env("BANGFU_HOST", "127.0.0.1")


def chromium_path() -> str:
    """The Chromium that the browser tests and benchmarks/sessions.py drive: ``BANGFU_CHROMIUM``, default
    Debian's ``/usr/bin/chromium``."""
    return env("BANGFU_CHROMIUM", "/usr/bin/chromium")


def ci() -> bool:
    """A CI run (``CI`` set and not false/0, as CI services and .ci/run set it): a test that cannot run here
    (no browser, no Playwright) then fails instead of being skipped."""
    return (env("CI") or "").lower() not in ("", "0", "false", "no", "off")


def self_refresh_enabled() -> bool:
    """Does the running dashboard keep today's summaries current by itself (default yes)?"""
    return env("BANGFU_SELF_REFRESH", "1") != "0"


def self_refresh_interval_s() -> int:
    return max(5, int(env("BANGFU_SELF_REFRESH_INTERVAL_S", "300")))


def warm_up_enabled() -> bool:
    """Does `bangfu serve` warm the server up (imports, map geometry, connection pool, today's overview)
    before it answers, so that the first page does not pay for it (default yes)? ui/startup.warm_up."""
    return env("BANGFU_WARM_UP", "1") != "0"


def chart_preload_enabled() -> bool:
    """Does `bangfu serve` add the script that loads the chart and table chunks while the page's script runs
    (default yes)? ui/preload.py."""
    return env("BANGFU_CHART_PRELOAD", "1") != "0"


def _hours(name: str, default: float, low: float, high: float) -> float:
    """A number of hours from the environment, kept within [low, high]; a malformed value gives the default."""
    try:
        value = float(env(name, str(default)))
    except ValueError:
        return default
    if value != value:  # NaN
        return default
    return min(high, max(low, value))


def session_hours() -> float:
    """Absolute lifetime of a signed-in dashboard session (its cookie), in hours (default 12: a working day);
    the idle timeout (``idle_timeout_min``) ends it earlier."""
    return _hours("BANGFU_SESSION_HOURS", 12.0, 0.01, 24.0 * 30)


def screen_hours() -> float:
    """Absolute lifetime of a meeting screen session (投屏模式), in hours (default 4: a long meeting); no idle
    timeout applies to it."""
    return _hours("BANGFU_SCREEN_HOURS", 4.0, 0.01, 24.0)
