"""Liveness and readiness: readiness really talks to the database and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from sqlalchemy.ext.asyncio import AsyncEngine

from app.lib.db import ping_database
from app.lib.dependencies import RedisDep
from app.lib.redis import ping_redis

CHECK_TIMEOUT_SECONDS = 2.0


class HealthStatus(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


async def _check(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"down: {type(exc).__name__}"
    return "ok"


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", summary="The process is up", cache=False)
    async def live(self) -> HealthStatus:
        return HealthStatus(status="ok")

    @get(
        "/ready",
        summary="The database and Redis answer (503 when one does not)",
        cache=False,
        responses={
            503: ResponseSpec(data_container=HealthStatus, description="A dependency is down")
        },
    )
    async def ready(
        self, db_engine: NamedDependency[AsyncEngine], redis: RedisDep
    ) -> Response[HealthStatus]:
        database_status, redis_status = await asyncio.gather(
            _check(ping_database(db_engine)), _check(ping_redis(redis))
        )
        checks = {"database": database_status, "redis": redis_status}
        healthy = all(value == "ok" for value in checks.values())
        return Response(
            HealthStatus(status="ok" if healthy else "unavailable", checks=checks),
            status_code=200 if healthy else 503,
        )
