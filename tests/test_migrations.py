"""Migrations create exactly the models' schema, and go down and up again, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import app.models
from app.db import create_engine
from app.db.base import metadata
from app.db.migrate import downgrade, upgrade
from tests.backends import fresh_database
from tests.conftest import make_settings


def _drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
    )
    return list(compare_metadata(context, metadata))


def _tables_and_indexes(connection: Connection) -> tuple[set[str], set[str]]:
    inspector = inspect(connection)
    tables = set(inspector.get_table_names()) - {"alembic_version"}
    indexes = {ix["name"] for table in tables for ix in inspector.get_indexes(table) if ix["name"]}
    return tables, indexes


async def test_upgrade_downgrade_upgrade_with_no_drift(tmp_path: Path) -> None:
    async with fresh_database(tmp_path) as url:
        settings = make_settings(url)
        engine = create_engine(settings)
        try:
            await asyncio.to_thread(upgrade, settings)
            async with engine.connect() as connection:
                tables, indexes = await connection.run_sync(_tables_and_indexes)
                assert await connection.run_sync(_drift) == []
            assert tables == set(app.models.ALL_TABLES)
            # Partial indexes of the seed exist on both databases.
            assert {
                "idx_participants_connected",
                "idx_comments_unresolved",
                "idx_notifications_unread",
            } <= indexes

            await asyncio.to_thread(downgrade, settings, "base")
            async with engine.connect() as connection:
                assert (await connection.run_sync(_tables_and_indexes))[0] == set()

            await asyncio.to_thread(upgrade, settings)
            async with engine.connect() as connection:
                assert await connection.run_sync(_drift) == []
        finally:
            await engine.dispose()
