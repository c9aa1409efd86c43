"""supervision orders (督办, RULES.md M7): orders, their items and the units' responses

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supervision_orders",
        sa.Column("order_id", sa.String(length=40), primary_key=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("unit_id", sa.String(length=40), nullable=False),
        sa.Column("region_code", sa.String(length=20)),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("issued_by", sa.String(length=100)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_supervision_orders_unit", "supervision_orders", ["unit_id"])
    op.create_table(
        "supervision_items",
        sa.Column("order_id", sa.String(length=40), primary_key=True),
        sa.Column("subject", sa.String(length=40), primary_key=True),
        sa.Column("detail", sa.Text()),
    )
    op.create_index("ix_supervision_items_subject", "supervision_items", ["subject"])
    op.create_table(
        "supervision_responses",
        sa.Column("order_id", sa.String(length=40), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("username", sa.String(length=100)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("supervision_responses")
    op.drop_index("ix_supervision_items_subject", table_name="supervision_items")
    op.drop_table("supervision_items")
    op.drop_index("ix_supervision_orders_unit", table_name="supervision_orders")
    op.drop_table("supervision_orders")
