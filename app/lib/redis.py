"""Redis client: redis-py asyncio from REDIS_URL, or an in-process stand-in for the embedded run.

The stand-in is fakeredis: the same API as redis-py, key expiry included, so code written
against Redis behaves the same in both runs.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from app.config import Settings


def create_redis(settings: Settings, **options: Any) -> Redis:
    if settings.redis_url:
        return Redis.from_url(
            settings.redis_url,
            health_check_interval=30,
            socket_connect_timeout=5,
            socket_timeout=10,
            retry_on_timeout=True,
            **options,
        )
    from fakeredis import FakeAsyncRedis

    return FakeAsyncRedis(server=_embedded_server(), **options)


_server: Any = None


def _embedded_server() -> Any:
    """One fake server per process, so every client of the embedded run shares its data."""
    global _server
    if _server is None:
        from fakeredis import FakeServer

        _server = FakeServer()
    return _server


async def ping_redis(redis: Redis) -> None:
    await redis.ping()
