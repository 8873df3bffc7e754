"""The outermost ASGI layer: what every request and response needs, in one place.

One layer rather than four (forwarded headers, security headers, request context, the
Socket.IO dispatcher), because each pure-ASGI layer costs a coroutine and a ``send`` wrapper
per request, and on a cheap route those add up to more than the route itself:

1. the client, scheme and Host as a trusted proxy reported them (:mod:`app.lib.proxies`),
   so everything inside sees the real client;
2. ``/socket.io/`` to the Socket.IO application, everything else (lifespan included) to
   Litestar;
3. for HTTP: a request id bound to the log context and returned in ``X-Request-ID``, the
   browser-security headers on every response (:func:`app.lib.web.security_headers`, a
   routing 404 included), and one access line.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.lib.logging import REQUEST_ID_HEADER, bind_request_id, log_request
from app.lib.proxies import ForwardedHeaders
from app.lib.web import security_headers

SOCKETIO_PATH = "/socket.io"


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, socketio_app: ASGIApp, trusted_proxies: Iterable[str]):
        self.app = app
        self.socketio_app = socketio_app
        self.forwarded = ForwardedHeaders(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind: str = scope["type"]  # lifespan too, which litestar's Scope leaves out
        if kind == "lifespan":
            await self.app(scope, receive, send)
            return
        self.forwarded.apply(scope)
        path = scope["path"]
        if path.startswith(SOCKETIO_PATH) and path[len(SOCKETIO_PATH) : len(SOCKETIO_PATH) + 1] in (
            "",
            "/",
        ):
            target = self.socketio_app
        else:
            target = self.app
        if kind != "http":
            await target(scope, receive, send)
            return
        started = time.perf_counter()
        extra = security_headers(scope)
        extra.append((REQUEST_ID_HEADER, bind_request_id(scope).encode()))
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await target(scope, receive, send_with_headers)
        finally:
            log_request(scope, status, started)
