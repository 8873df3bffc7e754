"""Socket.IO delivery, presence and offline notifications with real clients on a real server."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest
import socketio

from app.config import Settings
from app.lib.auth import issue_access_token
from app.lib.notifications import OfflineNotice
from tests.accounts.api import register
from tests.messenger.api import (
    alice_and_bob_in_a_direct_chat,
    alice_bob_and_carol_in_a_group,
    direct_chat,
    group_chat,
    send_text,
)
from tests.messenger.sockets import SocketUser, connect, connect_accounts
from tests.support import READY_SECONDS, LiveServer, litestar_app


class RecordingNotifier:
    """A MessageNotifier that remembers whom it was asked to notify."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def notify_new_message(self, notice: OfflineNotice) -> None:
        self.calls.append(dataclasses.asdict(notice))


async def announced(live_server: LiveServer) -> None:
    """Until the server has run every announcement queued so far (they run after the
    response, off the request path)."""
    announcer = litestar_app(live_server).state.announcer
    deadline = time.monotonic() + READY_SECONDS
    while announcer.pending:
        assert time.monotonic() < deadline, "announcements still pending"
        await asyncio.sleep(0.02)


@pytest.fixture
def notifier(live_server: LiveServer) -> Iterator[RecordingNotifier]:
    state = litestar_app(live_server).state
    previous = state.notifier
    state.notifier = RecordingNotifier()
    yield state.notifier
    state.notifier = previous


async def test_message_sent_over_socket_is_acknowledged_and_delivered(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    a, b = await connect_accounts(live_server.url, sockets, alice, bob)
    ack = await a.client.call(
        "message:send", {"chat_id": chat["id"], "type": "text", "text": "hi Bob"}, timeout=10
    )
    assert ack["text"] == "hi Bob"
    assert ack["sender_id"] == alice.id
    received = await b.wait_for("message:new", id=ack["id"])
    assert received["chat_id"] == chat["id"]
    assert received["text"] == "hi Bob"
    history = await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=bob.headers)
    assert history.json()["items"][0]["id"] == ack["id"]


