"""The board's paged message list with 1,000 live messages: requests per second and p50/p99
of the first page (the newest BOARD_PAGE_SIZE) and of the last page (the deepest offset).

Baseline, measured in the same run against the same server: GET /health/live, the cost of
the framework and the HTTP stack alone. Run: `python -m tests.bench.board_list`.
BENCH_BOARD_MESSAGES sets how many live messages are seeded (1..10,000, the board's limit),
BENCH_SECONDS how long each operation is driven; BOARD_PAGE_SIZE reaches the server too.
"""

from __future__ import annotations

import asyncio
import math
import os

import httpx
from redis.asyncio import Redis

from app.config import Settings
from app.domain.board.services import BoardMessageStore
from tests.bench.harness import BENCH_REDIS_URL, drive, print_table, server_process
from tests.support import post_form

MESSAGES = int(os.environ.get("BENCH_BOARD_MESSAGES", "1000"))
DURATION = float(os.environ.get("BENCH_SECONDS", "10"))
PAGE_SIZE = Settings.from_env().board_page_size


async def main() -> None:
    redis = Redis.from_url(BENCH_REDIS_URL)
    await redis.flushdb()
    store = BoardMessageStore(redis, ttl_seconds=300, max_live=10_000)
    for index in range(MESSAGES):
        await store.add(f"benchmark message {index} " + "lorem ipsum " * 5)
    await redis.aclose()
    last_page = math.ceil(MESSAGES / PAGE_SIZE)

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
            first = await client.get("/board/messages")
            last = await client.get(f"/board/messages?page={last_page}")
            expected_last = MESSAGES - (last_page - 1) * PAGE_SIZE
            assert first.text.count('class="list-group-item') == min(MESSAGES, PAGE_SIZE), (
                "seeding failed"
            )
            assert last.text.count('class="list-group-item') == expected_last, "seeding failed"
            print(
                f"{MESSAGES} live messages, {PAGE_SIZE} per page: first page "
                f"{len(first.content) / 1024:.1f} KB, page {last_page} "
                f"{len(last.content) / 1024:.1f} KB"
            )

            async def page(path: str) -> bool:
                return (await client.get(path)).status_code == 200

            async def live() -> bool:
                return (await client.get("/health/live")).status_code == 200

            baseline = await drive("GET /health/live (baseline)", live, duration=DURATION)
            newest = await drive(
                f"GET /board/messages (page 1 of {last_page}, {MESSAGES} live)",
                lambda: page("/board/messages"),
                duration=DURATION,
            )
            deepest = await drive(
                f"GET /board/messages?page={last_page} ({MESSAGES} live)",
                lambda: page(f"/board/messages?page={last_page}"),
                duration=DURATION,
            )
    print_table("Board message list", [baseline, newest, deepest])


if __name__ == "__main__":
    asyncio.run(main())
