"""Liveness and readiness: readiness really talks to the database and Redis, and checks that
the database schema is at the migrations' head revision (an unmigrated database answers
``SELECT 1`` but every page would be a 500)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import cache

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.lib.auth import PUBLIC_ROUTE
from app.lib.db import MIGRATIONS_DIR
from app.lib.dependencies import RedisDep
from app.lib.logging import ACCESS_LOG_OPT_OUT
from app.lib.redis import ping_redis

CHECK_TIMEOUT_SECONDS = 2.0
VERSION_TABLE = "alembic_version"


class HealthStatus(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


class SchemaNotReady(Exception):
    """The database answers but its schema is not the one this code needs; says why."""


@cache
def migration_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(the head revisions, every revision) of the Alembic history shipped with the code."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    return frozenset(script.get_heads()), frozenset(r.revision for r in script.walk_revisions())


async def check_database(engine: AsyncEngine) -> None:
    """The database answers and its schema is at the head revision.

    A revision this code does not know counts as ready: during a rolling upgrade the new
    release's migrations run before the old pods are gone, and those pods must keep serving.
    """
    heads, known = migration_revisions()
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        if not await connection.run_sync(lambda sync: inspect(sync).has_table(VERSION_TABLE)):
            raise SchemaNotReady("not migrated (no alembic_version table): run make migrate")
        rows = await connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608
        current = frozenset(row[0] for row in rows)
    if current == heads or current - known:
        return
    at = ", ".join(sorted(current)) or "no revision"
    raise SchemaNotReady(
        f"schema behind: at {at}, head is {', '.join(sorted(heads))}: run make migrate"
    )


async def _check(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except SchemaNotReady as exc:
        return str(exc)
    except Exception as exc:
        return f"down: {type(exc).__name__}"
    return "ok"


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    # Probes every few seconds: no access line.
    opt = {**PUBLIC_ROUTE, ACCESS_LOG_OPT_OUT: True}

    @get("/live", summary="The process is up", cache=False)
    async def live(self) -> HealthStatus:
        """Answers 200 while the process runs; it touches no dependency."""
        return HealthStatus(status="ok")

    @get(
        "/ready",
        summary="The database and Redis answer and the schema is migrated (503 otherwise)",
        cache=False,
        responses={
            503: ResponseSpec(
                data_container=HealthStatus,
                description="A dependency is down, or the database schema is not at the "
                "migrations' head revision (run `make migrate`); `checks` says which and why",
            )
        },
    )
    async def ready(
        self, db_engine: NamedDependency[AsyncEngine], redis: RedisDep
    ) -> Response[HealthStatus]:
        """200 when PostgreSQL (or SQLite) and Redis answer and the database schema is at
        the head revision of the migrations shipped with this code."""
        database_status, redis_status = await asyncio.gather(
            _check(check_database(db_engine)), _check(ping_redis(redis))
        )
        checks = {"database": database_status, "redis": redis_status}
        healthy = all(value == "ok" for value in checks.values())
        return Response(
            HealthStatus(status="ok" if healthy else "unavailable", checks=checks),
            status_code=200 if healthy else 503,
        )
