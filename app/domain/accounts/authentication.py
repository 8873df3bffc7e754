"""Bearer authentication for every domain that serves signed-in messenger users.

:func:`create_bearer_auth` is Litestar's JWT backend for the whole application: every route
needs an access token unless it opts out with ``opt=PUBLIC_ROUTE`` (app/lib/auth.py), and
its handlers find the :class:`User` on ``request.user`` (:func:`load_user` is the backend's
``retrieve_user_handler``) and the token's :class:`AccessClaims` on ``request.auth``.
Controllers for signed-in users say ``security=BEARER_SECURITY`` so that the OpenAPI
document marks their operations with the scheme the backend documents.

Reading the account is most of what an authenticated request costs, so a read (GET, HEAD)
gets a detached copy of a row read a moment ago by this process (:data:`recent_users`),
when there is one. Any other method reads the row afresh through the request's own database
session (the one the handler's ``db_session`` dependency gets), so services may change it
and flush. Every commit in this process that changes a
user ends that user's copy (:func:`_forget_committed_users`); revocation and deletion are
checked on every request anyway (the revoked sessions, before the user is looked at).
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.security.jwt import JWTAuth
from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, make_transient_to_detached

from app.config import Settings
from app.domain.accounts.models import User
from app.lib.auth import (
    ALGORITHM,
    EXCLUDE_FROM_AUTH,
    REQUIRED_CLAIMS,
    AccessClaims,
    BearerTokenMiddleware,
)

BEARER_SCHEME = "BearerToken"
# What the backend's security_requirement is, for the controllers' class attributes.
BEARER_SECURITY: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]
READ_METHODS = frozenset({"GET", "HEAD"})
_CHANGED_USERS_KEY = "accounts_changed_user_ids"


class RecentUsers:
    """Column values of accounts read recently, for at most ``ttl_seconds``.

    A write bumps the user's generation; a read that began before it cannot store what it
    read (it may predate the write), so a copy is never older than the last local commit."""

    def __init__(self, ttl_seconds: float = 5.0, max_entries: int = 50_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[UUID, tuple[float, dict[str, Any]]] = {}
        self._generations: dict[UUID, int] = {}

    def get(self, user_id: UUID) -> dict[str, Any] | None:
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[user_id]
            return None
        return entry[1]

    def generation(self, user_id: UUID) -> int:
        return self._generations.get(user_id, 0)

    def put(self, user_id: UUID, values: dict[str, Any], generation: int) -> None:
        if self.ttl_seconds <= 0 or self._generations.get(user_id, 0) != generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # rare; cheaper than tracking the oldest
        self._entries[user_id] = (time.monotonic() + self.ttl_seconds, values)

    def forget(self, user_id: UUID) -> None:
        self._entries.pop(user_id, None)
        self._generations[user_id] = self._generations.get(user_id, 0) + 1
        if len(self._generations) > self.max_entries:
            self._generations.clear()
            self._entries.clear()  # generations restart at 0: drop what they guarded


recent_users = RecentUsers()


def configure_user_cache(settings: Settings) -> None:
    """Use the lifetime the settings ask for (called by the application factory)."""
    recent_users.ttl_seconds = settings.auth_user_cache_seconds


_USER_COLUMNS = tuple(attribute.key for attribute in inspect(User).column_attrs)
_USER_MANAGER = inspect(User).class_manager


def _column_values(user: User) -> dict[str, Any]:
    loaded = user.__dict__  # a row just read: every column is there
    return {key: loaded[key] for key in _USER_COLUMNS}


def _detached_copy(values: dict[str, Any]) -> User:
    """A detached User built from stored column values, without a query and without a
    session (as a session that loaded it and closed would leave it). A read does not change
    the user; the other methods get one attached to their session (see load_user)."""
    user: User = _USER_MANAGER.new_instance()
    user.__dict__.update(values)  # what loading a row does: committed values, no history
    make_transient_to_detached(user)
    return user


async def load_user(
    claims: AccessClaims, connection: ASGIConnection[Any, Any, Any, Any]
) -> User | None:
    """The token's user, or None when the account does not exist or was deleted."""
    user_id = claims.user_id
    reading = connection.scope.get("method") in READ_METHODS
    if reading and (values := recent_users.get(user_id)) is not None:
        user = _detached_copy(values)
    else:
        state = connection.app.state
        session: AsyncSession = state.db_config.provide_session(state, connection.scope)
        generation = recent_users.generation(user_id)
        found = await session.get(User, user_id)
        if found is None:
            return None
        user = found
        if reading:
            recent_users.put(user_id, _column_values(user), generation)
    return None if user.is_deleted else user


@event.listens_for(Session, "after_flush")
def _note_changed_users(session: Session, _context: Any) -> None:
    changed = {item.id for item in (*session.dirty, *session.deleted) if isinstance(item, User)}
    if changed:
        session.info.setdefault(_CHANGED_USERS_KEY, set()).update(changed)
        for user_id in changed:  # readers that began before this write must not store
            recent_users.forget(user_id)


@event.listens_for(Session, "after_commit")
def _forget_committed_users(session: Session) -> None:
    for user_id in session.info.pop(_CHANGED_USERS_KEY, ()):
        recent_users.forget(user_id)


@event.listens_for(Session, "after_rollback")
def _drop_changed_users(session: Session) -> None:
    session.info.pop(_CHANGED_USERS_KEY, None)


def create_bearer_auth(settings: Settings) -> JWTAuth[User, AccessClaims]:
    """The application's security backend: its middleware goes into the application's
    middleware, its ``openapi_components`` into the OpenAPI document."""
    return JWTAuth[User, AccessClaims](
        token_secret=settings.secret_key,
        retrieve_user_handler=load_user,
        token_cls=AccessClaims,
        authentication_middleware_class=BearerTokenMiddleware,
        algorithm=ALGORITHM,
        require_claims=REQUIRED_CLAIMS,
        exclude_opt_key=EXCLUDE_FROM_AUTH,
        # Litestar's own routes: the static files and the API docs (their opts are not ours).
        exclude=["^/static", "^/docs"],
        # OPTIONS is answered by Litestar itself; HEAD (excluded by default) is a read.
        exclude_http_methods=["OPTIONS"],
        openapi_security_scheme_name=BEARER_SCHEME,
        description="The access_token from /api/v1/auth/login or /register.",
    )
