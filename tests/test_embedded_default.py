"""The newcomer's run: no environment at all, SQLite file, in-process Redis stand-in.

The application tree is copied to a temporary folder so the run starts truly fresh (its
SQLite file lands in that folder's var/), then served by uvicorn in a separate process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import READY_SECONDS, free_port, post_form

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def embedded_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fresh")
    shutil.copytree(REPO / "app", root / "app", ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(root)}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.asgi:create_asgi", "--factory", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"the embedded app did not start:\n{output}")
            time.sleep(0.2)
        assert (root / "var" / "quintet.db").exists()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


async def test_embedded_default_serves_home_docs_and_health(embedded_url: str) -> None:
    async with httpx.AsyncClient(base_url=embedded_url) as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/docs/")).status_code == 200
        ready = await client.get("/health/ready")
        assert ready.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_embedded_default_walks_the_board(embedded_url: str) -> None:
    async with httpx.AsyncClient(base_url=embedded_url) as client:
        password = "embedded password"
        registered = await post_form(
            client,
            "/board/register",
            {"username": "owner", "password": password, "password_confirm": password},
        )
        assert registered.status_code == 303
        posted = await post_form(client, "/board/messages/new", {"text": "stored in the stand-in"})
        assert posted.status_code == 303
        listing = await client.get("/board/messages")
        assert "stored in the stand-in" in listing.text
        assert (await client.get("/board/register")).status_code == 403
