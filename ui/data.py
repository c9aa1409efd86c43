"""Cached data access for the pages.

Every wrapper's arguments are the whole cache key: the database URL string, the date(s), the
grouping and the Scope (a frozen, hashable dataclass — passed as a normal argument, never
underscore-prefixed, so two users with different scopes never share an entry). The Scope passed is
always the *effective* one (ui/filters.py: the user's scope ∩ what the URL asks for). List wrappers take
``unmasked`` as a normal argument too, so masked and unmasked results are cached separately. The engines
come from ``st.cache_resource``.

Reads and writes (data_access/routing.py): every wrapper here reads through ``reader(url)`` — the read
replica at ``BANGFU_READ_DATABASE_URL`` when one is configured (falling back to the primary while it is
down), else the database itself — and is marked ``@_reads`` (a read that lost the replica mid-way runs once
more, on the primary). ``url`` is always the primary's (DATABASE_URL) and ``engine(url)`` is the primary:
every write (sign-in, lockout, sessions, the audit log, demo data) and every read that must see its own
write (the signed-in user and session, the audit page) uses it.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading

import pandas as pd
import streamlit as st

from data_access import db
from data_access import metrics as m
from data_access import rules
from data_access import problems as pb
from data_access import routing
from data_access import summary
from data_access import users
from data_access import views as v
from data_access.scope import Scope

TTL = 60
SPIN = "正在计算…"


def db_url() -> str:
    """DATABASE_URL, or the embedded SQLite default."""
    return db.resolve_url()


@st.cache_resource(show_spinner=False)
def engine(url: str):
    """The primary (DATABASE_URL): writes, and reads that must see their own write."""
    # dashboard=True: statement_timeout on PostgreSQL; pre-ping replaces connections a restart killed
    return db.make_engine(url, dashboard=True)


@st.cache_resource(show_spinner=False)
def reader(url: str):
    """The page reads' engine: the read replica (BANGFU_READ_DATABASE_URL) with its fallback to the primary
    ``url``; without a replica, the primary's own engine."""
    read = routing.read_url(url)
    if read == db.resolve_url(url):
        return engine(url)
    return routing.make_read_engine(read, url, dashboard=True)


def _reads(fn):
    """A wrapper whose read lost its replica connection mid-way runs once more (routing.run_read: then on the
    primary). Its first argument is the primary's URL."""

    @functools.wraps(fn)
    def run(url: str, *args, **kwargs):
        return routing.run_read(reader(url), lambda _engine: fn(url, *args, **kwargs))

    return run


@st.cache_resource(show_spinner=False)
def init_lock(url: str) -> threading.Lock:
    """One lock per database so that two first sessions do not both generate demo data."""
    return threading.Lock()


def clear() -> None:
    st.cache_data.clear()


# ---------------------------------------------------------------- database state


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def database_status(url: str) -> str:
    return v.database_status(reader(url))


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def is_demo(url: str) -> bool:
    return db.is_demo(reader(url))


@st.cache_data(ttl=15, show_spinner=False)
@_reads
def freshness(url: str, as_of: dt.date) -> str | None:
    """When the stored figures of as_of were computed (None: not stored, the page computes live)."""
    with reader(url).connect() as conn:
        return summary.freshness(conn, as_of)


