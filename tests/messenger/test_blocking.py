"""Blocking, the parts that are not messages: presence, typing, read markers and likes.

A user blocked by X sees X offline everywhere (profiles, chat views, member lists, live
``presence``), hears no typing of X (in any chat) and no read marker of X (in their direct
chat), and cannot like X's messages in their direct chat. The same holds the other way in
the direct chat (neither side can message, type or like there); in a group only typing is
withheld between the two, and the group's record (messages, likes, read markers) is shared.

Every "nothing arrived" is proven: a third user who is not blocked receives the event, or
a later event on the same connection arrives after the one that was withheld would have.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.accounts.api import Account, register
from tests.messenger.api import direct_chat, group_chat, send_text
from tests.messenger.sockets import SocketUser, connect
from tests.messenger.test_privacy import block
from tests.security.schema import is_problem
from tests.support import LiveServer

WAIT = 20


def member_online(chat: dict[str, Any], user: Account) -> bool:
    return bool(next(m["online"] for m in chat["members"] if m["id"] == user.id))


async def chat_seen_by(client: httpx.AsyncClient, viewer: Account, chat_id: str) -> Any:
    response = await client.get(f"/api/v1/chats/{chat_id}", headers=viewer.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def profile_seen_by(client: httpx.AsyncClient, viewer: Account, user: Account) -> Any:
    response = await client.get(f"/api/v1/users/{user.id}", headers=viewer.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def alice_bob_and_carols_group(
    client: httpx.AsyncClient,
) -> tuple[Account, Account, Account, dict[str, Any], dict[str, Any]]:
    """Alice, Bob and Carol; Alice and Bob's direct chat, and Carol's group with both."""
    alice = await register(client)
    bob = await register(client, name="Bob")
    carol = await register(client, name="Carol")
    direct = await direct_chat(client, alice, bob)
    group = await group_chat(client, carol, [alice, bob])
    return alice, bob, carol, direct, group


def assert_socket_problem(ack: Any, status: int) -> None:
    problem = ack["error"]
    assert problem["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= set(problem)


async def test_the_blocker_looks_offline_to_the_blocked_user_everywhere(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    alice, bob, carol, direct, group = await alice_bob_and_carols_group(client)
    a = await connect(live_server.url, alice.access_token)
    b = await connect(live_server.url, bob.access_token)
    c = await connect(live_server.url, carol.access_token)
    try:
        assert (await profile_seen_by(client, bob, alice))["online"] is True
        assert member_online(await chat_seen_by(client, bob, group["id"]), alice) is True

        await block(client, alice, bob)
        # Bob's open page hears Alice go offline at once.
        await b.wait_for("presence", timeout=WAIT, user_id=alice.id, online=False)

        assert (await profile_seen_by(client, bob, alice))["online"] is False
        for chat_id in (direct["id"], group["id"]):
            assert member_online(await chat_seen_by(client, bob, chat_id), alice) is False
        listed = (await client.get("/api/v1/chats", headers=bob.headers)).json()
        assert {member_online(chat, alice) for chat in listed} == {False}
        # Carol is not blocked: she still sees Alice online, and Alice sees Bob online.
        assert (await profile_seen_by(client, carol, alice))["online"] is True
        assert member_online(await chat_seen_by(client, carol, group["id"]), alice) is True
        assert member_online(await chat_seen_by(client, alice, direct["id"]), bob) is True

        # Chat events carry each recipient's own view: Alice offline for Bob only.
        renamed = await client.patch(
            f"/api/v1/chats/{group['id']}", headers=carol.headers, json={"title": "Renamed"}
        )
        assert renamed.status_code == 200, renamed.text
        for_bob = await b.wait_for("chat:updated", timeout=WAIT, id=group["id"], title="Renamed")
        for_carol = await c.wait_for("chat:updated", timeout=WAIT, id=group["id"], title="Renamed")
        assert member_online(for_bob, alice) is False
        assert member_online(for_carol, alice) is True

        # Unblocked, Bob sees her again, live and in the views.
        unblocked = await client.delete(f"/api/v1/users/{bob.id}/block", headers=alice.headers)
        assert unblocked.status_code == 204
        await b.wait_for("presence", timeout=WAIT, user_id=alice.id, online=True)
        assert (await profile_seen_by(client, bob, alice))["online"] is True
        assert member_online(await chat_seen_by(client, bob, direct["id"]), alice) is True
    finally:
        for user in (a, b, c):
            await user.close()


async def test_typing_is_not_relayed_between_a_blocked_pair(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    alice, bob, carol, direct, group = await alice_bob_and_carols_group(client)
    await block(client, alice, bob)
    opened: list[SocketUser] = []
    try:
        a = await connect(live_server.url, alice.access_token)
        b = await connect(live_server.url, bob.access_token)
        c = await connect(live_server.url, carol.access_token)
        opened += [a, b, c]
        # In the group: Carol hears each of them type, neither hears the other.
        for typist in (b, a):
            ack = await typist.client.call("typing", {"chat_id": group["id"]}, timeout=WAIT)
            assert ack == {"chat_id": group["id"]}
        await c.wait_for("typing", timeout=WAIT, chat_id=group["id"], user_id=bob.id)
        await c.wait_for("typing", timeout=WAIT, chat_id=group["id"], user_id=alice.id)
        # In the direct chat typing is refused, as sending is, to either side.
        for typist in (a, b):
            ack = await typist.client.call("typing", {"chat_id": direct["id"]}, timeout=WAIT)
            assert_socket_problem(ack, 403)
            assert ack["error"]["detail"] == "You cannot message this user"
        # Both typing notices went out before this message, on the same connections.
        await send_text(client, carol, group["id"], "after the typing")
        for user in (a, b):
            await user.wait_for("message:new", timeout=WAIT, text="after the typing")
        assert a.named("typing") == []
        assert b.named("typing") == []
    finally:
        for user in opened:
            await user.close()


async def test_read_and_delivered_markers_are_not_shared_in_the_direct_chat_of_a_blocked_pair(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    alice, bob, carol, direct, group = await alice_bob_and_carols_group(client)
    await send_text(client, alice, direct["id"], "from alice")
    await send_text(client, bob, direct["id"], "from bob")
    await send_text(client, carol, group["id"], "in the group")
    # Before the block each sees the other's ticks (the other's own message was read).
    for viewer in (alice, bob):
        assert (await chat_seen_by(client, viewer, direct["id"]))["peer_read_seq"] is not None
    await block(client, alice, bob)
    for viewer in (alice, bob):
        view = await chat_seen_by(client, viewer, direct["id"])
        assert (view["peer_read_seq"], view["peer_delivered_seq"]) == (None, None)
    opened: list[SocketUser] = []
    try:
        a = await connect(live_server.url, alice.access_token)
        b = await connect(live_server.url, bob.access_token)
        opened += [a, b]
        # Each still moves their own marker (their own unread count) ...
        ack = await a.client.call("read", {"chat_id": direct["id"]}, timeout=WAIT)
        assert ack["unread_count"] == 0, ack
        read = await client.post(f"/api/v1/chats/{direct['id']}/read", headers=bob.headers)
        assert read.status_code == 200, read.text
        # ... and their own connection hears it: the event went out, without the other.
        await a.wait_for("read", timeout=WAIT, chat_id=direct["id"], user_id=alice.id)
        await b.wait_for("read", timeout=WAIT, chat_id=direct["id"], user_id=bob.id)
        # Delivered markers move too, without telling the other side.
        for user in (a, b):
            ack = await user.client.call(
                "message:delivered", {"chat_id": direct["id"]}, timeout=WAIT
            )
            assert ack["chat_id"] == direct["id"], ack
            assert "error" not in ack
        # In the group the read marker is the group's record: Alice hears Bob's.
        await b.client.call("read", {"chat_id": group["id"]}, timeout=WAIT)
        await a.wait_for("read", timeout=WAIT, chat_id=group["id"], user_id=bob.id)
        await send_text(client, carol, group["id"], "after the reads")
        for user in (a, b):
            await user.wait_for("message:new", timeout=WAIT, text="after the reads")
        assert [r for r in b.named("read") if r["user_id"] == alice.id] == []
        assert a.named("message:delivered") == []
        assert b.named("message:delivered") == []
        assert [
            r for r in a.named("read") if r["user_id"] == bob.id and r["chat_id"] == direct["id"]
        ] == []
    finally:
        for user in opened:
            await user.close()


async def test_neither_side_can_like_messages_in_the_direct_chat_of_a_blocked_pair(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    alice, bob, _carol, direct, group = await alice_bob_and_carols_group(client)
    from_alice = await send_text(client, alice, direct["id"], "from alice")
    from_bob = await send_text(client, bob, direct["id"], "from bob")
    alice_in_group = await send_text(client, alice, group["id"], "alice in the group")
    liked = await client.put(f"/api/v1/messages/{from_bob['id']}/like", headers=alice.headers)
    assert liked.status_code == 200, liked.text
    await block(client, alice, bob)
    a = await connect(live_server.url, alice.access_token)
    try:
        for liker, message in ((bob, from_alice), (alice, from_bob)):
            for method in ("PUT", "DELETE"):
                response = await client.request(
                    method, f"/api/v1/messages/{message['id']}/like", headers=liker.headers
                )
                assert is_problem(response, 403), response.text
                assert response.json()["detail"] == (
                    "You cannot like messages in a chat with this user"
                )
        history = await client.get(f"/api/v1/chats/{direct['id']}/messages", headers=bob.headers)
        likes = {m["text"]: m["likes"] for m in history.json()["items"]}
        assert likes == {"from alice": 0, "from bob": 1}
        # In the group Bob's like counts, and Alice hears it: the path above was the block.
        response = await client.put(
            f"/api/v1/messages/{alice_in_group['id']}/like", headers=bob.headers
        )
        assert response.status_code == 200, response.text
        event = await a.wait_for(
            "message:liked", timeout=WAIT, message_id=alice_in_group["id"], user_id=bob.id
        )
        assert event["likes"] == 1
        assert [e for e in a.named("message:liked") if e["chat_id"] == direct["id"]] == []
    finally:
        await a.close()
