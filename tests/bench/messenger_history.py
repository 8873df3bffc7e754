"""History and chat-list latency on a seeded messenger database.

    python -m tests.bench.messenger_seed        # once: 1,000,000 messages in 10,000 chats
    python -m tests.bench.messenger_history [--requests 300]

Serves the application with uvicorn on BENCH_DATABASE_URL and measures, through HTTP as a
client sees it: the newest history page of a chat, a page deep in history (cursor), and
the chat list of a user with 500 chats (its first page, as the chat page loads it).
Baselines measured in the same run: GET /health/live (the HTTP and framework floor), GET
/users/me (the authenticated-request floor) and
the history query and the chat list's page statement alone over asyncpg (the database
floors). Beside each figure: the server's CPU per request (the uvicorn thread's CPU clock)
and the client's, and for GET /chats the SQL statements per request. The query plans of
the history page and of the chat list's page statement (EXPLAIN ANALYZE, BUFFERS) are
printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event

from app.asgi import create_asgi
from tests.bench.harness import BENCH_DATABASE_URL, BENCH_REDIS_URL
from tests.bench.messenger_seed import HUB_PASSWORD, HUB_PHONE
from tests.support import LiveServer, free_port, litestar_app, make_settings

HISTORY_SQL = "SELECT * FROM message WHERE chat_id = $1 AND id < $2 ORDER BY id DESC LIMIT 51"


def thread_cpu(thread: threading.Thread | None) -> float:
    """A thread's CPU time so far, in seconds (Linux: its own CPU clock)."""
    assert thread is not None
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


async def measure(
    name: str,
    requests: int,
    call: Callable[[], Awaitable[object]],
    server: threading.Thread | None = None,
) -> dict[str, float]:
    for _ in range(min(20, requests)):  # warm-up
        await call()
    samples = []
    server_cpu = thread_cpu(server) if server else 0.0
    client_cpu = time.thread_time()
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    client_cpu = (time.thread_time() - client_cpu) * 1000 / requests
    samples.sort()
    figures = {
        "p50": statistics.median(samples),
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "mean": statistics.fmean(samples),
        "client_cpu": client_cpu,
    }
    line = f"{name:<44} p50 {figures['p50']:7.2f} ms   p99 {figures['p99']:7.2f} ms"
    if server is not None:
        figures["server_cpu"] = (thread_cpu(server) - server_cpu) * 1000 / requests
        line += f"   server CPU {figures['server_cpu']:6.2f} ms/req"
    print(f"{line}   client CPU {client_cpu:6.2f} ms/req   (n={requests})")
    return figures


class StatementLog:
    """The SQL statements the served application runs (with their parameters)."""

    def __init__(self, server: LiveServer) -> None:
        self.engine = litestar_app(server).state.db_config.get_engine().sync_engine
        self.seen: list[tuple[str, Any]] = []
        event.listen(self.engine, "before_cursor_execute", self.record)

    def record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.seen.append((statement, parameters))

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self.record)


async def chat_list_statements(
    client: httpx.AsyncClient, server: LiveServer, headers: dict[str, str]
) -> list[tuple[str, Any]]:
    log = StatementLog(server)
    try:
        response = await client.get("/api/v1/chats", headers=headers)
        response.raise_for_status()
    finally:
        log.close()
    print(
        f"GET /chats: {len(response.json())} chats on the first page, "
        f"next page at offset {response.headers.get('X-Next-Offset')}, "
        f"{len(log.seen)} SQL statements per request (the issue's baseline: 11)"
    )
    return log.seen


def page_statement(seen: list[tuple[str, Any]]) -> tuple[str, list[Any]] | None:
    """The chat list's page statement (its FROM is the page of memberships); None on code
    without one (the benchmark run against an older checkout, for a before figure)."""
    found = next(((s, list(p)) for s, p in seen if "AS page" in s), None)
    if found is None:
        print("no chat list page statement (an older checkout?): no plan, no baseline")
    return found


async def run(requests: int) -> None:
    dsn = BENCH_DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://")
    db = await asyncpg.connect(dsn)
    total = await db.fetchval("SELECT count(*) FROM message")
    chats = await db.fetch(
        "SELECT c.id FROM chat c JOIN chat_member m ON m.chat_id = c.id "
        "JOIN user_account u ON u.id = m.user_id WHERE u.phone = $1",
        HUB_PHONE,
    )
    print(f"database: {total} messages; the hub user is in {len(chats)} chats")
    chat_id = chats[0]["id"]
    ids = [
        r["id"]
        for r in await db.fetch("SELECT id FROM message WHERE chat_id = $1 ORDER BY id", chat_id)
    ]
    deep_cursor = ids[len(ids) // 2] if ids else None
    plan = await db.fetch("EXPLAIN " + HISTORY_SQL, chat_id, deep_cursor or chat_id)
    print("history query plan:\n  " + "\n  ".join(r[0] for r in plan))

    settings = make_settings(
        database_url=BENCH_DATABASE_URL, redis_url=BENCH_REDIS_URL, log_level="ERROR"
    )
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            login = await client.post(
                "/api/v1/auth/login", json={"phone": HUB_PHONE, "password": HUB_PASSWORD}
            )
            login.raise_for_status()
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            chat_ids = [str(r["id"]) for r in chats]

            print(f"\n{requests} sequential requests each")
            await measure(
                "baseline: GET /health/live",
                requests,
                lambda: client.get("/health/live"),
                server.thread,
            )
            await measure(
                "baseline: history query over asyncpg",
                requests,
                lambda: db.fetch(HISTORY_SQL, chat_id, deep_cursor or chat_id),
            )
            await measure(
                "GET /chats/{id}/messages (newest 50)",
                requests,
                lambda: client.get(
                    f"/api/v1/chats/{random.choice(chat_ids)}/messages",
                    headers=headers,
                    params={"limit": 50},
                ),
            )
            if deep_cursor is not None:
                await measure(
                    "GET /chats/{id}/messages?before= (deep page)",
                    requests,
                    lambda: client.get(
                        f"/api/v1/chats/{chat_id}/messages",
                        headers=headers,
                        params={"limit": 50, "before": str(deep_cursor)},
                    ),
                )
            await measure(
                "baseline: GET /users/me (auth floor)",
                requests,
                lambda: client.get("/api/v1/users/me", headers=headers),
                server.thread,
            )
            found = page_statement(await chat_list_statements(client, server, headers))
            if found is not None:
                statement, parameters = found
                plan = await db.fetch(
                    "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, *parameters
                )
                print(
                    "chat list page statement, EXPLAIN ANALYZE:\n  "
                    + "\n  ".join(r[0] for r in plan)
                )
                await measure(
                    "baseline: chat list page statement, asyncpg",
                    requests,
                    lambda: db.fetch(statement, *parameters),
                )
            await measure(
                f"GET /chats (first page of {len(chat_ids)} chats)",
                requests,
                lambda: client.get("/api/v1/chats", headers=headers),
                server.thread,
            )
    finally:
        server.stop()
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    asyncio.run(run(parser.parse_args().requests))


if __name__ == "__main__":
    main()
