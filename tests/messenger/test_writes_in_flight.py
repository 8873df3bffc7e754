"""One user's parallel writes cannot take the database pool: while the chat's row is locked
(as a long write holds it), six parallel renames by its owner hold at most
USER_WRITES_IN_FLIGHT connections; the others wait their turn and, past
USER_WRITE_WAIT_SECONDS, get a 429. Another user's writes go through meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from app.asgi import create_asgi
from app.config import Settings
from tests.accounts.api import register
from tests.messenger.api import group_chat
from tests.messenger.test_fanout_off_request_path import dsn
from tests.support import READY_SECONDS, LiveServer, free_port

IN_FLIGHT = 2
WAIT_SECONDS = 1.0
RENAMES = 5


@pytest.fixture
def capped_server(migrated_database: Settings) -> Iterator[LiveServer]:
    settings = dataclasses.replace(
        migrated_database, user_writes_in_flight=IN_FLIGHT, user_write_wait_seconds=WAIT_SECONDS
    )
    server = LiveServer(create_asgi(settings), free_port()).start()
    yield server
    server.stop()


async def waiting_on_locks(watcher: asyncpg.Connection) -> int:
    return int(
        await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
    )


async def test_one_users_parallel_writes_hold_at_most_their_share_of_the_pool(
    capped_server: LiveServer, migrated_database: Settings
) -> None:
    async with httpx.AsyncClient(base_url=capped_server.url, timeout=READY_SECONDS) as http:
        owner = await register(http, name="Owner")
        other = await register(http, name="Other")
        member = await register(http, name="Member")
        chat = await group_chat(http, owner, [member], title="Locked")
        other_chat = await group_chat(http, other, [member], title="Free")

        locker = await asyncpg.connect(dsn(migrated_database))
        watcher = await asyncpg.connect(dsn(migrated_database))
        try:
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("SELECT 1 FROM chat WHERE id = $1 FOR UPDATE", chat["id"])

            renames = [
                asyncio.create_task(
                    http.patch(
                        f"/api/v1/chats/{chat['id']}",
                        headers=owner.headers,
                        json={"title": f"Round {n}"},
                    )
                )
                for n in range(RENAMES)
            ]
            # The ones let through reach the row lock and wait there, each on a connection.
            deadline = asyncio.get_running_loop().time() + READY_SECONDS
            while await waiting_on_locks(watcher) < IN_FLIGHT:
                assert asyncio.get_running_loop().time() < deadline, "no rename reached the lock"
                await asyncio.sleep(0.05)
            # The rest are refused after their wait, without ever taking a connection.
            done: set[asyncio.Task[httpx.Response]] = set()
            pending = set(renames)
            while len(done) < RENAMES - IN_FLIGHT:
                more, pending = await asyncio.wait(
                    pending, timeout=READY_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                assert more, "the renames beyond the cap were never answered"
                done |= more
            refused = [task.result() for task in done]
            assert len(pending) == IN_FLIGHT, [r.status_code for r in refused]
            assert await waiting_on_locks(watcher) == IN_FLIGHT
            # Another user is not held up by the owner's queue.
            renamed_other = await http.patch(
                f"/api/v1/chats/{other_chat['id']}",
                headers=other.headers,
                json={"title": "Still free"},
            )
            await transaction.rollback()
            let_through = [await task for task in pending]
        finally:
            await locker.close()
            await watcher.close()

    assert [r.status_code for r in refused] == [429] * (RENAMES - IN_FLIGHT)
    assert [r.status_code for r in let_through] == [200] * IN_FLIGHT
    problem = refused[0]
    assert problem.headers["Retry-After"] == "1"
    assert problem.headers["content-type"].startswith("application/problem+json")
    assert "changes in progress" in problem.json()["detail"]
    assert renamed_other.status_code == 200, renamed_other.text