# ---------------------------------------------------------------- metrics


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def metric(url: str, name: str, as_of: dt.date, by: str, scope: Scope):
    """Any day metric of the registry by name (data_access.registry): a new metric's page reads it here."""
    return m.compute(reader(url), name, by, as_of, scope, summary=True)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def coverage(url: str, as_of: dt.date, by: str, scope: Scope):
    return m.coverage(reader(url), as_of, by, scope)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def cap(url: str, as_of: dt.date, by: str, scope: Scope):
    return m.cap(reader(url), as_of, by, scope)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def cadence(url: str, as_of: dt.date, by: str, scope: Scope):
    return m.cadence(reader(url), as_of, by, scope)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def ratings(url: str, year: int, by: str, scope: Scope):
    return m.ratings(reader(url), year, by, scope)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def replacements(url: str, as_of: dt.date, by: str, scope: Scope):
    return m.replacements(reader(url), as_of, by, scope)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def photos(url: str, start: dt.date, end: dt.date, by: str, scope: Scope):
    return m.photos(reader(url), start, end, by, scope)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def overview(url: str, as_of: dt.date, prev: dt.date, year: int, scope: Scope, child: str | None) -> dict:
    """Everything the overview shows, in one cached call (a page of a dozen cache entries costs more to
    read back than one): the totals on the date and on ``prev`` (coverage, cap, cadence, replacements),
    the rating totals of ``year`` and the year before, the ``child`` level's cadence ranking and the
    12-month trend. The cadence total is the ranking's sum (the same figures as the ranking beside it)."""
    eng = reader(url)
    out = {"ranking": m.cadence(eng, as_of, child, scope) if child else None}
    for key, day in (("now", as_of), ("before", prev)):
        cad = out["ranking"] if key == "now" and child else m.cadence(eng, day, child or "province", scope)
        out[key] = {"coverage": m.total_row(m.coverage(eng, day, "province", scope), "coverage"),
                    "cap": m.total_row(m.cap(eng, day, "province", scope), "cap"),
                    "cadence": m.total_row(cad, "cadence"),
                    "replacements": m.total_row(m.replacements(eng, day, "province", scope), "replacements")}
    out["ratings"] = {y: m.total_row(m.ratings(eng, y, "province", scope), "ratings") for y in (year, year - 1)}
    out["trend"] = pb.trend(eng, as_of, scope, known={as_of: (out["now"]["coverage"], out["now"]["cadence"])})
    return out


# ---------------------------------------------------------------- problem lists (masked: detail=True)
# A page shows the first LIST_ROWS rows of a list (worst first) and its total; the download builds the whole
# list when clicked (``full_list``, not cached: it is made once per click, not kept for every user).

LIST_ROWS = 1000


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def uncovered(url: str, as_of: dt.date, scope: Scope, unmasked: bool = False, limit: int | None = LIST_ROWS + 1):
    return pb.uncovered(reader(url), as_of, scope, detail=True, unmasked=unmasked, limit=limit)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def cap_list(url: str, as_of: dt.date, scope: Scope, min_load: int = rules.CAP + 1, unmasked: bool = False,
             limit: int | None = LIST_ROWS + 1):
    return pb.cap_violators(reader(url), as_of, scope, detail=True, min_load=min_load, unmasked=unmasked, limit=limit)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def overdue(url: str, as_of: dt.date, scope: Scope, unmasked: bool = False, limit: int | None = LIST_ROWS + 1):
    return pb.overdue(reader(url), as_of, scope, detail=True, unmasked=unmasked, limit=limit)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def gaps(url: str, as_of: dt.date, scope: Scope):
    """The distribution of active pairings' gaps (15-day buckets): start, on_time, overdue."""
    return pb.gap_histogram(reader(url), as_of, scope)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def unapproved(url: str, as_of: dt.date, scope: Scope, unmasked: bool = False, limit: int | None = LIST_ROWS + 1):
    return pb.unapproved(reader(url), as_of, scope, detail=True, unmasked=unmasked, limit=limit)


