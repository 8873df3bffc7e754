"""The board's message list with 1,000 live messages: requests per second and p50/p99.

Baseline, measured in the same run against the same server: GET /health/live, the cost of
the framework and the HTTP stack alone. Run: `python -m tests.bench.board_list`.
"""

from __future__ import annotations

import asyncio
import os

import httpx
from redis.asyncio import Redis

from app.domain.board.services import BoardMessageStore
from tests.bench.harness import BENCH_REDIS_URL, drive, print_table, server_process
from tests.support import post_form

MESSAGES = 1000
DURATION = float(os.environ.get("BENCH_SECONDS", "10"))


async def main() -> None:
    redis = Redis.from_url(BENCH_REDIS_URL)
    await redis.flushdb()
    store = BoardMessageStore(redis, ttl_seconds=300, max_live=10_000)
    for index in range(MESSAGES):
        await store.add(f"benchmark message {index} " + "lorem ipsum " * 5)
    await redis.aclose()

    with server_process() as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            password = "benchmark password"
            if (await client.get("/board/register")).status_code == 200:
                await post_form(
                    client,
                    "/board/register",
                    {"username": "bench", "password": password, "password_confirm": password},
                )
            else:  # the bench database kept the owner of an earlier run
                await post_form(client, "/board/login", {"username": "bench", "password": password})
            listing = await client.get("/board/messages")
            assert listing.text.count('class="list-group-item') == MESSAGES, "seeding failed"

            async def list_messages() -> bool:
                return (await client.get("/board/messages")).status_code == 200

            async def live() -> bool:
                return (await client.get("/health/live")).status_code == 200

            baseline = await drive("GET /health/live (baseline)", live, duration=DURATION)
            measured = await drive(
                f"GET /board/messages ({MESSAGES} live)", list_messages, duration=DURATION
            )
    print_table("Board message list", [baseline, measured])


if __name__ == "__main__":
    asyncio.run(main())
