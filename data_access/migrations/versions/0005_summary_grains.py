"""summary grains and roll-ups, per-pairing / per-helper status of the latest summary date, visits by helper

Stored summaries are a cache of the metric engine: this migration empties them (the dashboard computes
live until the next `bangfu refresh` or import stores them in the new layout).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM summary_snapshots")
    op.drop_index("ix_metric_summary_kind_date", table_name="metric_summary")
    op.drop_table("metric_summary")
    op.create_table(
        "metric_summary",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("grain", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("unit_id", sa.String(length=40), nullable=True),
        sa.Column("village_code", sa.String(length=20), nullable=True),
        sa.Column("bucket", sa.Integer(), nullable=True),
        sa.Column("n1", sa.Integer(), nullable=False),
        sa.Column("n2", sa.Integer(), nullable=False),
        sa.Column("n3", sa.Integer(), nullable=False),
        sa.Column("n4", sa.Integer(), nullable=False),
    )
    op.create_index("ix_metric_summary_kind_grain_date", "metric_summary", ["kind", "grain", "as_of", "village_code"])
    op.create_table(
        "pairing_status",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("pairing_id", sa.String(length=40), nullable=False),
        sa.Column("helper_id", sa.String(length=40), nullable=False),
        sa.Column("household_id", sa.String(length=40), nullable=False),
        sa.Column("unit_id", sa.String(length=40), nullable=False),
        sa.Column("village_code", sa.String(length=20), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("last_visit", sa.Date(), nullable=True),
        sa.Column("gap_days", sa.Integer(), nullable=False),
        sa.Column("interval_months", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
    )
    op.create_index("ix_pairing_status_overdue_gap", "pairing_status", ["as_of", "overdue", "gap_days"])
    op.create_index("ix_pairing_status_unit", "pairing_status", ["unit_id"])
    op.create_index("ix_pairing_status_helper", "pairing_status", ["helper_id"])
    op.create_index("ix_pairing_status_village", "pairing_status", ["village_code"])
    op.create_table(
        "helper_status",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("helper_id", sa.String(length=40), nullable=False),
        sa.Column("unit_id", sa.String(length=40), nullable=False),
        sa.Column("load", sa.Integer(), nullable=False),
    )
    op.create_index("ix_helper_status_load", "helper_status", ["as_of", "load"])
    op.create_index("ix_helper_status_unit", "helper_status", ["unit_id"])
    op.drop_index("ix_visits_helper", table_name="visits")
    op.create_index("ix_visits_helper_mode_date", "visits", ["helper_id", "mode", "visit_date"])


def downgrade() -> None:
    op.drop_index("ix_visits_helper_mode_date", table_name="visits")
    op.create_index("ix_visits_helper", "visits", ["helper_id"])
    op.drop_table("helper_status")
    op.drop_table("pairing_status")
    op.execute("DELETE FROM summary_snapshots")
    op.drop_index("ix_metric_summary_kind_grain_date", table_name="metric_summary")
    op.drop_table("metric_summary")
    op.create_table(
        "metric_summary",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("unit_id", sa.String(length=40), nullable=True),
        sa.Column("village_code", sa.String(length=20), nullable=True),
        sa.Column("n1", sa.Integer(), nullable=False),
        sa.Column("n2", sa.Integer(), nullable=False),
        sa.Column("n3", sa.Integer(), nullable=False),
        sa.Column("n4", sa.Integer(), nullable=False),
    )
    op.create_index("ix_metric_summary_kind_date", "metric_summary", ["kind", "as_of"])
