"""Fixtures the messenger tests share: the Socket.IO clients a test opens (closed after
it) and the SQL statements the live server runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.messenger.sockets import SocketUser
from tests.support import LiveServer, litestar_app


@pytest.fixture
async def sockets() -> AsyncIterator[list[SocketUser]]:
    opened: list[SocketUser] = []
    yield opened
    for user in opened:
        await user.close()


@pytest.fixture
def statements(live_server: LiveServer) -> Iterator[list[str]]:
    """Every SQL statement the server runs while the test is in this fixture."""
    engine = litestar_app(live_server).state.db_config.get_engine().sync_engine
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)
