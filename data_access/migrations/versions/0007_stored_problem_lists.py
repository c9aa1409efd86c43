"""stored uncovered households and missing ratings; overdue pairings per helper in helper_status

Stored summaries are a cache of the metric engine: this migration empties them (the dashboard computes
live until the next `bangfu refresh` or import stores them with the new tables filled).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("summary_snapshots", "metric_summary", "pairing_status", "helper_status"):
        op.execute(f"DELETE FROM {table}")
    op.add_column("helper_status", sa.Column("overdue", sa.Integer(), nullable=True))
    problems = sa.text("load > 5 OR overdue > 0")
    op.create_index("ix_helper_status_problems", "helper_status", ["as_of", "helper_id"],
                    postgresql_where=problems, sqlite_where=problems)
    op.create_index("ix_ratings_year_grade", "ratings", ["year", "grade", "helper_id"])
    op.create_table(
        "uncovered_status",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("household_id", sa.String(length=40), nullable=False),
        sa.Column("village_code", sa.String(length=20), nullable=False),
    )
    op.create_index("ix_uncovered_status_household", "uncovered_status", ["as_of", "household_id"])
    op.create_index("ix_uncovered_status_village", "uncovered_status", ["village_code"])
    op.create_table(
        "rating_missing",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("helper_id", sa.String(length=40), nullable=False),
    )
    op.create_index("ix_rating_missing_year_helper", "rating_missing", ["year", "helper_id"])


def downgrade() -> None:
    op.drop_index("ix_ratings_year_grade", table_name="ratings")
    op.drop_index("ix_helper_status_problems", table_name="helper_status")
    op.drop_index("ix_rating_missing_year_helper", table_name="rating_missing")
    op.drop_table("rating_missing")
    op.drop_index("ix_uncovered_status_village", table_name="uncovered_status")
    op.drop_index("ix_uncovered_status_household", table_name="uncovered_status")
    op.drop_table("uncovered_status")
    with op.batch_alter_table("helper_status") as batch:
        batch.drop_column("overdue")
