"""Deleting an account: DELETE /api/v1/users/me with the password."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from tests.accounts.api import Account, data_url, image_bytes, register
from tests.messenger.api import alice_and_bob_in_a_direct_chat, send_text
from tests.messenger.sockets import connect
from tests.support import LiveServer


async def delete_account(
    client: httpx.AsyncClient, account: Account, password: str
) -> httpx.Response:
    return await client.request(
        "DELETE", "/api/v1/users/me", headers=account.headers, json={"password": password}
    )


async def blob_count(settings: Settings) -> int:
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    async with engine.connect() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM blob"))).scalar_one()
    await engine.dispose()
    return int(count)


async def test_deleting_an_account_needs_its_password(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    wrong = await delete_account(client, alice, "not my password")
    assert wrong.status_code == 403
    assert wrong.headers["content-type"].startswith("application/problem+json")
    missing = await client.request("DELETE", "/api/v1/users/me", headers=alice.headers, json={})
    assert missing.status_code in (400, 422)
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 200


async def test_deleting_an_account_ends_its_tokens_removes_its_avatar_and_frees_its_phone(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    alice = await register(client)
    uploaded = await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": data_url(image_bytes())}
    )
    assert uploaded.status_code == 200
    assert await blob_count(migrated_database) == 4
    gone = await delete_account(client, alice, alice.password)
    assert gone.status_code == 204, gone.text
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token}
    )
    assert refreshed.status_code == 401
    login = await client.post(
        "/api/v1/auth/login", json={"phone": alice.phone, "password": alice.password}
    )
    assert login.status_code == 401
    assert (await client.get(f"/api/v1/users/{alice.id}/avatar/100")).status_code == 404
    assert await blob_count(migrated_database) == 0
    again = await client.post(
        "/api/v1/auth/register",
        json={"phone": alice.phone, "password": "a brand new password", "name": "New Alice"},
    )
    assert again.status_code == 201
    assert again.json()["user"]["id"] != alice.id


async def test_a_deleted_accounts_messages_stay_in_others_chats_as_deleted_account(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    sent = await send_text(client, bob, chat["id"], "see you tomorrow")
    assert (await delete_account(client, bob, bob.password)).status_code == 204
    history = await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers)
    assert history.status_code == 200
    (message,) = [m for m in history.json()["items"] if m["id"] == sent["id"]]
    assert message["sender_id"] == bob.id
    view = await client.get(f"/api/v1/chats/{chat['id']}", headers=alice.headers)
    members = {member["id"]: member for member in view.json()["members"]}
    assert members[bob.id]["name"] == "Deleted account"
    assert members[bob.id]["avatar_url"] is None
    profile = await client.get(f"/api/v1/users/{bob.id}", headers=alice.headers)
    assert profile.json()["name"] == "Deleted account"
    assert profile.json()["deleted"] is True
    found = await client.get("/api/v1/users", params={"search": bob.phone}, headers=alice.headers)
    assert found.json() == []
    found = await client.get("/api/v1/users", params={"search": "Deleted"}, headers=alice.headers)
    assert found.json() == []


async def test_deleting_an_account_closes_its_live_connections(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    alice = await register(client)
    socket = await connect(live_server.url, alice.access_token)
    try:
        assert (await delete_account(client, alice, alice.password)).status_code == 204
        await socket.wait_for("session:expired", timeout=20)
        deadline = asyncio.get_running_loop().time() + 20
        while socket.client.connected and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert not socket.client.connected
    finally:
        await socket.close()


async def test_nobody_can_start_a_chat_with_a_deleted_account(client: httpx.AsyncClient) -> None:
    alice = await register(client, "Alice")
    bob = await register(client, "Bob")
    carol = await register(client, "Carol")
    assert (await delete_account(client, bob, bob.password)).status_code == 204
    direct = await client.post(
        "/api/v1/chats", headers=alice.headers, json={"type": "direct", "member_id": bob.id}
    )
    assert direct.status_code == 404, direct.text
    group = await client.post(
        "/api/v1/chats",
        headers=alice.headers,
        json={"type": "group", "title": "Team", "member_ids": [bob.id, carol.id]},
    )
    assert group.status_code in (404, 422), group.text
