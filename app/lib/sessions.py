"""Server-side sessions in Redis that resist session fixation.

Litestar's backend stores a session under whatever id the cookie names, even one the server
never issued, so an attacker who plants a cookie could share the victim's session after
login. This backend only reuses ids it finds in the store, and issues a fresh id when a
handler asks for rotation (on login).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import Message, ScopeSession

_FRESH_ID = "_quintet_fresh_session_id"
_ROTATE = "_quintet_rotate_session"


def rotate_session(request: Request[Any, Any, Any]) -> None:
    """Give this session a new id when the response is sent (call it on privilege change)."""
    request.scope.setdefault("state", {})[_ROTATE] = True


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
    _backend_class = FixationSafeSessionBackend
