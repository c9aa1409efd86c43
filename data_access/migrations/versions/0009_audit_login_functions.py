"""PostgreSQL: the only ways the dashboard's read-only role writes the audit log and the sign-in counters

Two SECURITY DEFINER functions (owned by the role running the migration, which owns the tables;
``search_path`` pinned to ``pg_catalog, pg_temp`` and every table schema-qualified; EXECUTE revoked from
PUBLIC — ``bangfu db grant-readonly ROLE`` grants it to the dashboard's role):

- ``bangfu_audit_append(username, event, object, scope, outcome, detail, at)`` appends one audit row to the
  hash chain (data_access.audit): a transaction-level advisory lock serialises appends, then the last
  row's hash, the next id, the row's own hash. A caller that is not a member of the owner role may not
  append the events of the owner's commands or of the sign-in bookkeeping (import, user_*, login_locked,
  login_throttled) and gets the database's clock for ``at``.
- ``bangfu_login_result(username, client, password_ok, now)`` does the whole bookkeeping of one sign-in
  attempt whose password the application has checked (argon2 is not available in the database):
  client and account throttling in ``login_throttle``, the mirror in ``users.failed_attempts`` /
  ``users.locked_until``, and the audit rows. The rules are data_access.users' (``_login_bookkeeping`` is the
  same logic for SQLite); the constants below must equal ``users.CLIENT_THRESHOLD``, ``ACCOUNT_THRESHOLD``,
  ``THROTTLE_WINDOW`` and ``LOCKOUT_DURATION`` (tests/test_users.py checks them on both databases).
  A caller that is not a member of the owner role gets the database's clock for ``now``.

The internal ``bangfu_audit_insert`` (the chain append itself) is callable by the owner only.
On SQLite this migration does nothing: the same logic runs in Python under SQLite's write lock.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
from sqlalchemy import text

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CLIENT_THRESHOLD = 10
ACCOUNT_THRESHOLD = 20
WINDOW = "15 minutes"
BLOCK = "15 minutes"
AUDIT_LOCK = 7262001  # pg_advisory_xact_lock keys of this project
LOGIN_LOCK = 7262002
OWNER_EVENTS = ("import", "user_add", "user_disable", "user_enable", "user_passwd", "login_locked",
                "login_throttled")

AUDIT_INSERT = """
CREATE OR REPLACE FUNCTION {s}.bangfu_audit_insert(
    p_username text, p_event text, p_object text, p_scope text, p_outcome text, p_detail text, p_at timestamp)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_prev text;
    v_id bigint;
    v_parts text[] := ARRAY[]::text[];
    v_f text;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- a snapshot older than the lock could miss the last row and fork the chain
        RAISE EXCEPTION 'bangfu_audit_insert needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    IF p_at IS NULL OR p_event IS NULL OR p_outcome IS NULL THEN
        RAISE EXCEPTION 'bangfu_audit_insert: at, event and outcome are required';
    END IF;
    PERFORM pg_advisory_xact_lock({audit_lock});
    SELECT a.row_hash INTO v_prev FROM {s}.audit_log a ORDER BY a.id DESC LIMIT 1;
    v_id := nextval(pg_get_serial_sequence('{s}.audit_log', 'id'));
    FOREACH v_f IN ARRAY ARRAY[v_prev, v_id::text, to_char(p_at, 'YYYY-MM-DD"T"HH24:MI:SS.US'), p_username,
                               p_event, p_object, p_scope, p_outcome, p_detail] LOOP
        v_parts := v_parts || CASE WHEN v_f IS NULL THEN '~' ELSE length(v_f)::text || ':' || v_f END;
    END LOOP;
    INSERT INTO {s}.audit_log (id, at, username, event, object, scope, outcome, detail, prev_hash, row_hash)
    VALUES (v_id, p_at, p_username, p_event, p_object, p_scope, p_outcome, p_detail, v_prev,
            encode(sha256(convert_to(array_to_string(v_parts, '|'), 'UTF8')), 'hex'));
    RETURN v_id;
