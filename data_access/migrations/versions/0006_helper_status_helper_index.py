"""helper_status by helper (the units page joins a unit's helpers to their stored loads)

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_helper_status_helper", "helper_status", ["helper_id"])


def downgrade() -> None:
    op.drop_index("ix_helper_status_helper", table_name="helper_status")
