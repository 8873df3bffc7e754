"""A replica killed under live clients: its users go offline within the default bound, and
each of their contacts hears ``presence`` offline exactly once, from whichever surviving
replica noticed first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from redis.asyncio import Redis

from app.config import Settings
from tests.accounts.api import register
from tests.messenger.api import direct_chat, send_text
from tests.messenger.processes import ApiProcess, start_all
from tests.messenger.sockets import connect

pytestmark = pytest.mark.slow

# The default PRESENCE_TTL_SECONDS (9) gives offline within 12 s of the last heartbeat; the
# margin is for a machine busy with other work.
DEFAULT_BOUND_SECONDS = 15
MARGIN_SECONDS = 10


async def replica_of(redis: Redis, user_id: str) -> str | None:
    """The replica holding the user's connection, from the replicas' connection lists."""
    for member in await redis.smembers("presence:replicas"):
        replica_id = str(member)  # already a str: the client decodes responses
        if user_id in await redis.hvals(f"presence:replica:{replica_id}:connections"):
            return replica_id
    return None


@pytest.fixture
def three_replicas(migrated_database: Settings) -> Iterator[list[ApiProcess]]:
    # Started together, with the default presence settings.
    processes = [ApiProcess(migrated_database, env={"PRESENCE_TTL_SECONDS": ""}) for _ in range(3)]
    start_all(processes)
    yield processes
    for process in processes:
        process.stop()


async def test_a_killed_replicas_users_go_offline_once_for_each_contact(
    three_replicas: list[ApiProcess], redis_client: Redis
) -> None:
    first, doomed, third = three_replicas
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=60) as one,
        httpx.AsyncClient(base_url=third.url, timeout=60) as three,
    ):
        alice = await register(one)
        bob = await register(one, name="Bob")
        carol = await register(one, name="Carol")
        with_alice = await direct_chat(one, alice, bob)
        with_carol = await direct_chat(one, carol, bob)
        a = await connect(first.url, alice.access_token)
        c = await connect(third.url, carol.access_token)
        b = await connect(doomed.url, bob.access_token)
        try:
            await a.wait_for("presence", timeout=60, user_id=bob.id, online=True)
            await c.wait_for("presence", timeout=60, user_id=bob.id, online=True)
            deadline = time.monotonic() + 60
            while (doomed_id := await replica_of(redis_client, bob.id)) is None:
                assert time.monotonic() < deadline, "Bob's replica never announced itself"
                await asyncio.sleep(0.2)

            doomed.kill()
            killed_at = time.monotonic()
            await a.wait_for(
                "presence",
                timeout=DEFAULT_BOUND_SECONDS + MARGIN_SECONDS,
                user_id=bob.id,
                online=False,
            )
            took = time.monotonic() - killed_at
            await c.wait_for("presence", timeout=MARGIN_SECONDS, user_id=bob.id, online=False)
            print(f"offline announced {took:.1f} s after SIGKILL")
            assert took <= DEFAULT_BOUND_SECONDS + MARGIN_SECONDS
            profile = await one.get(f"/api/v1/users/{bob.id}", headers=alice.headers)
            assert profile.json()["online"] is False

            # The dead replica is forgotten (so nobody can sweep it again), and events sent
            # after that through both survivors arrive: any duplicate would have come first.
            while await redis_client.sismember("presence:replicas", doomed_id):
                assert time.monotonic() < killed_at + 60, "the dead replica was never swept"
                await asyncio.sleep(0.2)
            probe_a = await send_text(one, bob, with_alice["id"], "probe via the first")
            probe_c = await send_text(three, bob, with_carol["id"], "probe via the third")
            await a.wait_for("message:new", timeout=60, id=probe_a["id"])
            await c.wait_for("message:new", timeout=60, id=probe_c["id"])
            for socket in (a, c):
                offline = [
                    e
                    for e in socket.named("presence")
                    if e["user_id"] == bob.id and e["online"] is False
                ]
                assert len(offline) == 1, socket.named("presence")
        finally:
            await a.close()
            await c.close()
            await b.close()
