"""Chats, groups, membership, pins and mutes through the real server."""

from __future__ import annotations

import httpx

from tests.accounts.api import register
from tests.messenger.api import (
    alice_and_bob_in_a_direct_chat,
    alice_bob_and_carol_in_a_group,
    allow_group_adds,
    direct_chat,
    group_chat,
    send_text,
)

UNKNOWN = "0190a000-0000-7000-8000-000000000000"


async def test_direct_chat_is_created_once_per_pair(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    first = await client.post(
        "/api/v1/chats", headers=alice.headers, json={"type": "direct", "member_id": bob.id}
    )
    assert first.status_code == 201
    chat = first.json()
    assert chat["type"] == "direct"
    assert chat["title"] == "Bob"
    assert {m["id"] for m in chat["members"]} == {alice.id, bob.id}
    again = await client.post(
        "/api/v1/chats", headers=bob.headers, json={"type": "direct", "member_id": alice.id}
    )
    assert again.status_code == 200
    assert again.json()["id"] == chat["id"]
    assert again.json()["title"] == "Alice"


async def test_direct_chat_with_yourself_or_nobody_is_refused(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    myself = await client.post(
        "/api/v1/chats", headers=alice.headers, json={"type": "direct", "member_id": alice.id}
    )
    assert myself.status_code == 422
    nobody = await client.post(
        "/api/v1/chats", headers=alice.headers, json={"type": "direct", "member_id": UNKNOWN}
    )
    assert nobody.status_code == 404


async def test_create_chat_refuses_an_unknown_type(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    response = await client.post(
        "/api/v1/chats", headers=alice.headers, json={"type": "channel", "title": "x"}
    )
    assert response.status_code in (400, 422)


async def test_group_has_an_owner_members_and_a_system_message(client: httpx.AsyncClient) -> None:
    alice, bob, carol, chat = await alice_bob_and_carol_in_a_group(client, title="Trip")
    assert chat["type"] == "group"
    assert chat["title"] == "Trip"
    assert chat["owner_id"] == alice.id
    roles = {m["id"]: m["role"] for m in chat["members"]}
    assert roles == {alice.id: "owner", bob.id: "member", carol.id: "member"}
    assert chat["unread_count"] == 0, "system notices do not count as unread"
    history = await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=bob.headers)
    [system] = history.json()["items"]
    assert system["type"] == "system"
    assert "created the group" in system["text"]
    assert system["sender_id"] is None


async def test_group_with_unknown_members_is_refused(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    response = await client.post(
        "/api/v1/chats",
        headers=alice.headers,
        json={"type": "group", "title": "T", "member_ids": [UNKNOWN]},
    )
    assert response.status_code == 422


async def test_owner_renames_a_group_and_members_cannot(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    chat = await group_chat(client, alice, [bob])
    renamed = await client.patch(
        f"/api/v1/chats/{chat['id']}", headers=alice.headers, json={"title": "New name"}
    )
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "New name"
    refused = await client.patch(
        f"/api/v1/chats/{chat['id']}", headers=bob.headers, json={"title": "Mine"}
    )
    assert refused.status_code == 403


async def test_direct_chats_cannot_be_renamed(client: httpx.AsyncClient) -> None:
    alice, _bob, chat = await alice_and_bob_in_a_direct_chat(client)
    response = await client.patch(
        f"/api/v1/chats/{chat['id']}", headers=alice.headers, json={"title": "x"}
    )
    assert response.status_code == 403


async def test_owner_adds_and_removes_members(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    carol = await register(client, name="Carol")
    chat = await group_chat(client, alice, [bob])
    await allow_group_adds(client, carol)
    added = await client.post(
        f"/api/v1/chats/{chat['id']}/members", headers=alice.headers, json={"user_ids": [carol.id]}
    )
    assert added.status_code == 200
    assert carol.id in {m["id"] for m in added.json()["members"]}
    assert (
        await client.get(f"/api/v1/chats/{chat['id']}", headers=carol.headers)
    ).status_code == 200
    removed = await client.delete(
        f"/api/v1/chats/{chat['id']}/members/{carol.id}", headers=alice.headers
    )
    assert removed.status_code == 204
    assert (
        await client.get(f"/api/v1/chats/{chat['id']}", headers=carol.headers)
    ).status_code == 404
    texts = [
        m["text"]
        for m in (
            await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers)
        ).json()["items"]
    ]
    assert "Alice removed Carol" in texts
    assert "Alice added Carol" in texts


async def test_members_cannot_add_or_remove_others(client: httpx.AsyncClient) -> None:
    _, bob, carol, chat = await alice_bob_and_carol_in_a_group(client)
    add = await client.post(
        f"/api/v1/chats/{chat['id']}/members", headers=bob.headers, json={"user_ids": [bob.id]}
    )
    assert add.status_code == 403
    remove = await client.delete(
        f"/api/v1/chats/{chat['id']}/members/{carol.id}", headers=bob.headers
    )
    assert remove.status_code == 403


async def test_a_member_can_leave_and_the_owner_leaving_hands_over(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, carol, chat = await alice_bob_and_carol_in_a_group(client)
    left = await client.delete(
        f"/api/v1/chats/{chat['id']}/members/{carol.id}", headers=carol.headers
    )
    assert left.status_code == 204
    owner_left = await client.delete(
        f"/api/v1/chats/{chat['id']}/members/{alice.id}", headers=alice.headers
    )
    assert owner_left.status_code == 204
    view = (await client.get(f"/api/v1/chats/{chat['id']}", headers=bob.headers)).json()
    assert view["owner_id"] == bob.id
    assert [m["id"] for m in view["members"]] == [bob.id]


async def test_removing_a_non_member_is_404_and_leaving_a_direct_chat_is_403(
    client: httpx.AsyncClient,
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    carol = await register(client, name="Carol")
    group = await group_chat(client, alice, [bob])
    missing = await client.delete(
        f"/api/v1/chats/{group['id']}/members/{carol.id}", headers=alice.headers
    )
    assert missing.status_code == 404
    direct = await direct_chat(client, alice, bob)
    leave = await client.delete(
        f"/api/v1/chats/{direct['id']}/members/{alice.id}", headers=alice.headers
    )
    assert leave.status_code == 403


async def test_non_members_get_404_for_everything_about_a_chat(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    eve = await register(client, name="Eve")
    chat = await group_chat(client, alice, [bob])
    message = await send_text(client, alice, chat["id"], "secret")
    base = f"/api/v1/chats/{chat['id']}"
    attempts = [
        ("GET", base, None),
        ("PATCH", base, {"title": "pwned"}),
        ("POST", f"{base}/members", {"user_ids": [eve.id]}),
        ("DELETE", f"{base}/members/{bob.id}", None),
        ("PUT", f"{base}/pin", None),
        ("DELETE", f"{base}/pin", None),
        ("PUT", f"{base}/mute", None),
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/messages", {"type": "text", "text": "hi"}),
        ("POST", f"{base}/read", {}),
        ("PATCH", f"/api/v1/messages/{message['id']}", {"text": "x"}),
        ("DELETE", f"/api/v1/messages/{message['id']}", None),
        ("PUT", f"/api/v1/messages/{message['id']}/like", None),
        ("DELETE", f"/api/v1/messages/{message['id']}/like", None),
    ]
    for method, url, body in attempts:
        response = await client.request(method, url, headers=eve.headers, json=body)
        assert response.status_code == 404, (method, url, response.status_code)
    unknown = await client.get(f"/api/v1/chats/{UNKNOWN}", headers=alice.headers)
    assert unknown.status_code == 404
    assert (await client.get("/api/v1/chats", headers=eve.headers)).json() == []


async def test_chat_routes_need_authentication(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/chats")).status_code == 401
    assert (await client.post("/api/v1/chats", json={"type": "direct"})).status_code == 401


async def test_chat_list_puts_pinned_first_then_by_last_activity(
    client: httpx.AsyncClient,
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    carol = await register(client, name="Carol")
    dave = await register(client, name="Dave")
    with_bob = await direct_chat(client, alice, bob)
    with_carol = await direct_chat(client, alice, carol)
    with_dave = await direct_chat(client, alice, dave)
    await send_text(client, bob, with_bob["id"], "1")
    await send_text(client, carol, with_carol["id"], "2")
    await send_text(client, dave, with_dave["id"], "3")
    order = [c["id"] for c in (await client.get("/api/v1/chats", headers=alice.headers)).json()]
    assert order == [with_dave["id"], with_carol["id"], with_bob["id"]]

    pinned = await client.put(f"/api/v1/chats/{with_bob['id']}/pin", headers=alice.headers)
    assert pinned.status_code == 200
    assert pinned.json()["pinned"] is True
    await client.put(f"/api/v1/chats/{with_carol['id']}/pin", headers=alice.headers)
    order = [c["id"] for c in (await client.get("/api/v1/chats", headers=alice.headers)).json()]
    assert order == [with_carol["id"], with_bob["id"], with_dave["id"]]
    # Pins are per user: Bob's list is unaffected.
    bob_view = (await client.get("/api/v1/chats", headers=bob.headers)).json()
    assert bob_view[0]["pinned"] is False

    unpinned = await client.delete(f"/api/v1/chats/{with_carol['id']}/pin", headers=alice.headers)
    assert unpinned.json()["pinned"] is False
    order = [c["id"] for c in (await client.get("/api/v1/chats", headers=alice.headers)).json()]
    assert order == [with_bob["id"], with_dave["id"], with_carol["id"]]


async def test_chat_list_shows_last_message_and_unread_count(client: httpx.AsyncClient) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    await send_text(client, bob, chat["id"], "one")
    last = await send_text(client, bob, chat["id"], "two")
    [view] = (await client.get("/api/v1/chats", headers=alice.headers)).json()
    assert view["unread_count"] == 2
    assert view["last_message"]["text"] == "two"
    [bob_view] = (await client.get("/api/v1/chats", headers=bob.headers)).json()
    assert bob_view["unread_count"] == 0

    read = await client.post(
        f"/api/v1/chats/{chat['id']}/read", headers=alice.headers, json={"message_id": last["id"]}
    )
    assert read.status_code == 200
    assert read.json()["unread_count"] == 0
    assert read.json()["last_read_message_id"] == last["id"]


async def test_replying_marks_the_chat_read_for_the_sender(client: httpx.AsyncClient) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    await send_text(client, bob, chat["id"], "question")
    await send_text(client, alice, chat["id"], "answer")
    [alice_view] = (await client.get("/api/v1/chats", headers=alice.headers)).json()
    assert alice_view["unread_count"] == 0
    assert alice_view["last_message"]["text"] == "answer"
    [bob_view] = (await client.get("/api/v1/chats", headers=bob.headers)).json()
    assert bob_view["unread_count"] == 1


async def test_read_without_a_message_marks_everything_and_never_moves_back(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    first = await send_text(client, bob, chat["id"], "one")
    await send_text(client, bob, chat["id"], "two")
    everything = await client.post(f"/api/v1/chats/{chat['id']}/read", headers=alice.headers)
    assert everything.json()["unread_count"] == 0
    back = await client.post(
        f"/api/v1/chats/{chat['id']}/read", headers=alice.headers, json={"message_id": first["id"]}
    )
    assert back.json()["unread_count"] == 0
    elsewhere = await client.post(
        f"/api/v1/chats/{chat['id']}/read", headers=alice.headers, json={"message_id": UNKNOWN}
    )
    assert elsewhere.status_code == 404


async def test_mute_and_unmute_are_per_member(client: httpx.AsyncClient) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    muted = await client.put(f"/api/v1/chats/{chat['id']}/mute", headers=alice.headers)
    assert muted.status_code == 200
    assert muted.json()["muted"] is True
    assert (await client.get(f"/api/v1/chats/{chat['id']}", headers=bob.headers)).json()[
        "muted"
    ] is False
    unmuted = await client.delete(f"/api/v1/chats/{chat['id']}/mute", headers=alice.headers)
    assert unmuted.json()["muted"] is False
