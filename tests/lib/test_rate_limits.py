"""The shared rate limit when each process reserves attempts from Redis in advance."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.config import Settings
from app.lib.errors import TooManyRequestsError
from app.lib.ratelimit import RateLimiter


async def _accepted(limiter: RateLimiter, attempts: int) -> int:
    accepted, retry_afters = 0, []
    for _ in range(attempts):
        try:
            await limiter.hit("someone")
        except TooManyRequestsError as exc:
            retry_afters.append(int((exc.headers or {})["Retry-After"]))
        else:
            accepted += 1
    assert all(seconds >= 1 for seconds in retry_afters)
    return accepted


async def test_replicas_reserving_attempts_never_accept_more_than_the_limit_together(
    migrated_database: Settings,
) -> None:
    # Two replicas: two applications, each with its own Redis client, one shared count.
    first = Redis.from_url(migrated_database.redis_url or "")
    second = Redis.from_url(migrated_database.redis_url or "")
    try:
        one = RateLimiter(first, "test-reserve", 10, 60, reserve=4)
        other = RateLimiter(second, "test-reserve", 10, 60, reserve=4)
        # The first replica reserves 4 and uses 3; the second takes the other 6; the first
        # spends its last reserved one: 10 in all, never more.
        assert await _accepted(one, 3) == 3
        assert await _accepted(other, 20) == 6
        assert await _accepted(one, 20) == 1
        with pytest.raises(TooManyRequestsError):
            await other.hit("someone")
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_reserving_limiter_asks_redis_once_per_reserved_batch(
    migrated_database: Settings,
) -> None:
    redis = Redis.from_url(migrated_database.redis_url or "")
    calls = 0
    pipeline = redis.pipeline

    def counted_pipeline(transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        nonlocal calls
        calls += 1
        return pipeline(transaction, shard_hint)

    redis.pipeline = counted_pipeline  # type: ignore[method-assign]
    try:
        limiter = RateLimiter(redis, "test-batches", 600, 60, reserve=12)
        assert await _accepted(limiter, 24) == 24
        assert calls == 2
    finally:
        await redis.aclose()
