"""The trivia importer (seed 004, task 1) against a fake upstream on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.asgi import create_asgi
from app.config import Settings
from app.domain.trivia.models import TriviaQuestion
from app.domain.trivia.sources import derive_question_id
from tests.support import LiveServer, free_port
from tests.trivia.conftest import MAX_IDLE_ROUNDS, FakeTriviaUpstream, clue, trivia_settings

PROBLEM_JSON = "application/problem+json"


async def stored_upstream_ids(settings: Settings) -> list[int]:
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    async with engine.connect() as connection:
        rows = await connection.scalars(
            select(TriviaQuestion.upstream_id).order_by(TriviaQuestion.id)
        )
        ids = list(rows)
    await engine.dispose()
    return ids


async def import_questions(http: httpx.AsyncClient, count: Any) -> httpx.Response:
    return await http.post("/api/v1/questions", json={"questions_num": count})


async def test_first_import_answers_an_empty_object_and_stores_n_questions(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, migrated_database: Settings
) -> None:
    response = await import_questions(trivia, 3)
    assert response.status_code == 200
    assert response.json() == {}
    assert await stored_upstream_ids(migrated_database) == [1000, 1001, 1002]


async def test_import_answers_the_question_saved_last_before_the_request(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream
) -> None:
    await import_questions(trivia, 2)
    response = await import_questions(trivia, 4)
    assert response.status_code == 200
    expected = clue(1001)
    assert response.json() == {
        "id": 1001,
        "question": expected["question"],
        "answer": expected["answer"],
        "created_at": "2022-12-30T18:42:47.295000Z",
        "category": "science",
        "value": expected["value"],
    }
    third = await import_questions(trivia, 1)
    assert third.json()["id"] == 1005


async def test_repeated_questions_are_asked_for_again_until_n_new_are_stored(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, migrated_database: Settings
) -> None:
    await import_questions(trivia, 4)
    upstream.mode = "overlap"
    upstream.previous = [1000, 1001, 1002, 1003]
    response = await import_questions(trivia, 4)
    assert response.status_code == 200
    stored = await stored_upstream_ids(migrated_database)
    assert len(stored) == len(set(stored)) == 8
    # The first answer repeated two stored questions, so the upstream was asked again.
    assert len(upstream.requested) >= 3


async def test_concurrent_imports_never_store_a_question_twice(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, migrated_database: Settings
) -> None:
    upstream.mode = "overlap"
    responses = await asyncio.gather(*(import_questions(trivia, 5) for _ in range(8)))
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    stored = await stored_upstream_ids(migrated_database)
    assert len(stored) == 40
    assert len(set(stored)) == 40
    # The upstream handed the same questions to racing imports; each was stored once.
    assert len(upstream.served) > len(set(upstream.served))


async def test_an_upstream_that_keeps_repeating_itself_gets_a_502_after_k_idle_rounds(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, migrated_database: Settings
) -> None:
    upstream.mode = "repeat"
    assert (await import_questions(trivia, 1)).status_code == 200
    upstream.requested.clear()
    response = await import_questions(trivia, 2)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    detail = response.json()["detail"]
    assert f"sent only questions that are already stored {MAX_IDLE_ROUNDS} times in a row" in (
        detail
    )
    assert "none of the 2 new questions were stored" in detail
    assert response.headers["x-questions-stored"] == "0"
    assert len(upstream.requested) == MAX_IDLE_ROUNDS
    assert await stored_upstream_ids(migrated_database) == [1]


async def test_a_stalled_upstream_gets_a_504(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, migrated_database: Settings
) -> None:
    upstream.mode = "stall"
    response = await import_questions(trivia, 1)
    assert response.status_code == 504
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["status"] == 504
    assert await stored_upstream_ids(migrated_database) == []


@pytest.mark.parametrize("mode", ["error", "malformed", "wrong_shape"])
async def test_a_failing_upstream_gets_a_502(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, mode: str
) -> None:
    upstream.mode = mode
    response = await import_questions(trivia, 2)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["title"] == "Bad gateway"


async def test_an_unreachable_upstream_gets_a_502(migrated_database: Settings) -> None:
    settings = trivia_settings(migrated_database, trivia_api_url=f"http://127.0.0.1:{free_port()}")
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await import_questions(http, 1)
    finally:
        server.stop()
    assert response.status_code == 502
    assert "unreachable" in response.json()["detail"]


@pytest.mark.parametrize("count", [0, -1, 101, "many", 2.5, None, True, "3", 2.0, "2.0"])
async def test_questions_num_outside_1_to_the_maximum_is_422(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, count: Any
) -> None:
    response = await import_questions(trivia, count)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert upstream.requested == []


async def test_a_body_without_questions_num_is_rejected(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream
) -> None:
    missing = await trivia.post("/api/v1/questions", json={})
    assert missing.status_code in (400, 422)
    not_json = await trivia.post(
        "/api/v1/questions", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    assert upstream.requested == []


async def test_list_pages_through_stored_questions_newest_first(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream
) -> None:
    await import_questions(trivia, 5)
    first = (await trivia.get("/api/v1/questions", params={"limit": 2})).json()
    assert first["total"] == 5
    assert [item["id"] for item in first["items"]] == [1004, 1003]
    assert first["items"][0]["source"] == "jservice"
    rest = (await trivia.get("/api/v1/questions", params={"limit": 2, "offset": 4})).json()
    assert [item["id"] for item in rest["items"]] == [1000]
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"offset": 10**30}):
        assert (await trivia.get("/api/v1/questions", params=bad)).status_code in (400, 422)


async def test_open_trivia_db_is_used_without_trivia_api_url_and_decoded(
    migrated_database: Settings, upstream: FakeTriviaUpstream
) -> None:
    settings = trivia_settings(migrated_database, trivia_opentdb_url=upstream.url)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await import_questions(http, 2)).json() == {}
            upstream.mode = "repeat"
            upstream.previous = []
            previous = (await import_questions(http, 1)).json()
            repeated = await import_questions(http, 1)
            listed = (await http.get("/api/v1/questions")).json()
    finally:
        server.stop()
    # One batch is inserted in id order, so the last one saved has the larger derived id.
    number, text = max(
        ((n, f'Which "element" is number {n}?') for n in (1000, 1001)),
        key=lambda pair: derive_question_id(pair[1]),
    )
    assert previous["question"] == text
    assert previous["answer"] == f"Element's {number}"
    assert previous["category"] == "Science & Nature"
    assert previous["id"] == derive_question_id(text)
    assert previous["id"] < 2**53
    # The same question text maps to the same id, so the repeat is refused by the database.
    assert repeated.status_code == 502
    assert listed["total"] == 3
    assert {item["source"] for item in listed["items"]} == {"opentdb"}


async def test_the_upstream_is_asked_for_what_is_missing_only(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream
) -> None:
    await import_questions(trivia, 7)
    assert upstream.requested == [7]


async def test_storing_questions_counts_only_rows_really_inserted(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, migrated_database: Settings
) -> None:
    upstream.mode = "repeat"
    await import_questions(trivia, 1)
    engine = create_async_engine(migrated_database.database_url, poolclass=NullPool)
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(TriviaQuestion))
    await engine.dispose()
    assert count == 1


async def test_the_embedded_sqlite_run_imports_concurrently_without_duplicates(
    tmp_path: Any, upstream: FakeTriviaUpstream
) -> None:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'quintet.db'}",
        trivia_api_url=upstream.url,
        log_level="WARNING",
    )
    upstream.mode = "overlap"
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            responses = await asyncio.gather(*(import_questions(http, 5) for _ in range(4)))
            listed = (await http.get("/api/v1/questions", params={"limit": 100})).json()
    finally:
        server.stop()
    assert [r.status_code for r in responses] == [200] * 4
    ids = [item["id"] for item in listed["items"]]
    assert listed["total"] == len(ids) == len(set(ids)) == 20
