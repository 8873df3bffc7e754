"""The messenger on the embedded default: SQLite, the in-process Redis stand-in and the
in-memory Socket.IO manager, with no external service at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.asgi import create_asgi
from tests.accounts.api import data_url, image_bytes, register
from tests.messenger.api import direct_chat, send_text
from tests.messenger.sockets import connect
from tests.support import LiveServer, free_port, make_settings


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'embedded.db'}",
        redis_url=None,
        # No grace window, so the second use of a refresh token below is reuse at once.
        refresh_reuse_grace_seconds=0,
    )
    assert settings.embedded
    server = LiveServer(create_asgi(settings), free_port()).start()
    yield server
    server.stop()


async def test_embedded_run_serves_chats_history_and_live_delivery(
    embedded_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=embedded_server.url, timeout=20) as client:
        alice = await register(client)
        bob = await register(client, name="Bob")
        chat = await direct_chat(client, alice, bob)
        b = await connect(embedded_server.url, bob.access_token)
        try:
            sent = [await send_text(client, alice, chat["id"], f"m{i}") for i in range(3)]
            await b.wait_for("message:new", id=sent[-1]["id"])
            page = await client.get(
                f"/api/v1/chats/{chat['id']}/messages",
                headers=bob.headers,
                params={"limit": 2, "before": sent[-1]["id"]},
            )
            assert [m["text"] for m in page.json()["items"]] == ["m1", "m0"]
            [listed] = (await client.get("/api/v1/chats", headers=bob.headers)).json()
            assert listed["unread_count"] == 3
            read = await client.post(
                f"/api/v1/chats/{chat['id']}/read",
                headers=bob.headers,
                json={"message_id": sent[1]["id"]},
            )
            assert read.json()["unread_count"] == 1
            avatar = await client.put(
                "/api/v1/users/me/avatar",
                headers=bob.headers,
                json={"image": data_url(image_bytes())},
            )
            assert avatar.status_code == 200
            reused = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token}
            )
            assert reused.status_code == 200
            assert (
                await client.post(
                    "/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token}
                )
            ).status_code == 401
        finally:
            await b.close()
