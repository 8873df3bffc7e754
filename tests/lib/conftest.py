"""Fixtures of the platform tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from app.config import Settings
from tests.support import make_settings


def _dsn(settings: Settings, database: str) -> str:
    parts = urlsplit(settings.database_url.replace("postgresql+asyncpg://", "postgresql://"))
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
async def empty_database(migrated_database: Settings) -> AsyncIterator[Settings]:
    """A fresh, empty PostgreSQL database next to the test database, dropped afterwards."""
    name = f"{urlsplit(migrated_database.database_url).path.lstrip('/')}_empty"
    admin = await asyncpg.connect(_dsn(migrated_database, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = _dsn(migrated_database, name).replace("postgresql://", "postgresql+asyncpg://")
        yield make_settings(database_url=url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
