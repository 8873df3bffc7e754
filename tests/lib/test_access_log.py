"""Seed 003 asks for detailed logs: one access line per request says who asked what and how
it ended (user id, client address, route template, status), and never carries secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.asgi import create_asgi
from app.lib.logging import configure_logging
from tests.support import LiveServer, free_port, make_settings


class AccessLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            self.lines.append(dict(record.msg))


@pytest.fixture
def logged_server(migrated_database: object) -> Iterator[tuple[LiveServer, AccessLines]]:
    settings = make_settings(log_level="INFO")
    server = LiveServer(create_asgi(settings), free_port()).start()
    lines = AccessLines()
    logging.getLogger("app.access").addHandler(lines)
    try:
        yield server, lines
    finally:
        logging.getLogger("app.access").removeHandler(lines)
        server.stop()
        configure_logging(make_settings())


async def test_access_lines_carry_user_route_client_and_status(
    logged_server: tuple[LiveServer, AccessLines],
) -> None:
    server, lines = logged_server
    password = "a long and unusual passphrase 42"
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        registered = await http.post(
            "/api/v1/auth/register",
            json={"phone": "+14155550123", "password": password, "name": "Logan"},
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["access_token"]
        me = await http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        user_id = me.json()["id"]
        other = await http.get(
            f"/api/v1/users/{user_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert other.status_code == 200
        assert (await http.get("/api/v1/users/me")).status_code == 401

    requests = [line for line in lines.lines if line.get("event") == "request"]
    by_path = {(line["path"], line["status"]): line for line in requests}
    mine = by_path[("/api/v1/users/me", 200)]
    assert mine["user_id"] == user_id
    assert mine["client"] == "127.0.0.1"
    assert mine["route"] == "/api/v1/users/me"
    # The template, not the id, so lines group by route.
    by_id = by_path[(f"/api/v1/users/{user_id}", 200)]
    assert by_id["route"] != by_id["path"]
    assert "{" in by_id["route"]
    assert by_id["user_id"] == user_id
    anonymous = by_path[("/api/v1/users/me", 401)]
    assert anonymous.get("user_id") is None
    logged = repr(requests)
    assert password not in logged
    assert token not in logged
