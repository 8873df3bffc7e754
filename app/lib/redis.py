"""Redis client: redis-py asyncio from REDIS_URL, or an in-process stand-in for the embedded run.

The stand-in is fakeredis: the same API as redis-py, key expiry included, so code written
against Redis behaves the same in both runs.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from app.config import Settings


def create_redis(settings: Settings, **options: Any) -> Redis:
    if settings.redis_url:
        # A blocking pool of a set size: under a storm of requests a command waits up to
        # REDIS_POOL_TIMEOUT_SECONDS for a free connection instead of failing with "Too many
        # connections" (or opening thousands of them).
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_pool_timeout_seconds,
            health_check_interval=30,
            socket_connect_timeout=5,
            socket_timeout=10,
            retry_on_timeout=True,
            **options,
        )
        return Redis.from_pool(pool)
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
