"""The signed-in account is read once and reused for a few seconds by the reads that follow
(AUTH_USER_CACHE_SECONDS), yet every change made in this process shows on the next request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.config import Settings
from app.domain.accounts.authentication import RecentUsers
from app.lib.auth import issue_access_token
from tests.accounts.api import data_url, image_bytes, register


@contextmanager
def statements_on_accounts() -> Iterator[list[str]]:
    """The SQL statements that touch the account table while the block runs (any engine of
    this process, the live server's included)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "user_account" in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def test_repeated_reads_of_my_profile_do_not_query_the_account_again(
    client: httpx.AsyncClient,
) -> None:
    alice = await register(client)
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 200
    with statements_on_accounts() as statements:
        for _ in range(3):
            me = await client.get("/api/v1/users/me", headers=alice.headers)
            assert me.status_code == 200
            assert me.json()["name"] == "Alice"
    assert statements == []


async def test_my_edits_show_on_the_very_next_read(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).json()["bio"] == ""
    edited = await client.patch(
        "/api/v1/users/me", headers=alice.headers, json={"name": "Alicia", "bio": "hi"}
    )
    assert edited.status_code == 200
    me = (await client.get("/api/v1/users/me", headers=alice.headers)).json()
    assert (me["name"], me["bio"]) == ("Alicia", "hi")

    uploaded = await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": data_url(image_bytes())}
    )
    assert uploaded.status_code == 200
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).json()["avatar"]
    removed = await client.delete("/api/v1/users/me/avatar", headers=alice.headers)
    assert removed.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).json()["avatar"] is None


async def test_a_deleted_account_is_refused_at_once_even_by_a_token_without_a_session(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """A token that names no sign-in session cannot be revoked in Redis: only the account
    check stops it, so the copy read a moment ago must not outlive the deletion."""
    alice = await register(client)
    bare = issue_access_token(
        settings.secret_key, UUID(alice.id), settings.access_token_ttl_seconds
    )
    headers = {"Authorization": f"Bearer {bare.token}"}
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    deleted = await client.request(
        "DELETE", "/api/v1/users/me", headers=alice.headers, json={"password": alice.password}
    )
    assert deleted.status_code == 204
    refused = await client.get("/api/v1/users/me", headers=headers)
    assert refused.status_code == 401
    assert "no longer exists" in refused.json()["detail"]


def test_a_read_that_began_before_a_write_does_not_store_what_it_read() -> None:
    users = RecentUsers(ttl_seconds=5)
    user_id = UUID(int=1)
    before = users.generation(user_id)
    users.forget(user_id)  # a commit changed the user while the read was on its way
    users.put(user_id, {"name": "old"}, before)
    assert users.get(user_id) is None
    users.put(user_id, {"name": "new"}, users.generation(user_id))
    assert users.get(user_id) == {"name": "new"}


def test_copies_expire_and_a_zero_lifetime_keeps_none() -> None:
    users = RecentUsers(ttl_seconds=0)
    users.put(UUID(int=1), {"name": "x"}, 0)
    assert users.get(UUID(int=1)) is None
