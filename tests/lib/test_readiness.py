"""Readiness waits for the migrations: an unmigrated or behind database is not ready."""

from __future__ import annotations

import asyncio

import httpx

from app.asgi import create_asgi
from app.config import Settings
from app.lib.db import upgrade_database
from app.lib.health import migration_revisions
from tests.support import LiveServer, free_port


async def _ready(server: LiveServer) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        return await http.get("/health/ready")


async def test_ready_waits_until_the_schema_is_at_the_head_revision(
    empty_database: Settings,
) -> None:
    heads, known = migration_revisions()
    earlier = sorted(known - heads)[0]
    server = LiveServer(create_asgi(empty_database), free_port()).start()
    try:
        unmigrated = await _ready(server)
        await asyncio.to_thread(upgrade_database, empty_database, earlier)
        behind = await _ready(server)
        await asyncio.to_thread(upgrade_database, empty_database)
        migrated = await _ready(server)
    finally:
        server.stop()

    assert unmigrated.status_code == 503
    assert unmigrated.json()["checks"]["database"].startswith("not migrated")
    assert "make migrate" in unmigrated.json()["checks"]["database"]
    assert unmigrated.json()["checks"]["redis"] == "ok"

    assert behind.status_code == 503
    reason = behind.json()["checks"]["database"]
    assert reason.startswith(f"schema behind: at {earlier}"), reason
    assert all(head in reason for head in heads)

    assert migrated.status_code == 200, migrated.text
    assert migrated.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
