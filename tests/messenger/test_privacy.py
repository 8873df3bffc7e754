"""Privacy: who may add me to a group (``group_adds``) and blocking a user."""

from __future__ import annotations

from typing import Any

import httpx

from tests.accounts.api import Account, register
from tests.messenger.api import direct_chat, group_chat, send_text
from tests.messenger.sockets import SocketUser, connect
from tests.security.schema import is_problem
from tests.support import LiveServer


async def set_group_adds(client: httpx.AsyncClient, account: Account, value: str) -> None:
    response = await client.patch(
        "/api/v1/users/me", headers=account.headers, json={"group_adds": value}
    )
    assert response.status_code == 200, response.text
    assert response.json()["group_adds"] == value


async def create_group(
    client: httpx.AsyncClient, owner: Account, members: list[Account]
) -> httpx.Response:
    return await client.post(
        "/api/v1/chats",
        headers=owner.headers,
        json={"type": "group", "title": "Team", "member_ids": [m.id for m in members]},
    )


async def owner_and_three_privacy_settings(
    client: httpx.AsyncClient,
) -> tuple[Account, Account, Account, Account]:
    """The owner, then a user open to anyone's group adds, one with the default (contacts
    only) and one who allows nobody, not even the owner who is their contact."""
    owner = await register(client, name="Owner")
    open_ = await register(client, name="Open")
    closed = await register(client, name="Closed")
    private = await register(client, name="Private")
    await set_group_adds(client, open_, "everyone")
    await set_group_adds(client, private, "nobody")
    await direct_chat(client, owner, private)
    return owner, open_, closed, private


async def chat_ids(client: httpx.AsyncClient, account: Account) -> list[str]:
    response = await client.get("/api/v1/chats", headers=account.headers)
    assert response.status_code == 200, response.text
    body: Any = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return [chat["id"] for chat in items]


# --- group_adds -----------------------------------------------------------------------------


async def test_the_profile_shows_group_adds_to_its_owner_with_contacts_by_default(
    client: httpx.AsyncClient,
) -> None:
    alice = await register(client)
    me = await client.get("/api/v1/users/me", headers=alice.headers)
    assert me.json()["group_adds"] == "contacts"
    await set_group_adds(client, alice, "nobody")
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).json()[
        "group_adds"
    ] == "nobody"
    wrong = await client.patch(
        "/api/v1/users/me", headers=alice.headers, json={"group_adds": "friends"}
    )
    assert is_problem(wrong, 400) or is_problem(wrong, 422)
    other = await register(client, name="Other")
    public = await client.get(f"/api/v1/users/{alice.id}", headers=other.headers)
    assert "group_adds" not in public.json()


