"""The chat list: a page of chats (50 by default) in a fixed number of SQL statements,
whatever the number of chats, with every per-viewer field of the full list."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.messenger.chats import direct_key
from app.domain.messenger.models import DIRECT, Chat, ChatMember
from app.lib.auth import issue_access_token
from app.lib.db import create_sqlalchemy_config
from tests.accounts.api import Account, register
from tests.messenger.api import send_text, silent_members

PEERS = 60  # more than one page


async def direct_chats_as_rows(settings: Settings, owner: Account, peers: list[User]) -> None:
    """The owner's direct chats with each peer, made as rows (the API limits chats per minute)."""
    config = create_sqlalchemy_config(settings, pooled=False)
    async with config.get_session() as session:
        for peer in peers:
            chat = Chat(type=DIRECT, direct_key=direct_key(UUID(owner.id), peer.id))
            session.add(chat)
            await session.flush()
            session.add_all(
                [
                    ChatMember(chat_id=chat.id, user_id=UUID(owner.id)),
                    ChatMember(chat_id=chat.id, user_id=peer.id),
                ]
            )
        await session.commit()
    await config.get_engine().dispose()


def peer_account(settings: Settings, user: User) -> Account:
    token = issue_access_token(settings.secret_key, UUID(str(user.id)), 600).token
    return Account(
        id=str(user.id),
        phone=user.phone or "",
        password="!",
        name=user.name,
        access_token=token,
        refresh_token="",
    )


async def chat_pages(client: httpx.AsyncClient, owner: Account) -> list[httpx.Response]:
    pages = [await client.get("/api/v1/chats", headers=owner.headers)]
    while "X-Next-Offset" in pages[-1].headers:
        assert len(pages) < 10, "the pages never end"
        pages.append(
            await client.get(
                "/api/v1/chats",
                headers=owner.headers,
                params={"offset": pages[-1].headers["X-Next-Offset"]},
            )
        )
    return pages


async def test_the_chat_list_is_paged_and_costs_a_few_statements_whatever_its_size(
    client: httpx.AsyncClient, migrated_database: Settings, statements: list[str]
) -> None:
    owner = await register(client, name="Owner")
    users = await silent_members(migrated_database, PEERS)
    await direct_chats_as_rows(migrated_database, owner, users)
    peers = [peer_account(migrated_database, user) for user in users]
    chat_of: dict[str, str] = {}
    for chat in (await client.get("/api/v1/chats?limit=200", headers=owner.headers)).json():
        chat_of[next(m["id"] for m in chat["members"] if m["id"] != owner.id)] = chat["id"]
    # Something of every kind in the list: a last message in each chat (oldest first), a
    # reply, a forward, a like, unread messages, a pin and a block.
    for peer in peers:
        await send_text(client, owner, chat_of[peer.id], f"hello {peer.name}")
    first, second, third = peers[-1], peers[-2], peers[-3]
    quoted = await send_text(client, first, chat_of[first.id], "a question")
    reply = await client.post(
        f"/api/v1/chats/{chat_of[first.id]}/messages",
        headers=owner.headers,
        json={"text": "an answer", "reply_to_id": quoted["id"]},
    )
    assert reply.status_code == 201, reply.text
    forwarded = await client.post(
        f"/api/v1/chats/{chat_of[second.id]}/messages",
        headers=owner.headers,
        json={"forward_from_id": quoted["id"]},
    )
    assert forwarded.status_code == 201, forwarded.text
    like = await client.put(
        f"/api/v1/messages/{forwarded.json()['id']}/like", headers=second.headers
    )
    assert like.status_code == 200, like.text
    for text in ("one", "two"):
        await send_text(client, third, chat_of[third.id], text)
    pinned = peers[0]
    pin = await client.put(f"/api/v1/chats/{chat_of[pinned.id]}/pin", headers=owner.headers)
    assert pin.status_code == 200
    blocker = peers[1]
    block = await client.put(f"/api/v1/users/{owner.id}/block", headers=blocker.headers)
    assert block.status_code == 204

    statements.clear()
    pages = await chat_pages(client, owner)
    first_page_statements = len(statements) // len(pages)
    assert [p.status_code for p in pages] == [200, 200]
    assert [len(p.json()) for p in pages] == [50, PEERS - 50]
    assert len(statements) <= 3 * len(pages), statements
    print(f"chat list, {PEERS} chats in {len(pages)} pages: {len(statements)} SQL statements")

    listed = [chat for page in pages for chat in page.json()]
    by_id = {chat["id"]: chat for chat in listed}
    assert len(by_id) == PEERS
    # Pinned first, then the most recent activity first.
    expected = [chat_of[pinned.id], chat_of[third.id], chat_of[second.id], chat_of[first.id]]
    assert [chat["id"] for chat in listed[:4]] == expected
    activity = [chat["last_activity_at"] for chat in listed[1:]]
    assert activity == sorted(activity, reverse=True)

    answer = by_id[chat_of[first.id]]["last_message"]
    assert answer["text"] == "an answer"
    assert answer["reply_to"]["text"] == "a question"
    assert answer["reply_to"]["sender_name"] == first.name
    copy: dict[str, Any] = by_id[chat_of[second.id]]
    assert copy["last_message"]["forwarded_from"] == {"user_id": first.id, "name": first.name}
    assert copy["last_message"]["likes"] == 1
    assert copy["last_message"]["liked_by_me"] is False
    assert by_id[chat_of[third.id]]["unread_count"] == 2
    assert by_id[chat_of[first.id]]["unread_count"] == 0  # replying marked it read
    assert by_id[chat_of[pinned.id]]["pinned"] is True
    assert by_id[chat_of[first.id]]["title"] == first.name
    # A blocked pair sees none of each other's ticks.
    assert by_id[chat_of[blocker.id]]["peer_read_seq"] is None
    assert by_id[chat_of[third.id]]["peer_read_seq"] == 3
    assert first_page_statements <= 3


async def test_a_page_of_the_chat_list_takes_limit_and_offset(client: httpx.AsyncClient) -> None:
    owner = await register(client, name="Owner")
    friends = [await register(client, name=f"Friend {n}") for n in range(3)]
    for friend in friends:
        created = await client.post(
            "/api/v1/chats", headers=owner.headers, json={"type": "direct", "member_id": friend.id}
        )
        assert created.status_code == 201
    whole = await client.get("/api/v1/chats", headers=owner.headers)
    assert "X-Next-Offset" not in whole.headers
    ids = [chat["id"] for chat in whole.json()]
    assert len(ids) == 3
    head = await client.get("/api/v1/chats", headers=owner.headers, params={"limit": 2})
    assert [chat["id"] for chat in head.json()] == ids[:2]
    assert head.headers["X-Next-Offset"] == "2"
    tail = await client.get(
        "/api/v1/chats", headers=owner.headers, params={"limit": 2, "offset": 2}
    )
    assert [chat["id"] for chat in tail.json()] == ids[2:]
    assert "X-Next-Offset" not in tail.headers
    refused = await client.get("/api/v1/chats", headers=owner.headers, params={"limit": 0})
    assert refused.status_code == 422
