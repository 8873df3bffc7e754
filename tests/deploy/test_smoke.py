"""scripts/smoke.py against the real app (the flows that exist on this branch) and against a
server that is not Quintet, so both its green and its red are known to work."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path

import pytest

from app.asgi import create_asgi
from app.config import Settings
from tests.support import LiveServer, free_port, make_settings

SMOKE = Path(__file__).resolve().parents[2] / "scripts" / "smoke.py"
FLOW_ROUTES = ("messenger", "achievements", "trivia", "audio")


def smoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SMOKE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def jservice() -> Iterator[str]:
    """A jService-compatible trivia upstream: a new clue on every /api/random call."""
    clue_ids = count(1)

    class Clues(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            n = next(clue_ids)
            body = json.dumps(
                [
                    {
                        "id": n,
                        "question": f"Smoke question {n}?",
                        "answer": f"answer {n}",
                        "created_at": "2014-02-11T22:47:18.786Z",
                        "category": {"title": "smoke"},
                        "value": 100,
                    }
                ]
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    yield from serve(Clues)


@pytest.fixture
def app_with_trivia_upstream(migrated_database: Settings, jservice: str) -> Iterator[str]:
    server = LiveServer(create_asgi(make_settings(trivia_api_url=jservice)), free_port()).start()
    yield server.url
    server.stop()


@pytest.fixture
def not_quintet() -> Iterator[str]:
    class Answer404(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    yield from serve(Answer404)


def test_smoke_passes_health_docs_and_board_against_the_app(live_server: LiveServer) -> None:
    first = smoke(live_server.url, "--only", "health,docs,board")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "registered the owner" in first.stdout
    # A second run finds the owner registered and logs in instead.
    second = smoke(live_server.url, "--only", "board")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "owner exists, logged in" in second.stdout
    assert "smoke: 1 flows ok, 0 failing" in second.stdout


def test_smoke_passes_every_flow(app_with_trivia_upstream: str) -> None:
    flows = ["health", "docs", "board", *FLOW_ROUTES]
    result = smoke(app_with_trivia_upstream)
    assert result.returncode == 0, result.stdout + result.stderr
    for flow in flows:
        assert f"  ok    {flow}" in result.stdout, result.stdout


def test_smoke_fails_and_names_the_flow_when_the_app_does_not_answer(not_quintet: str) -> None:
    result = smoke(not_quintet, "--only", "health,docs,trivia")
    assert result.returncode == 1
    assert "FAIL  health" in result.stdout
    assert "GET /health/live -> 404" in result.stdout
    assert "3 failing: health, docs, trivia" in result.stdout


def test_make_smoke_runs_the_script_with_the_projects_venv(live_server: LiveServer) -> None:
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "smoke",
            f"URL={live_server.url}",
            "SMOKE_ARGS=--only health",
        ],
        cwd=SMOKE.parents[1],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ".venv/bin/python scripts/smoke.py" in result.stdout
    assert "smoke: 1 flows ok, 0 failing" in result.stdout


def test_make_smoke_without_a_url_says_how_to_call_it() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "smoke"],
        cwd=SMOKE.parents[1],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "usage: make smoke URL=" in result.stderr


def test_smoke_refuses_an_unknown_flow() -> None:
    result = smoke("http://127.0.0.1:9", "--only", "health,teleport")
    assert result.returncode == 2
    assert "teleport" in result.stderr
