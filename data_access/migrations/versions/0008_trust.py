"""trust in daily operation: summary rules version, server-side sessions, login throttle by client,
tamper-evident audit log

- summary_snapshots.rules_version: the version of the rules (summary.RULES_VERSION) that computed a stored
  summary; readers use only rows of the current version, `bangfu db upgrade` and the service recompute the rest.
  Existing rows get 0 (stale: recomputed).
- sessions: signed, expiring, server-revocable dashboard sessions (only a hash of the token is stored).
- login_throttle: failed sign-ins counted per client address as well as per account.
- audit_log.prev_hash/row_hash: a hash chain over the audit rows (`bangfu audit verify`).

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("summary_snapshots") as batch:
        batch.add_column(sa.Column("rules_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(length=64), primary_key=True),
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("client", sa.String(length=100)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime()),
    )
    op.create_index("ix_sessions_username", "sessions", ["username"])
    op.create_table(
        "login_throttle",
        sa.Column("client", sa.String(length=100), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("blocked_until", sa.DateTime()),
    )
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64)))
        batch.add_column(sa.Column("row_hash", sa.String(length=64)))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
    op.drop_table("login_throttle")
    op.drop_index("ix_sessions_username", table_name="sessions")
    op.drop_table("sessions")
    with op.batch_alter_table("summary_snapshots") as batch:
        batch.drop_column("rules_version")
