"""A fake trivia upstream on 127.0.0.1 (jService and Open Trivia DB formats) and a server
that imports from it."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from app.asgi import create_asgi
from app.config import Settings
from tests.support import LiveServer, free_port, make_settings

UPSTREAM_TIMEOUT = 1.0
MAX_IDLE_ROUNDS = 3
HUGE_ID = 2**63 + 5
HUGE_VALUE = 2**40


def clue(number: int) -> dict[str, Any]:
    return {
        "id": number,
        "answer": f"Answer {number}",
        "question": f"Question number {number}?",
        "value": 100 * (number % 5 + 1),
        "airdate": "2001-01-01T12:00:00.000Z",
        "created_at": "2022-12-30T18:42:47.295Z",
        "updated_at": "2022-12-30T18:42:47.295Z",
        "category_id": 7,
        "game_id": 3,
        "invalid_count": None,
        "category": {"id": 7, "title": "science", "clues_count": 5},
    }


@dataclass
class FakeTriviaUpstream:
    """Answers like jService (/api/random) and Open Trivia DB (/api.php).

    mode: ``fresh`` (new ids every time), ``overlap`` (half of every answer repeats the
    previous answer, the other half is new), ``repeat`` (always the same question),
    ``stall`` (never answers in time), ``error`` (HTTP 500), ``malformed`` (not JSON),
    ``wrong_shape`` (JSON, not a list of clues), ``trickle`` (two new questions per answer,
    however many are asked for), ``trickle_then_repeat`` (two new ones, then only repeats),
    ``slow`` (one new question per answer, after a pause), ``empty`` (an empty list),
    ``huge_id`` / ``huge_value`` (numbers wider than the columns), ``redirect`` (302 to
    ``redirect_to``).
    """

    url: str = ""
    mode: str = "fresh"
    requested: list[int] = field(default_factory=list)
    served: list[int] = field(default_factory=list)
    next_id: int = 1000
    previous: list[int] = field(default_factory=list)
    redirect_to: str = ""
    # The connections requests came on (their transports: a closed one is closing).
    connections: list[asyncio.BaseTransport] = field(default_factory=list)

    def reset(self) -> None:
        self.mode = "fresh"
        self.redirect_to = ""
        self.requested.clear()
        self.served.clear()
        self.connections.clear()
        self.previous = []
        self.next_id = 1000

    def _fresh(self, count: int) -> list[int]:
        ids = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        return ids

    def _ids(self, count: int) -> list[int]:
        if self.mode == "repeat":
            return [1]
        if self.mode in ("trickle", "trickle_then_repeat"):
            if self.mode == "trickle_then_repeat" and self.previous:
                return self.previous
            ids = self.previous[: count - 2] + self._fresh(min(count, 2))
            self.previous = ids
            return ids
        if self.mode == "slow":
            return self._fresh(1)
        if self.mode == "empty":
            return []
        if self.mode == "overlap":
            repeated = self.previous[: count // 2]
            ids = repeated + self._fresh(count - len(repeated))
            self.previous = ids
            return ids
        return self._fresh(count)

    def _seen(self, request: web.Request) -> None:
        if request.transport is not None and request.transport not in self.connections:
            self.connections.append(request.transport)

    async def jservice(self, request: web.Request) -> web.StreamResponse:
        self._seen(request)
        count = int(request.query["count"])
        self.requested.append(count)
        failure = await self._failure()
        if failure is not None:
            return failure
        if self.mode == "slow":
            await asyncio.sleep(0.3)
        ids = self._ids(count)
        self.served.extend(ids)
        clues = [clue(number) for number in ids]
        if self.mode == "huge_id":
            clues[-1]["id"] = HUGE_ID
        if self.mode == "huge_value":
            clues[-1]["value"] = HUGE_VALUE
        return web.json_response(clues)

    async def opentdb(self, request: web.Request) -> web.StreamResponse:
        count = int(request.query["amount"])
        self.requested.append(count)
        failure = await self._failure()
        if failure is not None:
            return failure
        ids = self._ids(count)
        self.served.extend(ids)
        results = [
            {
                "type": "multiple",
                "difficulty": "easy",
                "category": "Science &amp; Nature",
                "question": html.escape(f'Which "element" is number {n}?', quote=True),
                "correct_answer": f"Element&#039;s {n}",
                "incorrect_answers": ["a", "b", "c"],
            }
            for n in ids
        ]
        return web.json_response({"response_code": 0, "results": results})

    async def _failure(self) -> web.StreamResponse | None:
        if self.mode == "redirect":
            raise web.HTTPFound(self.redirect_to)
        if self.mode == "stall":
            await asyncio.sleep(UPSTREAM_TIMEOUT * 4)
            return web.json_response([])
        if self.mode == "error":
            return web.Response(status=500, text="upstream exploded")
        if self.mode == "malformed":
            return web.Response(status=200, text="[{not json", content_type="application/json")
        if self.mode == "wrong_shape":
            return web.json_response({"error": "no clues today"})
        return None


@pytest.fixture(scope="module")
async def fake_upstream() -> AsyncIterator[FakeTriviaUpstream]:
    fake = FakeTriviaUpstream()
    app = web.Application()
    app.router.add_get("/api/random", fake.jservice)
    app.router.add_get("/api.php", fake.opentdb)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture
def upstream(fake_upstream: FakeTriviaUpstream) -> FakeTriviaUpstream:
    fake_upstream.reset()
    return fake_upstream


def trivia_settings(migrated_database: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "trivia_timeout_seconds": UPSTREAM_TIMEOUT,
        "trivia_max_idle_rounds": MAX_IDLE_ROUNDS,
        "trivia_max_questions": 100,
        **overrides,
    }
    return make_settings(database_url=migrated_database.database_url, **values)


@pytest.fixture(scope="module")
def jservice_server(
    migrated_database: Settings, fake_upstream: FakeTriviaUpstream
) -> Iterator[LiveServer]:
    settings = trivia_settings(migrated_database, trivia_api_url=fake_upstream.url)
    server = LiveServer(create_asgi(settings), free_port()).start()
    yield server
    server.stop()


@pytest.fixture
async def trivia(
    jservice_server: LiveServer, upstream: FakeTriviaUpstream
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=jservice_server.url, timeout=20) as http:
        yield http
