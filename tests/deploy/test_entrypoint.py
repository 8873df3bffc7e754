"""docker/entrypoint.sh and docker/healthcheck.py run here as the image runs them: the same
commands from the repository root (the image's /app), with the project's virtualenv on PATH
as /opt/venv is in the image."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.support import READY_SECONDS, TEST_DATABASE_URL, TEST_REDIS_URL, free_port, post_form

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
HEALTHCHECK = REPO / "docker" / "healthcheck.py"

pytestmark = pytest.mark.slow


def container_env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "APP_", "SECRET_", "ADMIN_"))
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        APP_ENV="test",
        DATABASE_URL=TEST_DATABASE_URL,
        REDIS_URL=TEST_REDIS_URL,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)],
        env=container_env(PORT=str(port)),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


UVICORN_DEFAULT_KEEP_ALIVE = 5
# The board's login attempts per client address and minute (app/domain/board/controllers.py).
LOGIN_LIMIT = 10


@pytest.fixture
def api_process(migrated_database: Settings) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = subprocess.Popen(
        [str(ENTRYPOINT), "api"],
        cwd=REPO,
        env=container_env(PORT=str(port), LOG_LEVEL="INFO"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"the api exited with {process.returncode}: {output}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the api did not become ready")
        time.sleep(0.2)
    yield process, port
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def test_api_role_serves_and_stops_cleanly_on_sigterm(
    api_process: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = api_process
    forwarded = httpx.get(
        f"http://127.0.0.1:{port}/health/live",
        headers={"X-Forwarded-Proto": "https", "X-Request-ID": "entrypoint-0001"},
        timeout=5,
    )
    assert forwarded.status_code == 200
    assert forwarded.headers["x-request-id"] == "entrypoint-0001"
    assert "server" not in forwarded.headers  # --no-server-header

    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells why.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    output = process.stdout.read() if process.stdout else ""
    assert "Application shutdown complete" in output


def test_an_idle_keep_alive_connection_outlives_uvicorns_default_timeout(
    api_process: tuple[subprocess.Popen[str], int],
) -> None:
    """A proxy (ingress-nginx: 60 s) reuses idle upstream connections: uvicorn must not
    close one first, as it did after its default 5 s."""
    _, port = api_process
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/health/live")
        assert connection.getresponse().read() == b'{"status":"ok","checks":{}}'
        first_socket = connection.sock
        time.sleep(UVICORN_DEFAULT_KEEP_ALIVE + 1.5)  # idle past uvicorn's default
        connection.request("GET", "/health/live")  # on the same connection
        assert connection.sock is first_socket
        assert connection.getresponse().status == 200
    finally:
        connection.close()


async def test_a_direct_caller_cannot_dodge_the_login_limit_with_x_forwarded_for(
    api_process: tuple[subprocess.Popen[str], int],
) -> None:
    """uvicorn must not believe X-Forwarded-For from whoever reaches the port: with
    ``--forwarded-allow-ips '*'`` every new header value was a new client to the limiter."""
    _, port = api_process
    statuses = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        for attempt in range(LOGIN_LIMIT + 2):
            http.headers["X-Forwarded-For"] = f"203.0.113.{attempt + 1}"
            http.headers["X-Forwarded-Proto"] = "https"
            response = await post_form(
                http, "/board/login", {"username": "nobody", "password": f"wrong {attempt}"}
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
    # Earlier tests of this minute may have used up some of 127.0.0.1's budget already: the
    # point is that the limit is reached at all, at the latest right after it.
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) <= {401}, statuses


def test_healthcheck_reports_the_api_healthy_then_unhealthy_on_a_dead_port(
    api_process: tuple[subprocess.Popen[str], int],
) -> None:
    _, port = api_process
    assert healthcheck(port).returncode == 0
    down = healthcheck(free_port())
    assert down.returncode == 1
    assert "unhealthy" in down.stderr


def test_migrate_role_is_idempotent_on_an_up_to_date_database(
    migrated_database: Settings,
) -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), "migrate"],
        cwd=REPO,
        env=container_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_the_api_with_default_secrets() -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), "api"],
        cwd=REPO,
        env=container_env(APP_ENV="production", PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "refusing to start in production" in result.stdout + result.stderr


def test_any_other_command_is_executed_as_given() -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), "python", "-c", "import sys; print('ran', sys.argv[1:])", "x"],
        cwd=REPO,
        env=container_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "ran ['x']"
