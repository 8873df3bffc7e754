"""Small clients of the chats and messages API shared by the messenger tests."""

from __future__ import annotations

from typing import Any

import httpx

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
