"""The Alembic history is the one source of the schema: it must match the models."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.lib.db import import_models, metadata, upgrade_database


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


async def test_0008_keys_existing_names_and_tells_repeated_ones_apart(
    empty_database: Settings,
) -> None:
    """Achievements named alike before names were unique get " (2)", " (3)"..."""
    await asyncio.to_thread(upgrade_database, empty_database, "0005_telegram")
    engine = create_async_engine(empty_database.database_url, poolclass=NullPool)
    rows = [
        ("01900000-0000-7000-8000-000000000001", "en", "Early Bird"),
        ("01900000-0000-7000-8000-000000000002", "en", "early bird"),
        ("01900000-0000-7000-8000-000000000003", "en", "EARLY BIRD "),
        ("01900000-0000-7000-8000-000000000003", "ru", "Early Bird"),
        ("01900000-0000-7000-8000-000000000004", "en", "Straße"),
    ]
    async with engine.begin() as connection:
        for achievement_id in sorted({row[0] for row in rows}):
            await connection.execute(
                text("INSERT INTO achievement (id, points, created_at) VALUES (:id, 1, now())"),
                {"id": achievement_id},
            )
        for achievement_id, language, name in rows:
            await connection.execute(
                text(
                    "INSERT INTO achievement_translation (achievement_id, language, name, "
                    "description) VALUES (:id, :language, :name, '')"
                ),
                {"id": achievement_id, "language": language, "name": name},
            )
    await asyncio.to_thread(upgrade_database, empty_database)
    async with engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT achievement_id::text, language, name, name_key FROM achievement_translation "
                "ORDER BY achievement_id, language"
            )
        )
        migrated = [tuple(row) for row in result]
    await engine.dispose()
    assert migrated == [
        ("01900000-0000-7000-8000-000000000001", "en", "Early Bird", "early bird"),
        ("01900000-0000-7000-8000-000000000002", "en", "early bird (2)", "early bird (2)"),
        ("01900000-0000-7000-8000-000000000003", "en", "EARLY BIRD (3)", "early bird (3)"),
        ("01900000-0000-7000-8000-000000000003", "ru", "Early Bird", "early bird"),
        ("01900000-0000-7000-8000-000000000004", "en", "Straße", "strasse"),
    ]
