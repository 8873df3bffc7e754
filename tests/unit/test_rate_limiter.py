"""The fixed-window rate limiter against the real test Redis database."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from app.lib.errors import TooManyRequestsError
from app.lib.ratelimit import RateLimiter
from tests.support import TEST_REDIS_URL


async def accepted(limiter: RateLimiter, subject: str, attempts: int) -> int:
    count = 0
    for _ in range(attempts):
        try:
            await limiter.hit(subject)
        except TooManyRequestsError:
            continue
        count += 1
    return count


async def test_exactly_the_limit_is_accepted_then_429_with_retry_after(
    redis: Redis, limit_name: str
) -> None:
    limiter = RateLimiter(redis, limit_name, limit=3, window_seconds=60)
    for _ in range(3):
        await limiter.hit("ann")
    with pytest.raises(TooManyRequestsError) as refused:
        await limiter.hit("ann")
    assert refused.value.status_code == 429
    retry_after = int((refused.value.headers or {})["Retry-After"])
    assert 1 <= retry_after <= 60
    assert str(retry_after) in refused.value.detail


async def test_subjects_and_limiters_are_counted_apart(redis: Redis, limit_name: str) -> None:
    logins = RateLimiter(redis, limit_name, limit=1, window_seconds=60)
    searches = RateLimiter(redis, f"{limit_name}-other", limit=1, window_seconds=60)
    await logins.hit("ann")
    await logins.hit("ben")
    await searches.hit("ann")
    with pytest.raises(TooManyRequestsError):
        await logins.hit("ann")


async def test_reset_lets_the_subject_in_again(redis: Redis, limit_name: str) -> None:
    limiter = RateLimiter(redis, limit_name, limit=1, window_seconds=60)
    await limiter.hit("ann")
    await limiter.reset("ann")
    await limiter.hit("ann")
    with pytest.raises(TooManyRequestsError):
        await limiter.hit("ann")


async def test_a_new_window_starts_when_the_old_one_ends(redis: Redis, limit_name: str) -> None:
    limiter = RateLimiter(redis, limit_name, limit=1, window_seconds=1)
    await limiter.hit("ann")
    with pytest.raises(TooManyRequestsError) as refused:
        await limiter.hit("ann")
    assert (refused.value.headers or {})["Retry-After"] == "1"
    await asyncio.sleep(1.2)
    await limiter.hit("ann")


async def test_hits_inside_the_window_do_not_extend_it(redis: Redis, limit_name: str) -> None:
    limiter = RateLimiter(redis, limit_name, limit=3, window_seconds=2)
    await limiter.hit("ann")
    await asyncio.sleep(1.1)
    await limiter.hit("ann")
    await limiter.hit("ann")
    await asyncio.sleep(1.1)  # 2.2 s after the first hit: a fixed window has ended
    assert await accepted(limiter, "ann", 3) == 3


@pytest.mark.parametrize(
    ("limit", "reserve"), [(12, 5), (10, 5), (3, 5), (1, 4), (7, 1), (0, 1), (0, 3)]
)
async def test_reserving_in_batches_never_grants_more_than_the_limit(
    redis: Redis, limit_name: str, limit: int, reserve: int
) -> None:
    limiter = RateLimiter(redis, limit_name, limit=limit, window_seconds=60, reserve=reserve)
    assert await accepted(limiter, "ann", limit + 2 * reserve + 1) == limit


async def test_a_reserving_replica_cannot_spend_what_another_reserved(
    redis: Redis, limit_name: str
) -> None:
    other = Redis.from_url(TEST_REDIS_URL)  # a second replica: its own client
    try:
        first = RateLimiter(redis, limit_name, limit=6, window_seconds=60, reserve=4)
        second = RateLimiter(other, limit_name, limit=6, window_seconds=60, reserve=4)
        await first.hit("ann")  # reserves 4: 3 left in the first process
        assert await accepted(second, "ann", 5) == 2
        assert await accepted(first, "ann", 5) == 3
    finally:
        await other.aclose()