async def test_message_send_errors_are_acknowledged_as_problems(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    carol = await register(client, name="Carol")
    theirs = await direct_chat(client, bob, carol)
    a = await connect(live_server.url, alice.access_token)
    sockets.append(a)
    foreign = await a.client.call(
        "message:send", {"chat_id": theirs["id"], "text": "intrude"}, timeout=10
    )
    assert foreign["error"]["status"] == 404
    invalid = await a.client.call("message:send", {"chat_id": "nope"}, timeout=10)
    assert invalid["error"]["status"] == 422


@pytest.mark.parametrize("token", ["garbage", "", None])
async def test_connection_with_a_bad_or_missing_token_is_refused(
    live_server: LiveServer, token: str | None
) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(live_server.url, token)


async def test_connection_with_a_refresh_token_is_refused(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    alice = await register(client)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(live_server.url, alice.refresh_token)


async def test_non_members_never_receive_a_chats_events(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    eve = await register(client, name="Eve")
    chat = await direct_chat(client, alice, bob)
    b, e = await connect_accounts(live_server.url, sockets, bob, eve)
    message = await send_text(client, alice, chat["id"], "private")
    await client.put(f"/api/v1/messages/{message['id']}/like", headers=bob.headers)
    await client.patch(
        f"/api/v1/messages/{message['id']}", headers=alice.headers, json={"text": "edited"}
    )
    await b.wait_for("message:updated", id=message["id"])
    await asyncio.sleep(0.3)
    assert [name for name, _ in e.events if name != "presence"] == []


async def test_rest_writes_are_emitted_to_members(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    b = await connect(live_server.url, bob.access_token)
    sockets.append(b)
    message = await send_text(client, alice, chat["id"], "first")
    await b.wait_for("message:new", id=message["id"])
    await client.patch(
        f"/api/v1/messages/{message['id']}", headers=alice.headers, json={"text": "second"}
    )
    updated = await b.wait_for("message:updated", id=message["id"])
    assert updated["text"] == "second"
    await client.put(f"/api/v1/messages/{message['id']}/like", headers=alice.headers)
    liked = await b.wait_for("message:liked", message_id=message["id"])
    assert liked == {
        "message_id": message["id"],
        "chat_id": chat["id"],
        "user_id": alice.id,
        "liked": True,
        "likes": 1,
    }
    await client.delete(f"/api/v1/messages/{message['id']}", headers=alice.headers)
    deleted = await b.wait_for("message:deleted", id=message["id"])
    assert deleted["chat_id"] == chat["id"]


async def test_chats_created_after_connecting_are_delivered_too(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    carol = await register(client, name="Carol")
    b = await connect(live_server.url, bob.access_token)
    sockets.append(b)
    group = await group_chat(client, alice, [bob, carol], title="Later")
    new = await b.wait_for("chat:new", id=group["id"])
    assert new["title"] == "Later"
    message = await send_text(client, alice, group["id"], "welcome")
    await b.wait_for("message:new", id=message["id"])
    renamed = await client.patch(
        f"/api/v1/chats/{group['id']}", headers=alice.headers, json={"title": "Renamed"}
    )
    assert renamed.status_code == 200
    await b.wait_for("chat:updated", id=group["id"], title="Renamed")


async def test_removed_member_stops_receiving(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, carol, group = await alice_bob_and_carol_in_a_group(client)
    b, c = await connect_accounts(live_server.url, sockets, bob, carol)
    await client.delete(f"/api/v1/chats/{group['id']}/members/{bob.id}", headers=alice.headers)
    await b.wait_for("chat:removed", id=group["id"])
    message = await send_text(client, alice, group["id"], "without Bob")
    await c.wait_for("message:new", id=message["id"])
    await asyncio.sleep(0.3)
    assert all(m["id"] != message["id"] for m in b.named("message:new"))


async def test_typing_and_read_are_relayed_to_the_other_members(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    a, b = await connect_accounts(live_server.url, sockets, alice, bob)
    await a.client.emit("typing", {"chat_id": chat["id"]})
    typing = await b.wait_for("typing", chat_id=chat["id"])
    assert typing == {"chat_id": chat["id"], "user_id": alice.id, "name": "Alice"}
    message = await send_text(client, alice, chat["id"], "read me")
    ack = await b.client.call("read", {"chat_id": chat["id"]}, timeout=10)
    assert ack["unread_count"] == 0
    read = await a.wait_for("read", chat_id=chat["id"], user_id=bob.id)
    assert read["message_id"] == message["id"]
    assert a.named("typing") == []


async def test_presence_follows_live_connections(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    await direct_chat(client, alice, bob)
    a = await connect(live_server.url, alice.access_token)
    sockets.append(a)

    async def bob_online() -> bool:
        profile = await client.get(f"/api/v1/users/{bob.id}", headers=alice.headers)
        return bool(profile.json()["online"])

    assert not await bob_online()
    first, second = await connect_accounts(live_server.url, sockets, bob, bob)
    await a.wait_for("presence", user_id=bob.id, online=True)
    assert await bob_online()
    await first.close()
    await asyncio.sleep(0.2)
    assert await bob_online(), "one live connection left keeps the user online"
    await second.close()
    await a.wait_for("presence", user_id=bob.id, online=False)
    assert not await bob_online()


async def test_offline_members_are_notified_and_online_muted_and_sender_are_not(
    client: httpx.AsyncClient,
    live_server: LiveServer,
    sockets: list[SocketUser],
    notifier: RecordingNotifier,
) -> None:
    alice = await register(client)
    online = await register(client, name="Online")
    offline = await register(client, name="Offline")
    muted = await register(client, name="Muted")
    group = await group_chat(client, alice, [online, offline, muted], title="Crew")
    await client.put(f"/api/v1/chats/{group['id']}/mute", headers=muted.headers)
    sockets.append(await connect(live_server.url, online.access_token))
    notifier.calls.clear()
    await send_text(client, alice, group["id"], "Dinner at eight?")
    await announced(live_server)
    assert notifier.calls == [
        {
            "recipient_id": UUID(offline.id),
            "chat_id": UUID(group["id"]),
            "chat_title": "Crew",
            "sender_name": "Alice",
            "text_preview": "Dinner at eight?",
            "message_id": UUID(notifier.calls[0]["message_id"].hex),
            "direct": False,
        }
    ]


async def test_direct_message_notification_is_titled_with_the_sender(
    client: httpx.AsyncClient, live_server: LiveServer, notifier: RecordingNotifier
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    await send_text(client, alice, chat["id"], "x" * 300)
    await announced(live_server)
    [call] = notifier.calls
    assert call["recipient_id"] == UUID(bob.id)
    assert call["chat_title"] == "Alice"
    assert len(call["text_preview"]) <= 120


async def test_a_connection_is_closed_when_its_access_token_expires(
    live_server: LiveServer,
    migrated_database: Settings,
    client: httpx.AsyncClient,
    sockets: list[SocketUser],
) -> None:
    alice = await register(client)
    short = issue_access_token(migrated_database.secret_key, UUID(alice.id), ttl_seconds=2)
    socket = await connect(live_server.url, short.token)
    sockets.append(socket)
    assert socket.client.connected

    expired = await socket.wait_for("session:expired", timeout=6)

    assert "expired" in expired["detail"]
    for _ in range(50):
        if not socket.client.connected:
            break
        await asyncio.sleep(0.1)
    assert not socket.client.connected
    # A fresh token connects again, and that connection is not cut early.
    again = await connect(live_server.url, alice.access_token)
    sockets.append(again)
    await asyncio.sleep(2.5)
    assert again.client.connected
    assert again.named("session:expired") == []
