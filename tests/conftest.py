"""Fixtures: the migrated test database, a live server and a clean state for every test.

The suite runs against real PostgreSQL and Redis (TEST_DATABASE_URL, TEST_REDIS_URL; the
defaults are the development machines' 127.0.0.1 services). With CI=true a missing service
fails the run; elsewhere the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.asgi import create_asgi
from app.config import Settings
from app.lib.db import import_models, metadata, upgrade_database
from tests.support import (
    IN_CI,
    LiveServer,
    free_port,
    local_trivia_upstream,
    make_settings,
    service_problem,
)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings(trivia_api_url=local_trivia_upstream())


@pytest.fixture(scope="session")
def migrated_database(settings: Settings) -> Settings:
    """A fresh schema built by the Alembic history (not create_all), once per session."""
    problem = asyncio.run(service_problem(settings))
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true and a required service is down: {problem}")
        pytest.skip(problem)

    async def reset_schema() -> None:
        engine = create_async_engine(settings.database_url, poolclass=NullPool)
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset_schema())
    upgrade_database(settings)
    return settings


@pytest.fixture(scope="session")
def live_server(migrated_database: Settings) -> Iterator[LiveServer]:
    server = LiveServer(create_asgi(migrated_database), free_port()).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
async def clean_state(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Empty every table and the test Redis database after each test that used them."""
    yield
    if "migrated_database" not in request.fixturenames:
        return
    await empty_state(request.getfixturevalue("migrated_database"))


async def empty_state(settings: Settings) -> None:
    """Every table emptied and the test Redis database flushed.

    The TRUNCATE is retried when it loses a deadlock to a server still finishing the last
    test's work (a browser page's disconnect, a notification job)."""
    import_models()
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    try:
        for attempt in range(10):
            try:
                async with engine.begin() as connection:
                    await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                break
            except DBAPIError as exc:
                if "deadlock" not in str(exc) or attempt == 9:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    redis = Redis.from_url(settings.redis_url or "")
    await redis.flushdb()
    await redis.aclose()


@pytest.fixture
async def client(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=20) as http:
        yield http


@pytest.fixture
async def redis_client(migrated_database: Settings) -> AsyncIterator[Redis]:
    redis = Redis.from_url(migrated_database.redis_url or "", decode_responses=True)
    yield redis
    await redis.aclose()