async def test_a_stranger_cannot_put_me_in_a_group_by_default(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    stranger = await register(client, name="Stranger")
    friend = await register(client, name="Friend")
    await direct_chat(client, friend, alice)  # alice and friend are contacts
    # The stranger's group is made, but alice is only invited (tests/messenger/test_invitations.py).
    response = await create_group(client, stranger, [alice])
    assert response.status_code == 201, response.text
    assert response.json()["invited"] == [alice.id]
    assert alice.id not in {m["id"] for m in response.json()["members"]}
    assert len(await chat_ids(client, alice)) == 1  # only the direct chat with friend
    # A contact may.
    created = await create_group(client, friend, [alice])
    assert created.status_code == 201, created.text
    assert {m["id"] for m in created.json()["members"]} >= {alice.id, friend.id}


async def test_refused_members_are_named_as_invited_and_nobody_is_silently_dropped(
    client: httpx.AsyncClient,
) -> None:
    owner, open_, closed, private = await owner_and_three_privacy_settings(client)
    response = await create_group(client, owner, [open_, closed, private])
    assert response.status_code == 201, response.text
    assert sorted(response.json()["invited"]) == sorted([closed.id, private.id])
    assert response.json()["added"] == [open_.id]
    assert {m["id"] for m in response.json()["members"]} == {owner.id, open_.id}
    assert await chat_ids(client, closed) == []
    assert await chat_ids(client, open_) == [response.json()["id"]]


async def test_adding_members_honours_their_setting(client: httpx.AsyncClient) -> None:
    owner = await register(client, name="Owner")
    member = await register(client, name="Member")
    await set_group_adds(client, member, "everyone")
    group = (await create_group(client, owner, [member])).json()
    stranger = await register(client, name="Stranger")
    added = await client.post(
        f"/api/v1/chats/{group['id']}/members",
        headers=owner.headers,
        json={"user_ids": [stranger.id]},
    )
    assert added.status_code == 200, added.text
    assert added.json()["invited"] == [stranger.id]
    assert await chat_ids(client, stranger) == []
    await set_group_adds(client, stranger, "everyone")
    added = await client.post(
        f"/api/v1/chats/{group['id']}/members",
        headers=owner.headers,
        json={"user_ids": [stranger.id]},
    )
    assert added.status_code in (200, 201), added.text
    assert await chat_ids(client, stranger) == [group["id"]]


# --- blocking -------------------------------------------------------------------------------


async def block(client: httpx.AsyncClient, blocker: Account, target: Account) -> None:
    response = await client.put(f"/api/v1/users/{target.id}/block", headers=blocker.headers)
    assert response.status_code == 204, response.text


async def test_block_unblock_and_the_list(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    assert (await client.get("/api/v1/users/me/blocked", headers=alice.headers)).json() == []
    await block(client, alice, bob)
    await block(client, alice, bob)  # idempotent
    listed = (await client.get("/api/v1/users/me/blocked", headers=alice.headers)).json()
    assert [u["id"] for u in listed] == [bob.id]
    assert "phone" not in listed[0]
    unblocked = await client.delete(f"/api/v1/users/{bob.id}/block", headers=alice.headers)
    assert unblocked.status_code == 204
    assert (await client.get("/api/v1/users/me/blocked", headers=alice.headers)).json() == []
    myself = await client.put(f"/api/v1/users/{alice.id}/block", headers=alice.headers)
    assert is_problem(myself, 422) or is_problem(myself, 400)
    unknown = await client.put(
        "/api/v1/users/00000000-0000-7000-8000-000000000000/block", headers=alice.headers
    )
    assert is_problem(unknown, 404)


async def test_neither_side_can_message_in_their_direct_chat(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    chat = await direct_chat(client, alice, bob)
    await send_text(client, bob, chat["id"], "before")
    await block(client, alice, bob)
    for sender in (alice, bob):
        response = await client.post(
            f"/api/v1/chats/{chat['id']}/messages",
            headers=sender.headers,
            json={"type": "text", "text": "hello?"},
        )
        assert is_problem(response, 403)
        assert response.json()["detail"] == "You cannot message this user"
    b = await connect(live_server.url, bob.access_token)
    try:
        ack = await b.client.call(
            "message:send", {"chat_id": chat["id"], "text": "socket?"}, timeout=15
        )
    finally:
        await b.close()
    assert ack["error"]["status"] == 403
    assert ack["error"]["detail"] == "You cannot message this user"
    history = await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers)
    assert [m["text"] for m in history.json()["items"]] == ["before"]
    # Unblocked, they talk again.
    await client.delete(f"/api/v1/users/{bob.id}/block", headers=alice.headers)
    await send_text(client, bob, chat["id"], "after")


async def test_the_blocked_user_cannot_reach_the_blocker(client: httpx.AsyncClient) -> None:
    alice = await register(client, name="Alicia")
    bob = await register(client, name="Bob")
    await set_group_adds(client, alice, "everyone")
    found = await client.get("/api/v1/users", params={"search": "Alicia"}, headers=bob.headers)
    assert alice.id in [u["id"] for u in found.json()]
    await block(client, alice, bob)
    direct = await client.post(
        "/api/v1/chats", headers=bob.headers, json={"type": "direct", "member_id": alice.id}
    )
    assert is_problem(direct, 404)
    group = await create_group(client, bob, [alice])
    assert is_problem(group, 403)
    assert alice.id in group.json()["detail"]
    found = await client.get("/api/v1/users", params={"search": "Alicia"}, headers=bob.headers)
    assert alice.id not in [u["id"] for u in found.json()]
    found = await client.get("/api/v1/users", params={"search": alice.phone}, headers=bob.headers)
    assert found.json() == []
    # The blocker still finds and reaches the blocked user (to unblock them, for instance).
    found = await client.get("/api/v1/users", params={"search": "Bob"}, headers=alice.headers)
    assert bob.id in [u["id"] for u in found.json()]


async def test_the_blocked_user_hears_no_presence_of_the_blocker(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    carol = await register(client, name="Carol")
    group = await group_chat(client, carol, [alice, bob])
    await block(client, alice, bob)
    opened: list[SocketUser] = []
    try:
        b = await connect(live_server.url, bob.access_token)
        c = await connect(live_server.url, carol.access_token)
        opened += [b, c]
        a = await connect(live_server.url, alice.access_token)
        opened.append(a)
        await c.wait_for("presence", timeout=20, user_id=alice.id, online=True)
        # Alice's presence went out before this message, on the same channel: Bob has
        # received everything sent to him up to here once the message arrives.
        await send_text(client, alice, group["id"], "in the group")
        await b.wait_for("message:new", timeout=20, chat_id=group["id"], text="in the group")
        await a.close()
        await c.wait_for("presence", timeout=20, user_id=alice.id, online=False)
        await send_text(client, carol, group["id"], "after alice left")
        await b.wait_for("message:new", timeout=20, text="after alice left")
        assert [p for p in b.named("presence") if p.get("user_id") == alice.id] == []
        # Carol's presence still reaches Bob: only the blocker's is withheld.
    finally:
        for user in opened:
            await user.close()
