"""The browser-security headers, once for every page (issue 13, across the app)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.asgi import create_asgi
from app.config import Settings
from tests.support import LiveServer, free_port, local_trivia_upstream, make_settings

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates"
PAGES = [
    "/",
    "/board/register",
    "/board/login",
    "/board/messages",  # a redirect to the login
    "/chat",
    "/achievements",
    "/audio",
    "/docs/",
    "/no/such/page",
    "/static/js/board.js",
    "/api/v1/does-not-exist",
]


@pytest.fixture(scope="module")
def behind_proxy(migrated_database: Settings) -> Iterator[LiveServer]:
    settings = make_settings(trivia_api_url=local_trivia_upstream(), trusted_proxies=("127.0.0.1",))
    server = LiveServer(create_asgi(settings), free_port()).start()
    yield server
    server.stop()


@pytest.mark.parametrize("path", PAGES)
async def test_every_response_carries_the_security_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers={"Accept": "text/html"})
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert re.search(r"script-src 'self' 'nonce-[A-Za-z0-9_-]{16,}'", csp)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in response.headers  # plain http
    assert len(response.headers.get_list("content-security-policy")) == 1


async def test_each_response_has_its_own_nonce(client: httpx.AsyncClient) -> None:
    first = (await client.get("/docs/")).headers["content-security-policy"]
    second = (await client.get("/docs/")).headers["content-security-policy"]
    assert first != second


async def test_swagger_ui_s_inline_script_carries_the_nonce(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/")
    nonce = re.search(r"'nonce-([^']+)'", response.headers["content-security-policy"])
    assert nonce
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.text)
    assert inline
    assert all(f'nonce="{nonce.group(1)}"' in attributes for attributes in inline)


def test_no_template_has_an_inline_script_or_handler_without_a_nonce() -> None:
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for attributes in re.findall(r"<script\b([^>]*)>", text):
            assert "src=" in attributes or "csp_nonce()" in attributes, template
        assert not re.search(r"\son[a-z]+\s*=", text), f"{template}: an inline event handler"
        assert not re.search(r"\sstyle\s*=", text), f"{template}: an inline style attribute"
        assert "javascript:" not in text, template


async def test_hsts_only_when_served_over_https(behind_proxy: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=behind_proxy.url, timeout=30) as http:
        over_https = await http.get("/", headers={"X-Forwarded-Proto": "https"})
        assert over_https.headers["strict-transport-security"] == "max-age=31536000"
        over_http = await http.get("/", headers={"X-Forwarded-Proto": "http"})
        assert "strict-transport-security" not in over_http.headers


async def test_an_untrusted_client_cannot_claim_https(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in response.headers
