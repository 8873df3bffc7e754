"""Redis restarted under connected Socket.IO clients: two API replicas share the private
Redis (their fan-out channel), Alice is connected to one and Bob to the other. Nothing that
was acknowledged is lost, and real-time delivery comes back by itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import socketio

from app.asgi import create_asgi
from tests.accounts.api import Account, register
from tests.faults.conftest import PrivateRedis
from tests.messenger.api import direct_chat
from tests.messenger.sockets import SocketUser
from tests.support import LiveServer, free_port, make_settings


async def reconnecting_client(url: str, account: Account) -> SocketUser:
    """The real python-socketio client, left to reconnect by itself (as browsers do);
    ``connect`` and ``disconnect`` are recorded too."""
    client = socketio.AsyncClient(
        reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1
    )
    user = SocketUser(client)

    def remember(event: str, data: Any = None) -> None:
        user.events.append((event, data))
        user.arrived.set()

    async def record(event: str, data: Any = None) -> None:
        remember(event, data)

    client.on("*", record)
    client.on("connect", lambda: remember("connect"))
    client.on("disconnect", lambda reason=None: remember("disconnect", reason))
    await client.connect(
        url, auth={"token": account.access_token}, transports=["websocket"], wait_timeout=10
    )
    return user


@contextlib.asynccontextmanager
async def replicas(redis_url: str, count: int) -> AsyncIterator[list[LiveServer]]:
    settings = make_settings(redis_url=redis_url, presence_ttl_seconds=3)
    servers = [LiveServer(create_asgi(settings), free_port()).start() for _ in range(count)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


async def socket_send(user: SocketUser, chat_id: str, text: str) -> str | None:
    """The stored message's id when the server acknowledged the send, else None."""
    try:
        ack = await user.client.call("message:send", {"chat_id": chat_id, "text": text}, timeout=3)
    except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
        return None
    return ack["id"] if isinstance(ack, dict) and "id" in ack else None


async def rest_send(
    http: httpx.AsyncClient, sender: Account, chat_id: str, text: str
) -> str | None:
    try:
        response = await http.post(
            f"/api/v1/chats/{chat_id}/messages",
            headers=sender.headers,
            json={"type": "text", "text": text},
        )
    except httpx.TransportError:
        return None
    return response.json()["id"] if response.status_code == 201 else None


async def history_ids(http: httpx.AsyncClient, reader: Account, chat_id: str) -> set[str]:
    response = await http.get(
        f"/api/v1/chats/{chat_id}/messages", params={"limit": 100}, headers=reader.headers
    )
    assert response.status_code == 200, response.text
    return {message["id"] for message in response.json()["items"]}


def received_ids(user: SocketUser) -> set[str]:
    return {data["id"] for data in user.named("message:new") if isinstance(data, dict)}


async def refused_reason(url: str, account: Account) -> Any:
    """Connect once without retrying; the server's refusal (``connect_error`` data)."""
    client = socketio.AsyncClient(reconnection=False)
    reasons: list[Any] = []
    client.on("connect_error", reasons.append)
    try:
        await client.connect(
            url, auth={"token": account.access_token}, transports=["websocket"], wait_timeout=5
        )
    except socketio.exceptions.ConnectionError:
        return reasons[0] if reasons else "no reason given"
    await client.disconnect()
    return None


def connects(user: SocketUser) -> int:
    return sum(1 for name, _ in user.events if name == "connect")


def disconnects(user: SocketUser) -> int:
    return sum(1 for name, _ in user.events if name == "disconnect")


async def test_redis_restart_loses_no_acknowledged_message_and_realtime_comes_back(
    private_redis: PrivateRedis, migrated_database: object
) -> None:
    async with (
        replicas(private_redis.url, 2) as (one, two),
        httpx.AsyncClient(base_url=one.url, timeout=10) as http,
    ):
        alice = await register(http, name="Alice")
        bob = await register(http, name="Bob")
        carol = await register(http, name="Carol")
        chat_id = (await direct_chat(http, alice, bob))["id"]
        alice_socket = await reconnecting_client(one.url, alice)
        bob_socket = await reconnecting_client(two.url, bob)
        try:
            before = await socket_send(alice_socket, chat_id, "before the outage")
            assert before is not None
            await bob_socket.wait_for("message:new", id=before)
            acknowledged = {before}

            private_redis.stop()
            # Bob's network drops meanwhile: his client keeps trying to reconnect.
            assert bob_socket.client.eio.ws is not None
            await bob_socket.client.eio.ws.close()
            # Every send is answered: acknowledged ones are stored (the database is up),
            # the others are refused rather than left hanging.
            for n in range(5):
                for sent in (
                    await socket_send(alice_socket, chat_id, f"socket during {n}"),
                    await rest_send(http, alice, chat_id, f"rest during {n}"),
                ):
                    if sent is not None:
                        acknowledged.add(sent)
            assert len(acknowledged) > 1, "nothing was acknowledged while Redis was down"
            assert (await http.get("/health/ready")).status_code == 503
            # A new connection is refused at once with a reason, not left to time out.
            assert await refused_reason(one.url, carol) == {
                "message": "temporarily unavailable, try again shortly"
            }
            assert not bob_socket.client.connected or connects(bob_socket) == 1

            private_redis.start()
            # Bob is back by himself, and real time with him: probes until one crosses the
            # replicas, then every message does, in both directions.
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                assert asyncio.get_running_loop().time() < deadline, (
                    f"real-time delivery never resumed; Bob got {bob_socket.events}"
                )
                probe = await socket_send(alice_socket, chat_id, "probe")
                if probe is not None:
                    acknowledged.add(probe)
                    with contextlib.suppress(AssertionError):
                        await bob_socket.wait_for("message:new", timeout=1, id=probe)
                        break
                else:
                    await asyncio.sleep(0.5)

            # Every drop of Bob's connection was followed by his client's own reconnect (the
            # drop itself may come late or, once the socket was already replaced, not at all).
            assert connects(bob_socket) == 1 + disconnects(bob_socket), bob_socket.events
            assert alice_socket.client.connected
            assert connects(alice_socket) == 1, "Alice's connection should have survived"
            after_alice = [await socket_send(alice_socket, chat_id, f"after {n}") for n in range(3)]
            after_bob = [await socket_send(bob_socket, chat_id, f"reply {n}") for n in range(3)]
            assert None not in after_alice + after_bob
            for message_id in after_alice:
                await bob_socket.wait_for("message:new", id=message_id)
            for message_id in after_bob:
                await alice_socket.wait_for("message:new", id=message_id)
            acknowledged.update(i for i in after_alice + after_bob if i)

            assert acknowledged <= await history_ids(http, alice, chat_id)
            assert acknowledged <= await history_ids(http, bob, chat_id)
            assert (await http.get("/health/ready")).status_code == 200
            assert await refused_reason(two.url, carol) is None

            # The refused attempts left nothing behind: when Bob leaves he is offline.
            await bob_socket.close()
            await alice_socket.wait_for("presence", user_id=bob.id, online=False)
        finally:
            await alice_socket.close()
            await bob_socket.close()
