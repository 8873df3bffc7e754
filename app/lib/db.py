"""Database set-up: advanced-alchemy's SQLAlchemy plugin, Alembic configuration, migrations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from advanced_alchemy.base import orm_registry
from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import NullPool

from app.config import BASE_DIR, Settings

MIGRATIONS_DIR = BASE_DIR / "app" / "db" / "migrations"
metadata = orm_registry.metadata


def import_models() -> None:
    """Import every domain's models so that the metadata (and Alembic) sees all tables."""
    import app.db.models  # noqa: F401


def create_sqlalchemy_config(settings: Settings, *, pooled: bool = True) -> SQLAlchemyAsyncConfig:
    import_models()
    engine_config = EngineConfig()
    if settings.is_sqlite:
        Path(settings.database_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine_config = EngineConfig(connect_args={"timeout": 30})
    elif pooled:
        # No pre-ping: it costs three round trips (BEGIN, ";", ROLLBACK) per checkout. A
        # connection PostgreSQL closed is seen without one (_replace_closed_connections) and
        # pool_recycle retires old connections (server-side limits, idle cuts on the way).
        engine_config = EngineConfig(
            pool_pre_ping=False,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            pool_timeout=10,
            pool_recycle=1800,
        )
    else:
        engine_config = EngineConfig(poolclass=NullPool)
    config = SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        engine_config=engine_config,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit_include_redirects",
        create_all=False,
        set_default_exception_handler=False,
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS_DIR),
            version_table_name="alembic_version",
            render_as_batch=True,
        ),
    )
    if settings.is_sqlite:
        _enable_sqlite_foreign_keys(config.get_engine())
    elif pooled:
        _replace_closed_connections(config.get_engine())
    return config


def _replace_closed_connections(engine: AsyncEngine) -> None:
    """A pooled connection whose server end has gone (the backend was terminated, PostgreSQL
    restarted) is swapped for a new one at checkout, so the request that draws it still
    succeeds. asyncpg learns of the closed socket as soon as the event loop reads its end, so
    this costs no round trip, unlike ``pool_pre_ping``."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver_connection = getattr(dbapi_connection, "driver_connection", None)
        if driver_connection is not None and driver_connection.is_closed():
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError("the server closed this pooled connection")


def _enable_sqlite_foreign_keys(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def create_sqlalchemy_plugin(config: SQLAlchemyAsyncConfig) -> SQLAlchemyPlugin:
    return SQLAlchemyPlugin(config=config)


def upgrade_database(settings: Settings, revision: str = "head") -> None:
    """Apply Alembic migrations (blocking: call it from a thread inside an event loop)."""
    from advanced_alchemy.alembic.commands import AlembicCommands

    AlembicCommands(create_sqlalchemy_config(settings, pooled=False)).upgrade(revision)


async def upgrade_database_async(settings: Settings) -> None:
    # Alembic's async env.py calls asyncio.run(), so it needs a thread of its own.
    await asyncio.to_thread(upgrade_database, settings)


async def ping_database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


@asynccontextmanager
async def read_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A short session of its own for reads outside a request (the announcer's views).

    Autocommit: each statement is its own transaction, so the connection is never left
    "idle in transaction" between statements, and it goes back to the pool on exit."""
    async with AsyncSession(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    ) as session:
        yield session
