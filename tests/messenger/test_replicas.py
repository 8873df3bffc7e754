"""Two API processes on one Redis: Socket.IO fans out across them, and presence survives
(and expires with) a replica."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from app.config import Settings
from tests.accounts.api import register
from tests.messenger.api import direct_chat
from tests.messenger.processes import ApiProcess, start_all
from tests.messenger.sockets import connect

pytestmark = pytest.mark.slow


@pytest.fixture
def two_servers(migrated_database: Settings) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    presence = {"PRESENCE_TTL_SECONDS": "2"}
    servers = (
        ApiProcess(migrated_database, env=presence),
        ApiProcess(migrated_database, env=presence),
    )
    try:
        start_all(list(servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


async def test_a_message_sent_on_one_process_reaches_a_client_of_the_other(
    two_servers: tuple[ApiProcess, ApiProcess],
) -> None:
    first, second = two_servers
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=20) as one,
        httpx.AsyncClient(base_url=second.url, timeout=20) as two,
    ):
        alice = await register(one)
        bob = await register(two, name="Bob")
        chat = await direct_chat(one, alice, bob)
        a = await connect(first.url, alice.access_token)
        b = await connect(second.url, bob.access_token)
        try:
            ack = await a.client.call(
                "message:send", {"chat_id": chat["id"], "text": "across processes"}, timeout=10
            )
            received = await b.wait_for("message:new", id=ack["id"])
            assert received["text"] == "across processes"
            # And the other way round, through REST on the second process.
            sent = await two.post(
                f"/api/v1/chats/{chat['id']}/messages",
                headers=bob.headers,
                json={"text": "and back"},
            )
            await a.wait_for("message:new", id=sent.json()["id"])
            # Presence is shared: the first process sees Bob (connected to the second) online.
            profile = await one.get(f"/api/v1/users/{bob.id}", headers=alice.headers)
            assert profile.json()["online"] is True
        finally:
            await a.close()
            await b.close()


async def test_users_of_a_dead_replica_go_offline_when_their_heartbeat_expires(
    two_servers: tuple[ApiProcess, ApiProcess],
) -> None:
    first, second = two_servers
    async with httpx.AsyncClient(base_url=first.url, timeout=20) as one:
        alice = await register(one)
        bob = await register(one, name="Bob")
        b = await connect(second.url, bob.access_token)

        async def bob_online() -> bool:
            profile = await one.get(f"/api/v1/users/{bob.id}", headers=alice.headers)
            return bool(profile.json()["online"])

        assert await bob_online()
        await asyncio.sleep(3)  # longer than the TTL: heartbeats keep Bob online
        assert await bob_online()
        second.kill()
        deadline = time.monotonic() + 10
        while await bob_online():
            assert time.monotonic() < deadline, "Bob stayed online after his replica died"
            await asyncio.sleep(0.2)
        await b.close()
