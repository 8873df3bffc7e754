"""The embedded default keeps the board across a restart: the in-process Redis stand-in's
data is snapshotted under ./var/ and read back, so live messages and the owner's login
survive (before, a restart lost every message and logged the owner out)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, post_form

# Two cold starts of a process (imports, migrations) and a graceful stop: minutes on a busy
# machine, so the per-test default of 120 s is too tight.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def embedded_app(root: Path) -> Iterator[str]:
    """The app run from ``root`` with no environment at all, as a newcomer runs it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.asgi:create_asgi", "--factory", "--port", str(port)],
        cwd=root,
        env={"PATH": os.environ["PATH"], "HOME": str(root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health/ready", timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"the embedded app did not start:\n{output}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()  # SIGTERM: uvicorn shuts down gracefully, as Ctrl-C does
        process.wait(timeout=60)


async def test_a_restart_keeps_live_messages_and_the_login(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("restart")
    shutil.copytree(REPO / "app", root / "app", ignore=shutil.ignore_patterns("__pycache__"))
    password = "embedded password"
    cookies = httpx.Cookies()
    with embedded_app(root) as url:
        async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as browser:
            registered = await post_form(
                browser,
                "/board/register",
                {"username": "owner", "password": password, "password_confirm": password},
            )
            assert registered.status_code == 303
            posted = await post_form(browser, "/board/messages/new", {"text": "still here"})
            assert posted.status_code == 303
            cookies = browser.cookies
    assert (root / "var" / "redis-standin.json").exists()
    with embedded_app(root) as url:
        async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as browser:
            listing = await browser.get("/board/messages")
            assert listing.status_code == 200  # still logged in
            assert "still here" in listing.text
            ttl = int(listing.text.split('<span class="ttl">', 1)[1].split("<", 1)[0])
            assert 0 < ttl < 300  # the message kept its expiry; it did not start over
            # The session's CSRF binding came back too: the owner can post right away.
            again = await post_form(browser, "/board/messages/new", {"text": "after restart"})
            assert again.status_code == 303
