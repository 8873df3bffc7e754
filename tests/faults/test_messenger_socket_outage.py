"""PostgreSQL down under a connected Socket.IO client: ``message:send`` is acknowledged at
once with a 503 problem, no task exception escapes, and sending works again afterwards."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from app.asgi import create_asgi
from app.lib.db import upgrade_database
from tests.accounts.api import register
from tests.faults.conftest import PrivatePostgres
from tests.messenger.api import direct_chat
from tests.messenger.sockets import connect
from tests.support import LiveServer, free_port, make_settings


async def test_message_send_with_postgres_down_is_acknowledged_with_a_503_problem(
    private_postgres: PrivatePostgres,
    migrated_database: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(database_url=private_postgres.url)
    await asyncio.to_thread(upgrade_database, settings)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            alice = await register(http)
            bob = await register(http, name="Bob")
            chat = await direct_chat(http, alice, bob)
            socket = await connect(server.url, alice.access_token)
            try:
                private_postgres.stop()
                for text in ("while the database is down", "and again"):
                    ack = await socket.client.call(
                        "message:send", {"chat_id": chat["id"], "text": text}, timeout=60
                    )
                    problem = ack["error"]
                    assert problem["status"] == 503, ack
                    assert problem["title"] == "Service unavailable"
                    assert problem["retry_after"] == 5
                typing = await socket.client.call("typing", {"chat_id": chat["id"]}, timeout=60)
                assert typing["error"]["status"] == 503

                private_postgres.start()
                deadline = asyncio.get_running_loop().time() + 120
                while True:
                    ack = await socket.client.call(
                        "message:send", {"chat_id": chat["id"], "text": "back"}, timeout=60
                    )
                    if "id" in ack:
                        break
                    assert ack["error"]["status"] == 503
                    assert asyncio.get_running_loop().time() < deadline, ack
                    await asyncio.sleep(0.5)
                assert ack["text"] == "back"
            finally:
                await socket.close()
    finally:
        server.stop()
    assert "Task exception was never retrieved" not in caplog.text
    assert "while the database is down" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "message" in r.name]
