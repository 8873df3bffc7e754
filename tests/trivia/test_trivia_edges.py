"""The trivia importer at its edges: an upstream that trickles, answers nothing, runs out
the deadline, sends numbers wider than the columns or redirects; a strict questions_num."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from app.asgi import create_asgi
from app.config import Settings
from tests.support import LiveServer, free_port
from tests.trivia.conftest import MAX_IDLE_ROUNDS, FakeTriviaUpstream, trivia_settings
from tests.trivia.test_trivia import PROBLEM_JSON, import_questions, stored_upstream_ids


async def test_an_upstream_that_brings_a_few_new_questions_per_answer_is_followed_to_the_end(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, migrated_database: Settings
) -> None:
    # Two new questions per answer: 15 requests for 30, beyond the old fixed 10 rounds.
    upstream.mode = "trickle"
    response = await import_questions(trivia, 30)
    assert response.status_code == 200, response.text
    stored = await stored_upstream_ids(migrated_database)
    assert len(stored) == len(set(stored)) == 30
    assert len(upstream.requested) == 15


async def test_a_failed_import_keeps_what_it_stored_and_says_how_many(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, migrated_database: Settings
) -> None:
    upstream.mode = "trickle_then_repeat"
    response = await import_questions(trivia, 5)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    detail = response.json()["detail"]
    assert "sent only questions that are already stored 3 times in a row" in detail
    assert "stopped after 4 requests" in detail
    assert "2 of 5 new questions were stored and are kept" in detail
    assert response.headers["x-questions-stored"] == "2"
    assert await stored_upstream_ids(migrated_database) == [1000, 1001]


async def test_an_upstream_that_answers_nothing_says_so(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream
) -> None:
    upstream.mode = "empty"
    response = await import_questions(trivia, 3)
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert f"answered with no questions at all {MAX_IDLE_ROUNDS} times in a row" in detail
    assert len(upstream.requested) == MAX_IDLE_ROUNDS


async def test_a_failing_request_after_some_progress_says_what_was_kept(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, migrated_database: Settings
) -> None:
    await import_questions(trivia, 1)
    upstream.mode = "error"
    response = await import_questions(trivia, 2)
    assert response.status_code == 502
    assert response.json()["detail"].endswith("None of the 2 new questions were stored.")
    assert response.headers["x-questions-stored"] == "0"


async def test_the_deadline_ends_a_slow_import_and_says_what_was_kept(
    migrated_database: Settings, upstream: FakeTriviaUpstream
) -> None:
    settings = trivia_settings(
        migrated_database, trivia_api_url=upstream.url, trivia_deadline_seconds=2.0
    )
    upstream.mode = "slow"  # one new question per answer, 0.3 s each
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            response = await import_questions(http, 50)
    finally:
        server.stop()
    assert response.status_code == 504
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    detail = response.json()["detail"]
    assert "took longer than 2 seconds" in detail
    stored = await stored_upstream_ids(migrated_database)
    assert 1 <= len(stored) < 50
    assert f"{len(stored)} of 50 new questions were stored and are kept" in detail
    assert response.headers["x-questions-stored"] == str(len(stored))


@pytest.fixture
async def sqlite_trivia(
    tmp_path: Any, upstream: FakeTriviaUpstream
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'quintet.db'}",
        trivia_api_url=upstream.url,
        log_level="WARNING",
    )
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield http
    finally:
        server.stop()


WIDE_NUMBERS = pytest.mark.parametrize(
    ("mode", "where"), [("huge_id", "$[1].id"), ("huge_value", "$[1].value")]
)


async def assert_wide_number_refused(
    http: httpx.AsyncClient, upstream: FakeTriviaUpstream, mode: str, where: str
) -> None:
    upstream.mode = mode
    response = await import_questions(http, 2)
    assert response.status_code == 502, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    detail = response.json()["detail"]
    assert detail.startswith("The trivia upstream sent data that does not fit what is stored")
    assert where in detail
    listed = (await http.get("/api/v1/questions")).json()
    assert listed["total"] == 0


@WIDE_NUMBERS
async def test_upstream_numbers_wider_than_the_columns_are_502_on_postgresql(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, mode: str, where: str
) -> None:
    await assert_wide_number_refused(trivia, upstream, mode, where)


@WIDE_NUMBERS
async def test_upstream_numbers_wider_than_the_columns_are_502_on_sqlite_alike(
    sqlite_trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, mode: str, where: str
) -> None:
    await assert_wide_number_refused(sqlite_trivia, upstream, mode, where)


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[str, list[str]]]:
    """Another local server (another port) that would answer anything a redirect sent."""
    hits: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response([])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", hits
    await runner.cleanup()


async def test_an_upstream_redirect_is_not_followed(
    trivia: httpx.AsyncClient,
    upstream: FakeTriviaUpstream,
    elsewhere: tuple[str, list[str]],
) -> None:
    url, hits = elsewhere
    upstream.mode = "redirect"
    upstream.redirect_to = f"{url}/api/random?count=2"
    response = await import_questions(trivia, 2)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    detail = response.json()["detail"]
    assert "redirect" in detail
    assert "not followed" in detail
    assert hits == []


async def test_the_list_is_advanced_alchemys_offset_page_with_bounded_parameters(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream
) -> None:
    await import_questions(trivia, 3)
    page = (await trivia.get("/api/v1/questions", params={"limit": 2, "offset": 1})).json()
    assert set(page) == {"items", "limit", "offset", "total"}
    assert (page["limit"], page["offset"], page["total"]) == (2, 1, 3)
    assert [item["id"] for item in page["items"]] == [1001, 1000]
    schema = (await trivia.get("/docs/openapi.json")).json()
    operation = schema["paths"]["/api/v1/questions"]["get"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert answer.endswith("OffsetPagination_app.domain.trivia.schemas.StoredQuestion_")
    bounds = {
        p["name"]: (p["schema"]["minimum"], p["schema"]["maximum"]) for p in operation["parameters"]
    }
    assert bounds == {"limit": (1, 100), "offset": (0, 2**31 - 1)}
