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

from tests.support import TEST_REDIS_URL


@pytest.fixture(autouse=True)
def clean_state() -> None:
    """Replaces the suite's TRUNCATE after every test: unit tests leave nothing behind."""


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    try:
        await client.ping()
    except OSError as exc:  # redis' ConnectionError is an OSError
        pytest.skip(f"Redis at {TEST_REDIS_URL} does not answer: {exc!r}")
    yield client
    await client.aclose()


@pytest.fixture
def limit_name() -> str:
    """A limiter name no other test uses, so tests share the Redis database safely."""
    return f"unit-{uuid.uuid4().hex}"
