"""Bearer authentication for every domain that serves signed-in messenger users.

Use ``middleware=[bearer_auth]`` and ``security=BEARER_SECURITY`` on a controller; the
handlers then find the :class:`User` on ``request.user``. The user is loaded through the
request's own database session, the one the handler's ``db_session`` dependency gets.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.middleware.base import DefineMiddleware

from app.domain.accounts.models import User
from app.lib.auth import BearerAuthenticationMiddleware

BEARER_SECURITY: list[dict[str, list[str]]] = [{"BearerToken": []}]


async def load_user(connection: ASGIConnection[Any, Any, Any, Any], user_id: UUID) -> User | None:
    """The token's user, or None when the account does not exist or was deleted."""
    state = connection.app.state
    session = state.db_config.provide_session(state, connection.scope)
    user = await session.get(User, user_id)
    return user if user is not None and not user.is_deleted else None


bearer_auth = DefineMiddleware(BearerAuthenticationMiddleware, load_user=load_user)
