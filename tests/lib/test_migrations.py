"""The Alembic history is the one source of the schema: it must match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.lib.db import import_models, metadata


async def test_migrated_schema_matches_the_models(migrated_database: Settings) -> None:
    import_models()
    engine = create_async_engine(migrated_database.database_url, poolclass=NullPool)
    async with engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata
            )
        )
    await engine.dispose()
    assert differences == [], f"models and migrations differ; generate a migration: {differences}"
