"""Small clients of the chats and messages API shared by the messenger tests."""

from __future__ import annotations

from typing import Any

import httpx

from app.config import Settings
from app.domain.accounts.models import User
from app.lib.db import create_sqlalchemy_config
from tests.accounts.api import DEFAULT_PASSWORD, Account, register


async def direct_chat(client: httpx.AsyncClient, a: Account, b: Account) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/chats", headers=a.headers, json={"type": "direct", "member_id": b.id}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


async def alice_and_bob_in_a_direct_chat(
    client: httpx.AsyncClient, password: str = DEFAULT_PASSWORD
) -> tuple[Account, Account, dict[str, Any]]:
    """Two fresh accounts, Alice and Bob, and the direct chat Alice opened with Bob."""
    alice = await register(client, password=password)
    bob = await register(client, name="Bob", password=password)
    return alice, bob, await direct_chat(client, alice, bob)


async def allow_group_adds(client: httpx.AsyncClient, *accounts: Account) -> None:
    """Lets anyone add these accounts to groups (the default allows only contacts)."""
    for account in accounts:
        response = await client.patch(
            "/api/v1/users/me", headers=account.headers, json={"group_adds": "everyone"}
        )
        assert response.status_code == 200, response.text


async def group_chat(
    client: httpx.AsyncClient, owner: Account, members: list[Account], title: str = "Team"
) -> dict[str, Any]:
    """A group of fresh accounts: the members first let anyone add them to groups."""
    await allow_group_adds(client, *members)
    response = await client.post(
        "/api/v1/chats",
        headers=owner.headers,
        json={"type": "group", "title": title, "member_ids": [m.id for m in members]},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def alice_bob_and_carol_in_a_group(
    client: httpx.AsyncClient, title: str = "Team"
) -> tuple[Account, Account, Account, dict[str, Any]]:
    """Three fresh accounts and the group Alice made with Bob and Carol."""
    alice = await register(client)
    bob = await register(client, name="Bob")
    carol = await register(client, name="Carol")
    return alice, bob, carol, await group_chat(client, alice, [bob, carol], title=title)


async def send_text(
    client: httpx.AsyncClient, sender: Account, chat_id: str, text: str
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/chats/{chat_id}/messages",
        headers=sender.headers,
        json={"type": "text", "text": text},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def silent_members(settings: Settings, count: int) -> list[User]:
    """Accounts made as rows (signing up 150 users would hit the registration limit); each
    lets anyone add them to groups."""
    config = create_sqlalchemy_config(settings, pooled=False)
    async with config.get_session() as session:
        users = [
            User(
                phone=f"+7999{n:07d}",
                name=f"Member {n:03d}",
                password_hash="!",
                group_adds="everyone",
            )
            for n in range(count)
        ]
        session.add_all(users)
        await session.commit()
    await config.get_engine().dispose()
    return users


async def big_silent_group(
    client: httpx.AsyncClient, settings: Settings, owner: Account, count: int, title: str
) -> tuple[list[User], dict[str, Any]]:
    """A group of ``owner`` and ``count`` :func:`silent_members`, and the chat as created."""
    members = await silent_members(settings, count)
    created = await client.post(
        "/api/v1/chats",
        headers=owner.headers,
        json={"type": "group", "title": title, "member_ids": [str(u.id) for u in members]},
    )
    assert created.status_code == 201, created.text
    return members, created.json()
