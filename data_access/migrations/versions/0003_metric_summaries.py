"""metric summaries: metric_summary and summary_snapshots

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
    op.create_table(
        "summary_snapshots",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("refreshed_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("kind", "as_of"),
    )


def downgrade() -> None:
    op.drop_table("summary_snapshots")
    op.drop_index("ix_metric_summary_kind_date", table_name="metric_summary")
    op.drop_table("metric_summary")
