"""The catch-up cursor under concurrent writers: ``after=`` never skips a message that
committed after the reader's page, whatever order the writers' ids sort in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.config import Settings
from tests.accounts.api import Account
from tests.messenger.api import alice_bob_and_carol_in_a_group, send_text
from tests.messenger.processes import ApiProcess, start_all

pytestmark = pytest.mark.slow


def dsn(settings: Settings) -> str:
    return settings.database_url.replace("postgresql+asyncpg://", "postgresql://")


async def page(
    http: httpx.AsyncClient, reader: Account, chat_id: str, **params: Any
) -> dict[str, Any]:
    response = await http.get(
        f"/api/v1/chats/{chat_id}/messages", headers=reader.headers, params=params
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def caught_up(
    http: httpx.AsyncClient, reader: Account, chat_id: str, after: str
) -> list[dict[str, Any]]:
    """Follow ``after`` until nothing is left, as a reconnecting client does."""
    seen: list[dict[str, Any]] = []
    cursor = after
    while True:
        body = await page(http, reader, chat_id, after=cursor, limit=100)
        seen += body["items"]
        if body["next_cursor"] is None:
            return seen
        cursor = body["next_cursor"]


async def wait_for_lock_waiters(connection: asyncpg.Connection, query_start: str, n: int) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND query LIKE $1",
            query_start,
        )
        if waiting >= n:
            return
        if asyncio.get_running_loop().time() > deadline:
            activity = await connection.fetch(
                "SELECT state, wait_event_type, wait_event, left(query, 90) AS query "
                "FROM pg_stat_activity WHERE datname = current_database()"
            )
            raise AssertionError(f"nobody waits on {query_start}: {[dict(a) for a in activity]}")
        await asyncio.sleep(0.1)


async def test_two_interleaved_writers_commit_in_seq_order_and_catch_up_skips_neither(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    alice, bob, carol, chat = await alice_bob_and_carol_in_a_group(client)
    seen = await send_text(client, carol, chat["id"], "Carol's last seen message")

    holder = await asyncpg.connect(dsn(migrated_database))
    watcher = await asyncpg.connect(dsn(migrated_database))
    try:
        # Hold Alice's membership row: her send takes its seq, then waits inside its
        # transaction (it moves her read marker just before committing).
        hold = holder.transaction()
        await hold.start()
        await holder.execute(
            "SELECT 1 FROM chat_member WHERE chat_id = $1 AND user_id = $2 FOR UPDATE",
            chat["id"],
            alice.id,
        )
        # (Whatever the statements look like, one statement or several: the first waiter is
        # Alice's send, the second Bob's.)
        first = asyncio.create_task(send_text(client, alice, chat["id"], "first writer"))
        await wait_for_lock_waiters(watcher, "%chat_member%", 1)
        # Bob writes meanwhile: his send waits for Alice's to commit before taking a seq.
        second = asyncio.create_task(send_text(client, bob, chat["id"], "second writer"))
        await wait_for_lock_waiters(watcher, "%", 2)
        # Neither is visible yet: a reader catching up now gets nothing, not a hole.
        assert await caught_up(client, carol, chat["id"], seen["id"]) == []
        await hold.rollback()
        a, b = await asyncio.wait_for(asyncio.gather(first, second), 120)
    finally:
        await holder.close()
        await watcher.close()

    assert a["seq"] < b["seq"]
    after_seen = await caught_up(client, carol, chat["id"], seen["id"])
    assert [m["id"] for m in after_seen] == [a["id"], b["id"]]
    # The seq works as a cursor too, and a reader who had seen the first catches the second.
    by_seq = await page(client, carol, chat["id"], after=str(seen["seq"]))
    assert [m["id"] for m in by_seq["items"]] == [a["id"], b["id"]]
    assert [m["id"] for m in await caught_up(client, carol, chat["id"], a["id"])] == [b["id"]]


@pytest.fixture
def replica_with_a_lagging_clock(migrated_database: Settings) -> Iterator[ApiProcess]:
    process = ApiProcess(migrated_database, clock_behind_seconds=30)
    start_all([process])
    yield process
    process.stop()


async def test_a_message_from_a_replica_with_a_lagging_clock_is_not_skipped(
    client: httpx.AsyncClient, replica_with_a_lagging_clock: ApiProcess
) -> None:
    """Ids are made before the commit, from the replica's clock: a message committed later
    on a replica whose clock lags has a smaller id than the one the reader has seen."""
    alice, bob, carol, chat = await alice_bob_and_carol_in_a_group(client)
    seen = await send_text(client, alice, chat["id"], "seen by Carol")
    async with httpx.AsyncClient(base_url=replica_with_a_lagging_clock.url, timeout=60) as other:
        later = await send_text(other, bob, chat["id"], "committed later, smaller id")
    assert later["id"] < seen["id"]  # the lagging clock, as set up

    after_seen = await caught_up(client, carol, chat["id"], seen["id"])
    assert [m["id"] for m in after_seen] == [later["id"]]
    newest_first = await page(client, carol, chat["id"])
    assert [m["text"] for m in newest_first["items"][:2]] == [
        "committed later, smaller id",
        "seen by Carol",
    ]
    # Carol reads up to the newest message: nothing is left unread.
    read = await client.post(f"/api/v1/chats/{chat['id']}/read", headers=carol.headers)
    assert read.json()["unread_count"] == 0
    chats = await client.get("/api/v1/chats", headers=carol.headers)
    assert chats.json()[0]["last_message"]["id"] == later["id"]
