"""Each replica keeps the revoked sign-in sessions in memory, fed by Redis pub/sub: a
signed-in request asks Redis nothing, and a session signed out on one replica is refused on
every other at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.asgi import create_asgi
from app.config import Settings
from app.lib.auth import RevokedSessionFeed, feed_of
from tests.accounts.api import register
from tests.support import LiveServer, free_port, local_trivia_upstream, make_settings


def _redis_of(server: LiveServer) -> Redis:
    redis: Redis = server.app.app.state.redis  # type: ignore[attr-defined]
    return redis


async def _until_live(server: LiveServer) -> RevokedSessionFeed:
    deadline = time.monotonic() + 10
    while (feed := feed_of(_redis_of(server))) is None or not feed.live:
        assert time.monotonic() < deadline, "the replica never subscribed to revocations"
        await asyncio.sleep(0.02)
    return feed


@pytest.fixture(scope="module")
def second_replica(migrated_database: Settings) -> Iterator[LiveServer]:
    """Another replica of the application: its own app, Redis client and event loop."""
    server = LiveServer(
        create_asgi(make_settings(trivia_api_url=local_trivia_upstream())), free_port()
    ).start()
    yield server
    server.stop()


async def test_a_session_signed_out_on_one_replica_is_refused_by_the_other_at_once(
    client: httpx.AsyncClient, live_server: LiveServer, second_replica: LiveServer
) -> None:
    await _until_live(live_server)
    await _until_live(second_replica)
    account = await register(client)
    async with httpx.AsyncClient(base_url=second_replica.url, timeout=20) as other:
        assert (await other.get("/api/v1/users/me", headers=account.headers)).status_code == 200
        out = await client.post(
            "/api/v1/auth/logout", json={"refresh_token": account.refresh_token}
        )
        assert out.status_code == 204
        refused = await other.get("/api/v1/users/me", headers=account.headers)
    assert refused.status_code == 401
    assert "signed out" in refused.json()["detail"]


async def test_a_signed_in_request_asks_redis_nothing_while_the_feed_is_live(
    client: httpx.AsyncClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _until_live(live_server)
    account = await register(client)
    asked: list[Any] = []
    redis = _redis_of(live_server)
    original = redis.exists

    async def counting_exists(*names: Any) -> int:
        asked.append(names)
        return await original(*names)

    monkeypatch.setattr(redis, "exists", counting_exists)
    for _ in range(3):
        assert (await client.get("/api/v1/users/me", headers=account.headers)).status_code == 200
    assert asked == []
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": account.refresh_token})
    assert out.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=account.headers)).status_code == 401


async def test_revocations_made_before_a_replica_subscribed_are_loaded(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    account = await register(client)
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": account.refresh_token})
    assert out.status_code == 204
    late = LiveServer(
        create_asgi(make_settings(trivia_api_url=local_trivia_upstream())), free_port()
    ).start()
    try:
        await _until_live(late)
        async with httpx.AsyncClient(base_url=late.url, timeout=20) as http:
            refused = await http.get("/api/v1/users/me", headers=account.headers)
        assert refused.status_code == 401
    finally:
        late.stop()
