"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from data_access import schema
from data_access.db import schema_ready, upgrade


def test_migrated_schema_matches_metadata(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == []
    assert schema_ready(engine)
    indexes = {i["name"] for i in inspect(engine).get_indexes("visits")}
    assert "ix_visits_household_helper_mode_date" in indexes


def test_upgrade_is_repeatable(engine):
    upgrade(engine)  # already at head: a no-op, not an error
    assert schema_ready(engine)
