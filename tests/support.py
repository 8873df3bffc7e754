"""Test support shared by every domain's tests: a real uvicorn server in a thread, service
checks, state reset between tests and small helpers for forms."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from litestar import Litestar
from litestar.types import ASGIApp

from app.config import Settings

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The one knob for how long the suite waits for something to start (a server, a process, a
# private PostgreSQL): generous, because CI machines can be loaded far beyond their cores.
READY_SECONDS = float(os.environ.get("TEST_READY_SECONDS", "240"))
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "database_url": TEST_DATABASE_URL,
        "redis_url": TEST_REDIS_URL,
        "log_level": os.environ.get("TEST_LOG_LEVEL", "WARNING"),
        "log_format": "console",
        # The cheapest argon2id there is: the suite registers hundreds of accounts, and the
        # production cost (checked in tests/lib/test_password_hashing.py) would dominate it.
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 1024,
        "password_hash_parallelism": 1,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """The application served by uvicorn on 127.0.0.1, in a thread with its own event loop."""

    app: ASGIApp
    port: int
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            lifespan="on",
            proxy_headers=False,  # forwarded headers are the app's to judge (app/lib/proxies.py)
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + READY_SECONDS
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=15)


def litestar_app(live_server: LiveServer) -> Litestar:
    """The Litestar application inside the served ASGI stack (request ids, Socket.IO)."""
    app: Any = live_server.app
    while not isinstance(app, Litestar):
        app = getattr(app, "other_asgi_app", None) or app.app
    return app


async def service_problem(settings: Settings) -> str | None:
    """None when PostgreSQL and Redis answer, else what is wrong."""
    import asyncpg
    from redis.asyncio import Redis

    dsn = settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        connection = await asyncio.wait_for(asyncpg.connect(dsn), 5)
        await connection.close()
    except Exception as exc:
        return f"PostgreSQL at {dsn} does not answer: {exc!r}"
    redis = Redis.from_url(settings.redis_url or "")
    try:
        await asyncio.wait_for(redis.ping(), 5)
    except Exception as exc:
        return f"Redis at {settings.redis_url} does not answer: {exc!r}"
    finally:
        await redis.aclose()
    return None


async def csrf_token(client: httpx.AsyncClient, path: str) -> str:
    """GET a page with a form and return its CSRF token (the cookie lands in the client)."""
    response = await client.get(path)
    match = CSRF_INPUT.search(response.text)
    assert match, f"no CSRF token in {path} (status {response.status_code})"
    return match.group(1)


async def post_form(
    client: httpx.AsyncClient, form_path: str, data: dict[str, str], action: str | None = None
) -> httpx.Response:
    """Submit a form the way a browser does: fetch it, then post it with its CSRF token."""
    token = await csrf_token(client, form_path)
    return await client.post(action or form_path, data={**data, "_csrf_token": token})


class _FakeJServiceHandler(BaseHTTPRequestHandler):
    """jService's /api/random with fresh questions every time (ids from a shared counter)."""

    counter = itertools.count(1)

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        count = max(1, min(100, int((query.get("count") or ["1"])[0] or 1)))
        clues = [
            {
                "id": number,
                "question": f"Question {number}?",
                "answer": f"Answer {number}",
                "created_at": "2022-12-30T18:42:47.295Z",
                "value": 100,
                "category": {"title": "general"},
            }
            for number in (next(self.counter) for _ in range(count))
        ]
        body = json.dumps(clues).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002 - BaseHTTPRequestHandler's
        return


_fake_trivia_url: str | None = None


def local_trivia_upstream() -> str:
    """A jService-format upstream on 127.0.0.1 (one per test process, in a thread), so the
    shared test server never reaches for the internet (Open Trivia DB is the default)."""
    global _fake_trivia_url
    if _fake_trivia_url is None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeJServiceHandler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="fake-jservice", daemon=True).start()
        _fake_trivia_url = f"http://127.0.0.1:{server.server_address[1]}"
    return _fake_trivia_url
