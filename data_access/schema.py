"""Database schema (SQLAlchemy Core). The same tables on SQLite and PostgreSQL.

Alembic migrations under ``data_access/migrations`` create exactly these tables; a test checks that
the migrated database and this metadata agree.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

# Administrative regions: province → city → county → township → village.
# The *_code columns hold the ancestor-or-self at each level (NULL where the chain has no such level);
# they are recomputed by ``regions.refresh_ancestors`` after every import so that grouping and scoping
# are single-column lookups.
regions = Table(
    "regions",
    metadata,
    Column("code", String(20), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("level", String(10), nullable=False),
    Column("parent_code", String(20)),
    Column("province_code", String(20)),
    Column("city_code", String(20)),
    Column("county_code", String(20)),
    Column("township_code", String(20)),
    Column("village_code", String(20)),
    Index("ix_regions_city", "city_code"),
    Index("ix_regions_county", "county_code"),
    Index("ix_regions_township", "township_code"),
)

units = Table(
    "units",
    metadata,
    Column("unit_id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("level", String(10), nullable=False),
    Column("region_code", String(20), nullable=False),
    Index("ix_units_region", "region_code"),
)

helpers = Table(
    "helpers",
    metadata,
    Column("helper_id", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("unit_id", String(40), nullable=False),
    Column("department", String(100)),
    Column("category", String(20), nullable=False),
    Column("position", String(100)),
    Column("phone", String(40)),
    Index("ix_helpers_unit_dept", "unit_id", "department"),
)

households = Table(
    "households",
    metadata,
    Column("household_id", String(40), primary_key=True),
    Column("head_name", String(100), nullable=False),
    Column("village_code", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("id_number", String(30)),
    Column("size", Integer),
    Index("ix_households_village", "village_code"),
)

pairings = Table(
    "pairings",
    metadata,
    Column("pairing_id", String(40), primary_key=True),
    Column("helper_id", String(40), nullable=False),
    Column("household_id", String(40), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("end_reason", String(20)),
    Column("approved", Boolean),
    Index("ix_pairings_household", "household_id"),
    Index("ix_pairings_helper", "helper_id"),
)

visits = Table(
    "visits",
    metadata,
    Column("visit_id", String(40), primary_key=True),
    Column("helper_id", String(40), nullable=False),
    Column("household_id", String(40), nullable=False),
    Column("visit_date", Date, nullable=False),
    Column("mode", String(10), nullable=False),
    Column("photo_uploaded", Boolean),
    Column("note", Text),
    # the cadence query looks up the last in-home visit per (household, helper) up to a date
    Index("ix_visits_household_helper_mode_date", "household_id", "helper_id", "mode", "visit_date"),
    # a helper's own visits (units page, helper page) and the helper-first cadence lookups
    Index("ix_visits_helper_mode_date", "helper_id", "mode", "visit_date"),
)

ratings = Table(
    "ratings",
    metadata,
    Column("helper_id", String(40), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("grade", String(20), nullable=False),
    Index("ix_ratings_year", "year"),
    Index("ix_ratings_year_grade", "year", "grade", "helper_id"),
)

assignments = Table(
    "assignments",
    metadata,
    Column("unit_id", String(40), primary_key=True),
    Column("village_code", String(20), primary_key=True),
    Column("start_date", Date, primary_key=True),
    Column("end_date", Date),
    Index("ix_assignments_village", "village_code"),
)

# Small key/value facts about the database itself (e.g. that it holds generated demo data).
meta = Table(
    "bangfu_meta",
    metadata,
    Column("key", String(50), primary_key=True),
    Column("value", Text),
)

LEDGER_TABLES = {
    "regions": regions,
    "units": units,
    "helpers": helpers,
    "households": households,
    "pairings": pairings,
    "visits": visits,
    "ratings": ratings,
    "assignments": assignments,
}

LEVELS = ("province", "city", "county", "township", "village")
LEVEL_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}
UNIT_LEVELS = ("province", "city", "county", "township")
HOUSEHOLD_STATUSES = ("not_lifted", "lifted_with_policy", "exited")
IN_SCOPE_STATUSES = ("not_lifted", "lifted_with_policy")
HELPER_CATEGORIES = ("cadre", "village_committee", "rich_leader")
END_REASONS = ("illness", "transfer", "discipline", "household_exited", "other")
REPLACEMENT_REASONS = ("illness", "transfer", "discipline")
VISIT_MODES = ("in_home", "phone", "sms", "wechat")
GRADES = ("excellent", "qualified", "unqualified")

# Precomputed metric summaries (issue: province scale). One row per (kind, date, unit, village) with
# the summed fields of that kind's fact rows (registry fields' order in n1..n4). Written only by
# summary.refresh — inside each import's transaction and by `bangfu refresh`.
metric_summary = Table(
    "metric_summary",
    metadata,
    Column("kind", String(20), nullable=False),
    # what a row stands for: "village" / "unit" / "unit_village" / "unit_county" (the base grains) or a
    # roll-up to "county" / "city" / "province" / "unit_all" (summary.GRAINS)
    Column("grain", String(16), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("unit_id", String(40)),
    Column("village_code", String(20)),
    # histogram kinds only: the bucket (e.g. gap days // 15, or a helper's load)
    Column("bucket", Integer),
    Column("n1", Integer, nullable=False),
    Column("n2", Integer, nullable=False),
    Column("n3", Integer, nullable=False),
    Column("n4", Integer, nullable=False),
    Index("ix_metric_summary_kind_grain_date", "kind", "grain", "as_of", "village_code"),
)

# Per-pairing and per-helper facts of the latest summary date ("today" of the last refresh): what the
# overdue list, the gap distribution, the cap lists and the units page read instead of recomputing every
# pairing's last in-home visit. Written only by summary.refresh, from the metric engine's own fact rows.
pairing_status = Table(
    "pairing_status",
    metadata,
    Column("as_of", Date, nullable=False),
    Column("pairing_id", String(40), nullable=False),
    Column("helper_id", String(40), nullable=False),
    Column("household_id", String(40), nullable=False),
    Column("unit_id", String(40), nullable=False),
    Column("village_code", String(20), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("last_visit", Date),
    Column("gap_days", Integer, nullable=False),
    Column("interval_months", Integer, nullable=False),
    Column("overdue", Integer, nullable=False),
    Index("ix_pairing_status_overdue_gap", "as_of", "overdue", "gap_days"),
    Index("ix_pairing_status_unit", "unit_id"),
    Index("ix_pairing_status_helper", "helper_id"),
    Index("ix_pairing_status_village", "village_code"),
)

helper_status = Table(
    "helper_status",
    metadata,
    Column("as_of", Date, nullable=False),
    Column("helper_id", String(40), nullable=False),
    Column("unit_id", String(40), nullable=False),
    Column("load", Integer, nullable=False),
    # the helper's overdue pairings on the date (sum of pairing_status.overdue): the ratings page's
    # "excellent but with problems" list reads it province-wide
    Column("overdue", Integer),
    Index("ix_helper_status_load", "as_of", "load"),
    Index("ix_helper_status_unit", "unit_id"),
    Index("ix_helper_status_helper", "helper_id"),
    # the helpers with a problem on the date (over the cap or with an overdue pairing)
    Index("ix_helper_status_problems", "as_of", "helper_id",
          postgresql_where=text("load > 5 OR overdue > 0"), sqlite_where=text("load > 5 OR overdue > 0")),
)

# The in-scope households without an active pairing (M1) on a status date (the uncovered list reads
# them instead of checking every household's pairings), and per rating year the helpers missing a rating
# (M4) — written only by summary.refresh, with the status dates and rating years it stores.
uncovered_status = Table(
    "uncovered_status",
    metadata,
    Column("as_of", Date, nullable=False),
    Column("household_id", String(40), nullable=False),
    Column("village_code", String(20), nullable=False),
    Index("ix_uncovered_status_household", "as_of", "household_id"),
    Index("ix_uncovered_status_village", "village_code"),
)

rating_missing = Table(
    "rating_missing",
    metadata,
    Column("year", Integer, nullable=False),
    Column("helper_id", String(40), nullable=False),
    Index("ix_rating_missing_year_helper", "year", "helper_id"),
)

# Overdue spans (M3), written by summary.refresh from the ledger as a whole: per active in-scope pairing, each
# stretch of days on which it is overdue — from its visit sequence and the department rule, the days D with
# ref(p) = ref_date and ref_date < months_before(D, k), i.e. overdue_from <= D < overdue_to (9999-12-31: still
# overdue at the ledger's end). The overdue pairings of ANY date are the spans containing it: an index range
# scan instead of a last-visit pass over every visit. last_visit is last(p) on those days (before start_date
# on a span that starts from the pairing's start).
overdue_spans = Table(
    "overdue_spans",
    metadata,
    Column("pairing_id", String(40), nullable=False),
    Column("helper_id", String(40), nullable=False),
    Column("household_id", String(40), nullable=False),
    Column("unit_id", String(40), nullable=False),
    Column("village_code", String(20), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("interval_months", Integer, nullable=False),
    Column("ref_date", Date, nullable=False),
    Column("last_visit", Date),
    Column("overdue_from", Date, nullable=False),
    Column("overdue_to", Date, nullable=False),
    Index("ix_overdue_spans_to_from", "overdue_to", "overdue_from"),
    Index("ix_overdue_spans_from", "overdue_from"),
)

# Which (kind, date) summaries exist; a metric reads metric_summary only for a listed pair.
summary_snapshots = Table(
    "summary_snapshots",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("as_of", Date, primary_key=True),
    Column("refreshed_at", String(32), nullable=False),
    # summary.RULES_VERSION of the code that computed it: readers use only the current version's rows
    Column("rules_version", Integer, nullable=False, server_default=text("0")),
)


# Dashboard users (data_access.users). Timestamps are naive UTC throughout (the same on both databases).
# role: province | city | county | unit; region_code is set for city/county users, unit_id for unit users.
# password_hash is an argon2id hash (NULL for a user who signs in only through OIDC by e-mail).
users = Table(
    "users",
    metadata,
    Column("username", String(40), primary_key=True),
    Column("display_name", String(100)),
    Column("role", String(10), nullable=False),
    Column("region_code", String(20)),
    Column("unit_id", String(40)),
    Column("can_unmask", Boolean, nullable=False),
    Column("email", String(200)),
    Column("password_hash", String(200)),
    Column("disabled", Boolean, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ux_users_email", "email", unique=True),
)

# Append-only audit trail (data_access.audit): who did what to which object, in which scope, with what
# outcome. The dashboard's read-only database role may INSERT here and nothing else (bangfu db grant-readonly).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("username", String(100)),
    Column("event", String(20), nullable=False),
    Column("object", String(200)),
    Column("scope", Text),
    Column("outcome", String(20), nullable=False),
    Column("detail", Text),
    # hash chain (data_access.audit): row_hash = sha256(prev_hash + the row's fields); `bangfu audit verify`
    Column("prev_hash", String(64)),
    Column("row_hash", String(64)),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_username_at", "username", "at"),
)

# Dashboard sessions (ui.auth): a signed token in the browser's cookie, its SHA-256 here; expiring and
# revocable on the server. kind: "user" (idle timeout applies) or "screen" (a meeting screen: masked, read-only).
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(40), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("client", String(100)),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
    Index("ix_sessions_username", "username"),
)

# Failed sign-ins per client address (data_access.users): throttles a client that guesses, so that nobody
# can lock out a named account at will and nobody learns from the answers whether a name exists.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("client", String(100), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", DateTime, nullable=False),
    Column("blocked_until", DateTime),
)

# Supervision orders (督办, RULES.md M7; data_access/supervision.py). An order goes to one sending unit on
# issued_on with a deadline; its items are the problem rows (subjects) of `bangfu problems KIND --as-of issued_on
# --unit unit_id [--region region_code]` (or a chosen part of them). Item status is never stored: it is computed
# from the ledger for any date. detail: the row as it was at issue (JSON), for display only.
supervision_orders = Table(
    "supervision_orders",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("kind", String(12), nullable=False),
    Column("unit_id", String(40), nullable=False),
    Column("region_code", String(20)),
    Column("issued_on", Date, nullable=False),
    Column("deadline", Date, nullable=False),
    Column("note", Text),
    Column("issued_by", String(100)),
    Column("created_at", DateTime, nullable=False),
    Index("ix_supervision_orders_unit", "unit_id"),
)

supervision_items = Table(
    "supervision_items",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("subject", String(40), primary_key=True),
    Column("detail", Text),
    Index("ix_supervision_items_subject", "subject"),
)

# The unit's one written response (整改说明) per order; it never closes an item (only the ledger does).
supervision_responses = Table(
    "supervision_responses",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("text", Text, nullable=False),
    Column("username", String(100)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

USER_ROLES = ("province", "city", "county", "unit")
