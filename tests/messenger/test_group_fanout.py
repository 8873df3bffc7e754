"""A group event reaches every member with their own view of the chat, computed in a
handful of queries rather than a chat-list query per member."""

from __future__ import annotations

from uuid import UUID

import httpx

from app.config import Settings
from app.lib.auth import issue_access_token
from tests.accounts.api import register
from tests.messenger.api import big_silent_group
from tests.messenger.sockets import connect
from tests.support import LiveServer

MEMBERS = 150


async def test_renaming_a_large_group_costs_a_few_queries_and_each_member_gets_their_view(
    client: httpx.AsyncClient,
    live_server: LiveServer,
    migrated_database: Settings,
    statements: list[str],
) -> None:
    owner = await register(client, name="Owner")
    members, chat = await big_silent_group(client, migrated_database, owner, MEMBERS, "Big")
    chat_id = chat["id"]
    pinner = members[0]
    token = issue_access_token(migrated_database.secret_key, UUID(str(pinner.id)), 600).token
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.put(f"/api/v1/chats/{chat_id}/pin", headers=headers)).status_code == 200
    hello = await client.post(
        f"/api/v1/chats/{chat_id}/messages", headers=owner.headers, json={"text": "hello all"}
    )
    assert hello.status_code == 201
    socket = await connect(live_server.url, token)
    try:
        statements.clear()
        renamed = await client.patch(
            f"/api/v1/chats/{chat_id}", headers=owner.headers, json={"title": "Bigger"}, timeout=120
        )
        assert renamed.status_code == 200, renamed.text
        view = await socket.wait_for("chat:updated", timeout=60, id=chat_id, title="Bigger")
        # The request's and the fan-out's (off the request path, done once it arrived).
        await socket.wait_for("message:new", timeout=60, chat_id=chat_id, type="system")
        queries = len(statements)
    finally:
        await socket.close()
    print(f"rename of a {MEMBERS + 1}-member group: {queries} SQL statements")
    assert queries <= 40, queries
    # The member's own view: pinned by them, the owner's message unread (system notices
    # never count).
    assert view["pinned"] is True
    assert view["unread_count"] == 1
    assert len(view["members"]) == MEMBERS + 1
    assert renamed.json()["pinned"] is False
    assert renamed.json()["unread_count"] == 0