def full_list(name: str, url: str, *args, **kwargs) -> pd.DataFrame:
    """The whole list behind a page's first rows, for a download (uncached; called on click)."""
    if name in ("missing_ratings", "excellent_with_problems"):
        return routing.run_read(reader(url), getattr(v, name), *args, **kwargs)
    fn = {"uncovered": pb.uncovered, "cap": pb.cap_violators, "overdue": pb.overdue, "unapproved": pb.unapproved}[name]
    df = routing.run_read(reader(url), fn, *args, detail=True, **kwargs)
    if name == "overdue":  # the order the page shows (longest gap first), not the contract's by pairing id
        df = df.sort_values(["gap_days", "pairing_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return df


# ---------------------------------------------------------------- views


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def region_info(url: str, code: str | None):
    return v.region_info(reader(url), code)


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def region_path(url: str, code: str | None):
    return v.region_path(reader(url), code)


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def list_regions(url: str, parent_code: str | None = None, level: str | None = None):
    return v.list_regions(reader(url), parent_code, level)


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def list_units(url: str, region: str | None = None):
    return v.list_units(reader(url), region)


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def unit_options(url: str, region: str | None = None):
    return v.unit_options(reader(url), region)


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def unit_info(url: str, unit_id: str | None):
    return v.unit_info(reader(url), unit_id)


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def helper_info(url: str, helper_id: str | None, scope: Scope, unmasked: bool = False):
    return v.helper_info(reader(url), helper_id, unmasked=unmasked, scope=scope)


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def helper_visible(url: str, helper_id: str | None, scope: Scope) -> bool:
    return v.helper_visible(reader(url), helper_id, scope)


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def effective_scope(url: str, user_scope: Scope, requested: Scope):
    """The requested scope narrowed to the user's (users.effective_scope): (scope, allowed)."""
    eff = users.effective_scope(reader(url), user_scope, requested)
    return eff.scope, eff.allowed


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def map_places(url: str):
    """City- and county-level regions of the region tree with their city (code, name, level, city_code,
    city_name): the map's scope and hover text (定州, 辛集 and 雄安新区 are cities of their own here)."""
    from data_access.regions import map_places as places

    with reader(url).connect() as conn:
        return places(conn)


@st.cache_data(ttl=TTL, show_spinner=False)
@_reads
def rating_years(url: str):
    return v.rating_years(reader(url))


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def unit_helpers(url: str, as_of: dt.date, year: int, scope: Scope, unmasked: bool = False):
    return v.unit_helpers(reader(url), as_of, year, scope, unmasked=unmasked)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def helper_pairings(url: str, as_of: dt.date, helper_id: str, scope: Scope, unmasked: bool = False):
    return v.helper_pairings(reader(url), as_of, helper_id, unmasked=unmasked, scope=scope)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def helper_visits(url: str, helper_id: str, start: dt.date | None, end: dt.date | None, scope: Scope,
                  unmasked: bool = False):
    return v.helper_visits(reader(url), helper_id, start, end, unmasked=unmasked, scope=scope)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def missing_ratings(url: str, year: int, scope: Scope, unmasked: bool = False, limit: int | None = LIST_ROWS + 1):
    return v.missing_ratings(reader(url), year, scope, unmasked=unmasked, limit=limit)


@st.cache_data(ttl=TTL, show_spinner=SPIN)
@_reads
def excellent_with_problems(url: str, year: int, as_of: dt.date, scope: Scope, unmasked: bool = False,
                            limit: int | None = LIST_ROWS + 1):
    return v.excellent_with_problems(reader(url), year, as_of, scope, unmasked=unmasked, limit=limit)


# ---------------------------------------------------------------- meeting mode
# Served from the cache while a fresh value is computed in the background: the screen never waits.


@st.cache_data(ttl=TTL, show_spinner=False, refresh_mode="background")
@_reads
def meeting_figures(url: str, as_of: dt.date, scope: Scope, child: str | None = None) -> dict:
    """The meeting screen's tiles; the cadence total is the sum of the ``child`` ranking's groups (the
    same cached call as the ranking beside the tiles)."""
    eng = reader(url)
    cov = m.total_row(m.coverage(eng, as_of, "province", scope), "coverage")
    cad = m.total_row(meeting_ranking(url, as_of, child, scope) if child else m.cadence(eng, as_of, "province", scope),
                      "cadence")
    cap_ = m.total_row(m.cap(eng, as_of, "province", scope), "cap")
    rep = m.total_row(m.replacements(eng, as_of, "province", scope), "replacements")
    return {"coverage": cov, "cadence": cad, "cap": cap_, "replacements": rep}


@st.cache_data(ttl=TTL, show_spinner=False, refresh_mode="background")
@_reads
def meeting_ranking(url: str, as_of: dt.date, by: str, scope: Scope):
    return m.cadence(reader(url), as_of, by, scope)
