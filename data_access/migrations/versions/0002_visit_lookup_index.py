"""visits: index (household, helper, mode, date) for the per-pairing last in-home visit lookup

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visits") as batch_op:
        batch_op.drop_index("ix_visits_household_helper_date")
        batch_op.create_index("ix_visits_household_helper_mode_date", ["household_id", "helper_id", "mode", "visit_date"])


def downgrade() -> None:
    with op.batch_alter_table("visits") as batch_op:
        batch_op.drop_index("ix_visits_household_helper_mode_date")
        batch_op.create_index("ix_visits_household_helper_date", ["household_id", "helper_id", "visit_date"])
