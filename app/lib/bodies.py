"""A deadline on request bodies, so a client trickling its body cannot hold a request open.

uvicorn has no body timeout of its own. The rule is Apache's ``mod_reqtimeout``
(``body=20,MinRate=500``): the body must start arriving within ``base`` seconds of the
application asking for it, and every ``min_rate`` bytes received buys one more second. A
20 MB upload over a slow link is fine; a body sent a byte at a time is cut off with 408.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import SerializationException
from litestar.middleware import ASGIMiddleware

from app.lib.errors import InvalidInputError, RequestTimeoutError, plain_validation_message

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send


class BodyDeadlineMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, base_seconds: float, min_rate: int) -> None:
        self.base_seconds = base_seconds
        self.min_rate = min_rate

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        await next_app(scope, self.deadline_receive(receive), send)

    def deadline_receive(self, receive: Receive) -> Receive:
        loop = asyncio.get_running_loop()
        started: float | None = None
        received = 0
        body_done = False

        async def timed_receive() -> ReceiveMessage:
            nonlocal started, received, body_done
            if body_done:  # after the body: only the disconnect is left to wait for
                return await receive()
            if started is None:
                started = loop.time()
            allowed = self.base_seconds + received / self.min_rate
            remaining = started + allowed - loop.time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.0))
            except TimeoutError:
                raise RequestTimeoutError(
                    "The request body arrived too slowly; send it again faster."
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        return timed_receive


class BodyDecodingRequest(Request[Any, Any, Any]):
    """The application's request class: a body nested too deeply to decode (1,000 ``[``
    in a 2 KB body exhaust the decoder's recursion limit) is the client's malformed input,
    answered 400 for every JSON route, rather than a RecursionError and a logged traceback.

    Litestar turns a :class:`SerializationException` raised while reading the body into
    its 400 ``ClientException``, the same path as any other unparsable body.
    """

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise SerializationException(TOO_DEEP) from None

    async def msgpack(self) -> Any:
        try:
            return await super().msgpack()
        except RecursionError:
            raise SerializationException(TOO_DEEP) from None


TOO_DEEP = "The request body is nested too deeply to read; send a flatter document."


T = TypeVar("T")
_ERROR_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


def decode_strictly(body: bytes, into: type[T]) -> T:
    """A body Litestar accepted, decoded once more without coercion.

    Litestar converts bodies leniently (``"3"`` and ``2.0`` become the integer 3); where the
    schema says integer, only a JSON integer is one. The error names the field and says
    what is wrong in plain words, as Litestar's own validation errors do.
    """
    try:
        return msgspec.json.decode(body, type=into, strict=True)
    except msgspec.ValidationError as exc:
        path = _ERROR_PATH.search(str(exc))
        field = path[1] if path and path[1] else None
        message = plain_validation_message(str(exc))
        raise InvalidInputError(
            f"{field}: {message}" if field else message,
            errors=[{"field": field, "message": message}],
        ) from exc
