"""Redis under a storm: more concurrent commands than the pool has connections wait for a
free one instead of failing with "Too many connections"."""

from __future__ import annotations

import asyncio
import time

from app.config import Settings
from app.lib.redis import create_redis
from tests.support import make_settings


async def test_commands_beyond_the_pool_size_wait_for_a_connection(
    migrated_database: Settings,
) -> None:
    redis = create_redis(make_settings(redis_max_connections=4, redis_pool_timeout_seconds=60))
    try:
        started = time.monotonic()
        # Each holds its connection for a second: twelve on four connections take three.
        answers = await asyncio.gather(
            *(redis.blpop([f"quintet-test:empty:{n}"], timeout=1) for n in range(12))
        )
        took = time.monotonic() - started
        assert answers == [None] * 12
        assert took >= 2.5, took
        assert redis.connection_pool.max_connections == 4
    finally:
        await redis.aclose()