END
$fn$;
"""

AUDIT_APPEND = """
CREATE OR REPLACE FUNCTION {s}.bangfu_audit_append(
    p_username text, p_event text, p_object text, p_scope text, p_outcome text, p_detail text,
    p_at timestamp DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_owner boolean := pg_has_role(session_user, current_user, 'MEMBER');
    v_at timestamp := p_at;
BEGIN
    IF NOT v_owner AND p_event = ANY (ARRAY[{owner_events}]) THEN
        RAISE EXCEPTION 'permission denied: the dashboard role may not append "%" audit rows', p_event
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_at IS NULL OR NOT v_owner THEN
        v_at := clock_timestamp() AT TIME ZONE 'UTC';
    END IF;
    RETURN {s}.bangfu_audit_insert(left(p_username, 100), p_event, left(p_object, 200), p_scope,
                                   coalesce(p_outcome, 'ok'), p_detail, v_at);
END
$fn$;
"""

LOGIN_RESULT = """
CREATE OR REPLACE FUNCTION {s}.bangfu_login_result(
    p_username text, p_client text, p_password_ok boolean, p_now timestamp DEFAULT NULL,
    OUT o_reason text, OUT o_until timestamp)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_now timestamp := p_now;
    v_name text := left(coalesce(p_username, ''), 100);
    v_client text := left(coalesce(p_client, '-'), 98);
    v_ckey text;
    v_akey text;
    v_user {s}.users%ROWTYPE;
    v_found boolean;
    v_scope text;
    v_nothing text := 'region=' || chr(8709) || ',unit=' || chr(8709);
    v_c {s}.login_throttle%ROWTYPE;
    v_c_found boolean;
    v_a {s}.login_throttle%ROWTYPE;
    v_a_found boolean;
    v_reason text;
    v_cf integer;
    v_cw timestamp;
    v_cb timestamp;
    v_af integer;
    v_aw timestamp;
    v_ab timestamp;
BEGIN
    IF v_now IS NULL OR NOT pg_has_role(session_user, current_user, 'MEMBER') THEN
        v_now := clock_timestamp() AT TIME ZONE 'UTC';
    END IF;
    v_ckey := 'c:' || v_client;
    v_akey := 'u:' || left(v_name, 98);
    PERFORM pg_advisory_xact_lock({login_lock});
    -- forget counts whose window and block are both over
    DELETE FROM {s}.login_throttle t
     WHERE t.window_start <= v_now - interval '{window}' AND (t.blocked_until IS NULL OR t.blocked_until <= v_now);
    SELECT * INTO v_c FROM {s}.login_throttle t WHERE t.client = v_ckey;
    v_c_found := FOUND;
    SELECT * INTO v_a FROM {s}.login_throttle t WHERE t.client = v_akey;
    v_a_found := FOUND;
    SELECT * INTO v_user FROM {s}.users u WHERE u.username = v_name FOR UPDATE;
    v_found := FOUND;
    IF v_found THEN
        v_scope := CASE
            WHEN v_user.disabled THEN v_nothing
            WHEN v_user.role = 'province' THEN 'all'
            WHEN v_user.role IN ('city', 'county') AND coalesce(v_user.region_code, '') <> ''
                THEN 'region=' || v_user.region_code
            WHEN v_user.role = 'unit' AND coalesce(v_user.unit_id, '') <> '' THEN 'unit=' || v_user.unit_id
            ELSE v_nothing END;
    END IF;

    -- a blocked client or a locked name: refused without looking at the password, nothing extended
    IF v_a_found AND v_a.blocked_until > v_now THEN
        o_reason := 'locked';
        o_until := v_a.blocked_until;
    END IF;
    IF v_c_found AND v_c.blocked_until > v_now THEN
        o_reason := coalesce(o_reason, 'throttled');
        o_until := GREATEST(o_until, v_c.blocked_until);
    END IF;
    IF o_until IS NOT NULL THEN
        PERFORM {s}.bangfu_audit_insert(v_name, 'login_failed', v_name, v_scope, 'denied', o_reason, v_now);
        RETURN;
    END IF;

    IF v_found AND p_password_ok AND v_user.password_hash IS NOT NULL THEN
        IF v_user.disabled THEN
            PERFORM {s}.bangfu_audit_insert(v_name, 'login_failed', v_name, v_scope, 'denied', 'disabled', v_now);
            o_reason := 'disabled';
            RETURN;
        END IF;
        IF v_a_found THEN
            DELETE FROM {s}.login_throttle t WHERE t.client = v_akey;
        END IF;
        IF v_user.failed_attempts <> 0 OR v_user.locked_until IS NOT NULL THEN
            UPDATE {s}.users u SET failed_attempts = 0, locked_until = NULL, updated_at = v_now
             WHERE u.username = v_name;
        END IF;
        PERFORM {s}.bangfu_audit_insert(v_name, 'login_ok', v_name, v_scope, 'ok', 'password', v_now);
        o_reason := 'ok';
        RETURN;
    END IF;

    -- a failure: counted for the client and for the name (a window or block that is over starts afresh)
    v_reason := CASE WHEN NOT v_found THEN 'unknown_user'
                     WHEN v_user.password_hash IS NULL THEN 'no_password' ELSE 'bad_password' END;
    IF v_c_found AND v_c.blocked_until IS NULL AND v_c.window_start > v_now - interval '{window}' THEN
        v_cf := v_c.failures + 1;
        v_cw := v_c.window_start;
    ELSE
        v_cf := 1;
        v_cw := v_now;
    END IF;
    v_cb := CASE WHEN v_cf >= {client_threshold} THEN v_now + interval '{block}' END;
    IF v_a_found AND v_a.blocked_until IS NULL AND v_a.window_start > v_now - interval '{window}' THEN
        v_af := v_a.failures + 1;
        v_aw := v_a.window_start;
    ELSE
        v_af := 1;
        v_aw := v_now;
    END IF;
    v_ab := CASE WHEN v_af >= {account_threshold} THEN v_now + interval '{block}' END;
    INSERT INTO {s}.login_throttle AS t (client, failures, window_start, blocked_until)
    VALUES (v_ckey, v_cf, v_cw, v_cb), (v_akey, v_af, v_aw, v_ab)
    ON CONFLICT (client) DO UPDATE
        SET failures = excluded.failures, window_start = excluded.window_start, blocked_until = excluded.blocked_until;
    IF v_found THEN
        UPDATE {s}.users u SET failed_attempts = v_af, locked_until = v_ab, updated_at = v_now
         WHERE u.username = v_name;
    END IF;
    PERFORM {s}.bangfu_audit_insert(v_name, 'login_failed', v_name, v_scope, 'failed', v_reason, v_now);
    IF v_ab IS NOT NULL THEN
        PERFORM {s}.bangfu_audit_insert(v_name, 'login_locked', v_name, v_scope, 'ok',
            format('{{"failed_attempts": %s, "locked_until": "%s"}}', v_af,
                   to_char(v_ab, 'YYYY-MM-DD"T"HH24:MI:SS')), v_now);
    END IF;
    IF v_cb IS NOT NULL THEN
        PERFORM {s}.bangfu_audit_insert(v_name, 'login_throttled', v_client, NULL, 'ok',
            format('{{"blocked_until": "%s", "failures": %s}}', to_char(v_cb, 'YYYY-MM-DD"T"HH24:MI:SS'), v_cf),
            v_now);
    END IF;
    IF v_ab IS NOT NULL OR v_cb IS NOT NULL THEN
        o_reason := CASE WHEN v_ab IS NOT NULL THEN 'locked' ELSE 'throttled' END;
        o_until := GREATEST(v_ab, v_cb);
    ELSE
        o_reason := v_reason;
    END IF;
END
$fn$;
"""

FUNCTIONS = {
    "bangfu_audit_insert": "text, text, text, text, text, text, timestamp",
    "bangfu_audit_append": "text, text, text, text, text, text, timestamp",
    "bangfu_login_result": "text, text, boolean, timestamp",
}


def _schema(bind) -> str:
    name = bind.execute(text("SELECT current_schema()")).scalar()
    return '"' + name.replace('"', '""') + '"'


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite: data_access.audit and data_access.users do the same in Python
    s = _schema(bind)
    params = dict(s=s, audit_lock=AUDIT_LOCK, login_lock=LOGIN_LOCK, window=WINDOW, block=BLOCK,
                  client_threshold=CLIENT_THRESHOLD, account_threshold=ACCOUNT_THRESHOLD,
                  owner_events=", ".join(f"'{e}'" for e in OWNER_EVENTS))
    for sql in (AUDIT_INSERT, AUDIT_APPEND, LOGIN_RESULT):
        # exec_driver_sql passes parameters (none): the driver's placeholder character is doubled
        bind.exec_driver_sql(sql.format(**params).replace("%", "%%"))
    for name, args in FUNCTIONS.items():
        bind.exec_driver_sql(f"REVOKE ALL ON FUNCTION {s}.{name}({args}) FROM PUBLIC")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    s = _schema(bind)
    for name, args in FUNCTIONS.items():
        bind.exec_driver_sql(f"DROP FUNCTION IF EXISTS {s}.{name}({args})")
