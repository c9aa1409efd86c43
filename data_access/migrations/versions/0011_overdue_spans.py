"""overdue spans (M3 for any date): per pairing, the stretches of days on which it is overdue

Written by the summary refresh (a cache of the ledger like the summaries); empty until the next
`bangfu refresh` or import, and readers fall back to the live SQL while no spans are stored.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "overdue_spans",
        sa.Column("pairing_id", sa.String(length=40), nullable=False),
        sa.Column("helper_id", sa.String(length=40), nullable=False),
        sa.Column("household_id", sa.String(length=40), nullable=False),
        sa.Column("unit_id", sa.String(length=40), nullable=False),
        sa.Column("village_code", sa.String(length=20), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("interval_months", sa.Integer(), nullable=False),
        sa.Column("ref_date", sa.Date(), nullable=False),
        sa.Column("last_visit", sa.Date()),
        sa.Column("overdue_from", sa.Date(), nullable=False),
        sa.Column("overdue_to", sa.Date(), nullable=False),
    )
    op.create_index("ix_overdue_spans_to_from", "overdue_spans", ["overdue_to", "overdue_from"])
    op.create_index("ix_overdue_spans_from", "overdue_spans", ["overdue_from"])


def downgrade() -> None:
    op.drop_table("overdue_spans")
