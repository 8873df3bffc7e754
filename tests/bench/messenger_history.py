"""History and chat-list latency on a seeded messenger database.

    python -m tests.bench.messenger_seed        # once: 1,000,000 messages in 10,000 chats
    python -m tests.bench.messenger_history [--requests 300]

Serves the application with uvicorn on BENCH_DATABASE_URL and measures, through HTTP as a
client sees it: the newest history page of a chat, a page deep in history (cursor), and
the chat list of a user with 500 chats. Baselines measured in the same run: GET
/health/live (the HTTP and framework floor) and the history query alone over asyncpg
(the database floor). The query plan of the history page is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg
import httpx

from app.asgi import create_asgi
from tests.bench.messenger_seed import BENCH_DATABASE_URL, HUB_PASSWORD, HUB_PHONE
from tests.support import LiveServer, free_port, make_settings

HISTORY_SQL = "SELECT * FROM message WHERE chat_id = $1 AND id < $2 ORDER BY id DESC LIMIT 51"


async def measure(
    name: str, requests: int, call: Callable[[], Awaitable[object]]
) -> dict[str, float]:
    for _ in range(min(20, requests)):  # warm-up
        await call()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    figures = {
        "p50": statistics.median(samples),
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "mean": statistics.fmean(samples),
    }
    print(f"{name:<44} p50 {figures['p50']:7.2f} ms   p99 {figures['p99']:7.2f} ms")
    return figures


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

    settings = make_settings(database_url=BENCH_DATABASE_URL, log_level="ERROR")
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
                "baseline: GET /health/live", requests, lambda: client.get("/health/live")
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
                f"GET /chats ({len(chat_ids)} chats)",
                max(requests // 10, 20),
                lambda: client.get("/api/v1/chats", headers=headers),
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
