"""Dependencies shared by every domain: settings and the Redis client from app state."""

from __future__ import annotations

from typing import Any, cast

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings


def provide_settings(state: State) -> Settings:
    return cast("Settings", state.settings)


def provide_redis(state: State) -> Redis:
    return cast("Redis", state.redis)


SettingsDep = NamedDependency[Settings]
RedisDep = NamedDependency[Redis]
DbSessionDep = NamedDependency[AsyncSession]

shared_dependencies = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "redis": Provide(provide_redis, sync_to_thread=False),
}


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The caller's address: behind a proxy listed in TRUSTED_PROXIES, the one it forwarded
    (app/lib/proxies.py); otherwise the direct peer, whatever headers it sent."""
    return request.client.host if request.client else "unknown"
