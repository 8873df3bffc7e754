"""app/lib/proxies.py on its own: what a request's scope says after the middleware, for
trusted and untrusted peers, X-Forwarded-* and RFC 7239 Forwarded."""

from __future__ import annotations

from typing import Any

import pytest

from app.lib.proxies import ForwardedHeadersMiddleware


async def seen_by_app(
    peer: str, headers: dict[str, str], trusted: tuple[str, ...], kind: str = "http"
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(
            client=scope["client"][0],
            scheme=scope["scheme"],
            host=dict(scope["headers"]).get(b"host", b"").decode(),
        )

    scope = {
        "type": kind,
        "client": (peer, 50000),
        "scheme": "ws" if kind == "websocket" else "http",
        "headers": [(b"host", b"internal:8000")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await ForwardedHeadersMiddleware(app, trusted)(scope, None, None)  # type: ignore[arg-type]
    return seen


XFF = {
    "X-Forwarded-For": "198.51.100.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "quintet.example",
}


async def test_without_trusted_proxies_nothing_is_believed() -> None:
    assert await seen_by_app("127.0.0.1", XFF, ()) == {
        "client": "127.0.0.1",
        "scheme": "http",
        "host": "internal:8000",
    }


async def test_an_untrusted_peer_s_headers_are_ignored() -> None:
    seen = await seen_by_app("203.0.113.9", XFF, ("10.0.0.0/8",))
    assert seen == {"client": "203.0.113.9", "scheme": "http", "host": "internal:8000"}


async def test_a_trusted_proxy_s_x_forwarded_headers_are_applied() -> None:
    seen = await seen_by_app("10.1.2.3", XFF, ("10.0.0.0/8",))
    assert seen == {"client": "198.51.100.7", "scheme": "https", "host": "quintet.example"}


async def test_the_chain_is_read_from_the_right_past_trusted_proxies_only() -> None:
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.5"}
    seen = await seen_by_app("10.1.2.3", headers, ("10.0.0.0/8",))
    assert seen["client"] == "198.51.100.7"  # 6.6.6.6 was written by the client itself


async def test_rfc_7239_forwarded_gives_client_scheme_and_host() -> None:
    headers = {
        "Forwarded": 'for=6.6.6.6;proto=http, for="[2001:db8::7]:4711";proto=https;host=q.example'
    }
    seen = await seen_by_app("::1", headers, ("::1",))
    assert seen == {"client": "2001:db8::7", "scheme": "https", "host": "q.example"}


async def test_a_websocket_through_an_https_proxy_is_wss() -> None:
    seen = await seen_by_app("127.0.0.1", XFF, ("127.0.0.1",), kind="websocket")
    assert seen["scheme"] == "wss"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "not-an-ip", "X-Forwarded-Proto": "gopher"},
        {"X-Forwarded-Host": "evil.example/path with spaces"},
        {"Forwarded": "for=unknown;proto=ftp"},
    ],
)
async def test_malformed_forwarded_values_change_nothing(headers: dict[str, str]) -> None:
    seen = await seen_by_app("127.0.0.1", headers, ("127.0.0.1",))
    assert seen == {"client": "127.0.0.1", "scheme": "http", "host": "internal:8000"}
