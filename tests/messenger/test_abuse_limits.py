"""Limits a single account or client cannot get past: Socket.IO connections per account, a
deadline for sockets that never sign in, per-user rate limits (429 with Retry-After over
REST, the same problem over Socket.IO) and ``client_id`` making a retried send harmless."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import socketio
import websockets

from app.asgi import create_asgi
from app.config import Settings
from tests.messenger.api import alice_and_bob_in_a_direct_chat
from tests.messenger.sockets import SocketUser, connect
from tests.support import LiveServer, free_port, make_settings

USER_CAP = 3


@pytest.fixture(scope="module")
def strict_server(migrated_database: Settings) -> Iterator[LiveServer]:
    settings = make_settings(
        socketio_max_connections_per_user=USER_CAP,
        socketio_handshake_timeout_seconds=3.0,
        messages_per_minute=5,
        typing_events_per_minute=3,
    )
    server = LiveServer(create_asgi(settings), free_port()).start()
    yield server
    server.stop()


@pytest.fixture
async def http(strict_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=strict_server.url, timeout=60) as client:
        yield client


async def test_an_account_cannot_open_more_sockets_than_its_cap(
    strict_server: LiveServer, http: httpx.AsyncClient, sockets: list[SocketUser]
) -> None:
    alice, _, _ = await alice_and_bob_in_a_direct_chat(http)
    for _ in range(USER_CAP):
        sockets.append(await connect(strict_server.url, alice.access_token))
    refused = socketio.AsyncClient(reconnection=False)
    reasons: list[object] = []
    refused.on("connect_error", reasons.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(
            strict_server.url,
            auth={"token": alice.access_token},
            transports=["websocket"],
            wait_timeout=30,
        )
    assert reasons
    assert "too many connections" in str(reasons[0])
    # Closing one makes room again.
    await sockets.pop().close()
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        try:
            sockets.append(await connect(strict_server.url, alice.access_token))
            break
        except socketio.exceptions.ConnectionError:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)


async def until_closed(ws: websockets.ClientConnection) -> None:
    while True:  # pings may arrive first; the close must follow
        await asyncio.wait_for(ws.recv(), 60)


async def test_a_socket_that_never_signs_in_is_closed_after_the_handshake_deadline(
    strict_server: LiveServer,
) -> None:
    ws = await websockets.connect(
        f"ws://127.0.0.1:{strict_server.port}/socket.io/?EIO=4&transport=websocket",
        open_timeout=30,
    )
    try:
        opening = await asyncio.wait_for(ws.recv(), 30)
        assert str(opening).startswith("0{")
        with pytest.raises(websockets.ConnectionClosed):
            await until_closed(ws)
    finally:
        await ws.close()


async def test_messages_and_typing_past_the_per_user_limit_are_429(
    strict_server: LiveServer, http: httpx.AsyncClient, sockets: list[SocketUser]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(http)
    path = f"/api/v1/chats/{chat['id']}/messages"
    for n in range(5):
        sent = await http.post(path, headers=alice.headers, json={"text": f"m{n}"})
        assert sent.status_code == 201, sent.text
    over = await http.post(path, headers=alice.headers, json={"text": "one too many"})
    assert over.status_code == 429
    assert over.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(over.headers["retry-after"]) <= 60
    a = await connect(strict_server.url, alice.access_token)
    sockets.append(a)
    ack = await a.client.call("message:send", {"chat_id": chat["id"], "text": "x"}, timeout=30)
    assert ack["error"]["status"] == 429
    assert ack["error"]["title"] == "Too many requests"
    assert 1 <= ack["error"]["retry_after"] <= 60
    # Bob is not limited by Alice's sending.
    assert (await http.post(path, headers=bob.headers, json={"text": "hi"})).status_code == 201
    for _ in range(3):
        typing = await a.client.call("typing", {"chat_id": chat["id"]}, timeout=30)
        assert typing == {"chat_id": chat["id"]}
    typing = await a.client.call("typing", {"chat_id": chat["id"]}, timeout=30)
    assert typing["error"]["status"] == 429


async def test_a_send_retried_with_its_client_id_is_stored_once(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    a = await connect(live_server.url, alice.access_token)
    sockets.append(a)
    client_id = str(uuid.uuid4())
    payload = {"chat_id": chat["id"], "text": "once", "client_id": client_id}
    first = await a.client.call("message:send", payload, timeout=30)
    again = await a.client.call("message:send", payload, timeout=30)
    rest = await client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        headers=alice.headers,
        json={"text": "once", "client_id": client_id},
    )
    assert first["id"] == again["id"] == rest.json()["id"]
    assert first["client_id"] == client_id
    # Retries racing each other: still one message.
    racing = {"chat_id": chat["id"], "text": "race", "client_id": str(uuid.uuid4())}
    answers = await asyncio.gather(
        *(a.client.call("message:send", racing, timeout=30) for _ in range(5))
    )
    assert len({answer["id"] for answer in answers}) == 1, answers
    history = await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=bob.headers)
    assert [m["text"] for m in history.json()["items"]] == ["race", "once"]
