"""Bodies a JSON decoder cannot take apart are the client's mistake: 400, never a 500."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from app.config import DEV_ADMIN_API_KEY
from app.lib.bodies import TOO_DEEP
from tests.accounts.api import register

DEEP_BODY = "[" * 1000  # 1 KB: far past the decoder's recursion limit

NAMED_ROUTES = ["/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/questions"]


def _concrete(path: str) -> str:
    """A schema path with every {parameter} filled in (a UUID fits every id we use)."""
    return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000001", path)


@pytest.mark.parametrize("path", [*NAMED_ROUTES, "/api/v1/audio/users"])
async def test_deeply_nested_json_is_a_400_problem(
    client: httpx.AsyncClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = await client.post(
            path, content=DEEP_BODY, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == TOO_DEEP
    assert "Traceback" not in caplog.text
    assert "RecursionError" not in caplog.text


async def test_no_json_operation_answers_a_deep_body_with_a_500(
    client: httpx.AsyncClient,
) -> None:
    """Every operation of the schema that takes a JSON body, with credentials that pass its
    guard (admin key, a bearer token), so the body is really read."""
    account = await register(client)
    schema = (await client.get("/docs/openapi.json")).json()
    headers = {
        "content-type": "application/json",
        "X-API-Key": DEV_ADMIN_API_KEY,
        **account.headers,
    }
    tried = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if method not in ("post", "put", "patch") or "application/json" not in content:
                continue
            response = await client.request(
                method.upper(), _concrete(path), content=DEEP_BODY, headers=headers
            )
            tried.append(f"{method} {path}")
            assert 400 <= response.status_code < 500, (method, path, response.text)
    assert len(tried) >= 8, tried


async def test_only_a_request_that_announces_a_body_gets_the_body_deadline() -> None:
    """A GET has nothing to trickle: the server's own receive goes through untouched (no
    wrapper to enter on every probe); a body, sized or chunked, is timed."""
    from app.lib.bodies import BodyDeadlineMiddleware

    middleware = BodyDeadlineMiddleware(base_seconds=20, min_rate=500)
    passed_on: list[object] = []

    async def app(scope: object, receive: object, send: object) -> None:
        passed_on.append(receive)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: object) -> None:
        return None

    for headers, timed in [
        ([], False),
        ([(b"content-length", b"0")], False),
        ([(b"content-length", b"5")], True),
        ([(b"transfer-encoding", b"chunked")], True),
    ]:
        scope = {"type": "http", "method": "GET", "headers": headers}
        await middleware.handle(scope, receive, send, app)  # type: ignore[arg-type]
        assert (passed_on[-1] is not receive) == timed, headers
