"""Server-side sessions in Redis that resist session fixation, and CSRF tokens bound to them.

Litestar's backend stores a session under whatever id the cookie names, even one the server
never issued, so an attacker who plants a cookie could share the victim's session after
login. This backend only reuses ids it finds in the store, and issues a fresh id when a
handler asks for rotation (on login). It also stores nothing for a visitor with nothing to
keep: an anonymous page view writes no session (Litestar's stores an empty one per view).

CSRF is Litestar's double-submit token (a signed random value in a cookie and in the form)
for anonymous visitors, which needs no server-side state. Once a session begins, the token
in use is written into it and from then on only that token is accepted for the session: an
attacker who plants his own cookie-and-token pair next to the victim's session is refused.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType, ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware, generate_csrf_token
from litestar.middleware.session.base import SessionMiddleware
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import Empty, Message, Receive, Scope, ScopeSession, Send
from litestar.utils.scope.state import ScopeState

from app.lib.errors import ForbiddenError

_FRESH_ID = "_quintet_fresh_session_id"
_ROTATE = "_quintet_rotate_session"
CSRF_SESSION_KEY = "_csrf"


def rotate_session(request: Request[Any, Any, Any]) -> None:
    """Give this session a new id when the response is sent (call it on privilege change)."""
    request.scope.setdefault("state", {})[_ROTATE] = True


def begin_session(request: Request[Any, Any, Any], data: dict[str, Any]) -> None:
    """Start a fresh session (new id) holding ``data``, bound to the CSRF token in use."""
    token = ScopeState.from_scope(request.scope).csrf_token
    request.set_session({**data, CSRF_SESSION_KEY: token if isinstance(token, str) else ""})
    rotate_session(request)


class FixationSafeSessionBackend(ServerSideSessionBackend):
    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        data = await super().load_from_connection(connection)
        if not data and connection.cookies.get(self.config.key) not in (None, "", "null"):
            self._force_fresh_id(connection)
        return data

    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        state = connection.scope.setdefault("state", {})
        if scope_session is Empty or not scope_session:
            # Nothing to keep: store nothing, and clear a session the visitor still holds.
            state.pop(_ROTATE, None)
            if connection.cookies.get(self.config.key) not in (None, "", "null"):
                await super().store_in_message(Empty, message, connection)
            return
        if state.pop(_ROTATE, False):
            old_id = connection.cookies.get(self.config.key)
            if old_id and old_id != "null":
                await self.delete(
                    old_id, store=self.config.get_store_from_app(connection.scope["app"])
                )
            self._force_fresh_id(connection)
        await super().store_in_message(scope_session, message, connection)

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        fresh = connection.scope.get("state", {}).get(_FRESH_ID)
        return fresh if isinstance(fresh, str) else super().get_session_id(connection)

    def _force_fresh_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        connection.scope.setdefault("state", {})[_FRESH_ID] = self.generate_session_id()


@dataclass
class FixationSafeSessionConfig(ServerSideSessionConfig):
    @property
    def middleware(self) -> DefineMiddleware:
        return DefineMiddleware(SessionMiddleware, backend=FixationSafeSessionBackend(config=self))

    async def load_for_error_page(self, _: BaseException, scope: Scope) -> None:
        """An ``after_exception`` hook: a request that failed before reaching a route (a
        404 for an unknown path) never met the session middleware; load the session
        read-only so its error page still knows who is logged in."""
        if scope["type"] != ScopeType.HTTP or "session" in scope:
            return
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        session_id = connection.cookies.get(self.key)
        if not session_id or session_id == "null" or "app" not in scope:
            return
        backend = FixationSafeSessionBackend(config=self)
        try:
            data = await backend.get(session_id, store=self.get_store_from_app(scope["app"]))
        except Exception:  # the store (Redis) is down: that is the error being shown
            return
        if data is not None:
            scope["session"] = backend.deserialize_data(data)


class CsrfRefusedError(ForbiddenError):
    """A form arrived without the token of the page it came from. Handlers may re-render
    the form with what was typed; ``headers`` carry the cookie the fresh token needs."""

    title = "Form expired"
    default_detail = (
        "This form could not be accepted: it did not carry the security code of a page "
        "this site gave you (the page may have been open in another tab when you logged in "
        "or out, or your cookies were cleared). Nothing was changed. Check what you typed "
        "below and send it again."
    )


def session_csrf_token(scope: Scope) -> str | None:
    session = scope.get("session")
    token = session.get(CSRF_SESSION_KEY) if isinstance(session, dict) else None
    return token if isinstance(token, str) and token else None


class SessionBoundCSRFMiddleware(CSRFMiddleware):
    """Litestar's CSRF check, with the token bound to the session once one exists. It must
    run inside the session middleware (it reads the loaded session); only the page router
    has either, so it checks every request it sees."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request: Request[Any, Any, Any] = scope["litestar_app"].request_class(
            scope=scope, receive=receive
        )
        cookie = request.cookies.get(self.config.cookie_name)
        if cookie is not None and self._decode_csrf_token(cookie) is None:
            cookie = None  # not one of ours: replaced below
        bound = session_csrf_token(scope)
        state = ScopeState.from_scope(scope)
        if request.method in self.config.safe_methods:
            token = state.csrf_token = bound or cookie or generate_csrf_token(self.config.secret)
            await self.app(scope, receive, self._sender(send, token, cookie))
            return
        submitted = request.headers.get(self.config.header_name)
        content_type, _ = request.content_type
        if not submitted and content_type in {
            RequestEncodingType.URL_ENCODED,
            RequestEncodingType.MULTI_PART,
        }:
            value = (await request.form()).get("_csrf_token")
            submitted = value if isinstance(value, str) else None
        if submitted and self._accepts(submitted, cookie, bound):
            state.csrf_token = submitted
            await self.app(scope, receive, send)
            return
        fresh = state.csrf_token = bound or cookie or generate_csrf_token(self.config.secret)
        headers = {} if fresh == cookie else {"set-cookie": self._cookie(fresh)}
        raise CsrfRefusedError(CsrfRefusedError.default_detail, headers=headers)

    def _accepts(self, submitted: str, cookie: str | None, bound: str | None) -> bool:
        if bound is not None:
            return secrets.compare_digest(submitted.encode(), bound.encode())
        return cookie is not None and self._csrf_tokens_match(submitted, cookie)

    def _cookie(self, token: str) -> str:
        return Cookie(
            key=self.config.cookie_name,
            value=token,
            path=self.config.cookie_path,
            secure=self.config.cookie_secure,
            httponly=self.config.cookie_httponly,
            samesite=self.config.cookie_samesite,
            domain=self.config.cookie_domain,
        ).to_header(header="")

    def _sender(self, send: Send, token: str, cookie: str | None) -> Send:
        if token == cookie:
            return send

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", self._cookie(token).encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        return send_with_cookie
