"""Fixtures of the unit layer: the pure pieces called directly, no server.

Only what needs a real service gets one: the test Redis database for the rate limiter
(each test under its own limiter name, expiring with its window), the migrated test
database for the statistics SQL and the audio chunks (each test's rows rolled back or
deleted by the test itself)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support import IN_CI, TEST_REDIS_URL


@pytest.fixture(autouse=True)
def clean_state() -> None:
    """Replaces the suite's TRUNCATE after every test: unit tests leave nothing behind."""


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        problem = f"Redis at {TEST_REDIS_URL} does not answer: {exc!r}"
        if IN_CI:
            pytest.fail(f"CI=true and a required service is down: {problem}")
        pytest.skip(problem)
    yield client
    await client.aclose()


@pytest.fixture
def limit_name() -> str:
    """A limiter name no other test uses, so tests share the Redis database safely."""
    return f"unit-{uuid.uuid4().hex}"
