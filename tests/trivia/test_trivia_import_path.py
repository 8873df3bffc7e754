"""The import's hot path: one statement a round on PostgreSQL, one upstream client per
application, closed with it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.asgi import create_asgi
from app.config import Settings
from tests.support import READY_SECONDS, LiveServer, free_port
from tests.trivia.conftest import FakeTriviaUpstream, trivia_settings


@pytest.fixture
def trivia_statements() -> Iterator[list[str]]:
    """The SQL of every statement any engine of this process sends about trivia questions
    (the live server runs in a thread of this process)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "trivia_question" in statement:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield statements
    event.remove(Engine, "before_cursor_execute", record)


async def test_importing_one_question_is_one_statement_with_the_previous_answer(
    trivia: httpx.AsyncClient, upstream: FakeTriviaUpstream, trivia_statements: list[str]
) -> None:
    first = await trivia.post("/api/v1/questions", json={"questions_num": 1})
    assert first.status_code == 200
    trivia_statements.clear()

    second = await trivia.post("/api/v1/questions", json={"questions_num": 1})

    assert second.status_code == 200
    assert second.json()["id"] == upstream.served[0]
    assert len(trivia_statements) == 1, trivia_statements
    assert trivia_statements[0].lstrip().upper().startswith("WITH")


async def test_the_upstream_connection_is_reused_and_closed_with_the_application(
    migrated_database: Settings, upstream: FakeTriviaUpstream
) -> None:
    settings = trivia_settings(migrated_database, trivia_api_url=upstream.url)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            for _ in range(3):
                response = await http.post("/api/v1/questions", json={"questions_num": 1})
                assert response.status_code == 200
    finally:
        await asyncio.to_thread(server.stop)
    assert len(upstream.connections) == 1, "each import opened a connection of its own"
    deadline = time.monotonic() + READY_SECONDS
    while not all(transport.is_closing() for transport in upstream.connections):
        assert time.monotonic() < deadline, "the upstream connection outlived the application"
        await asyncio.sleep(0.05)
