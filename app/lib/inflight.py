"""Writes in flight per user: one account's parallel writes wait for each other, so that one
client cannot hold the whole database pool.

A write holds a pooled connection from its first statement to its commit, and writes to one
chat queue for the chat's row lock while holding theirs: twenty parallel renames by one
user took all twenty connections of a process and everyone else's requests waited for the
pool. This application-wide middleware sits before authentication (which reads the account
of a write through the request's session, and so checks out a connection) and, on the routes
that ask for it with the route option ``opt=LIMIT_USER_WRITES``, lets at most ``limit``
writes of one user run at once in this process; the others wait up to ``wait_seconds`` holding nothing,
then get a 429 with Retry-After. The user is the subject of a valid access token (verified
once per process and remembered); a request without one goes on to be refused by the
authentication. Reads are not limited (they take a connection for one statement).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.lib.auth import bearer_token, decode_access_claims
from app.lib.errors import AppError, TooManyRequestsError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATE_KEY = "user_writes_in_flight"
LIMIT_USER_WRITES_KEY = "limit_user_writes"
LIMIT_USER_WRITES: dict[str, Any] = {LIMIT_USER_WRITES_KEY: True}


@dataclass
class _Slots:
    semaphore: asyncio.Semaphore
    holders: int = 0


@dataclass
class UserWriteSlots:
    """The per-user semaphores of one application; a user's entry goes when idle."""

    limit: int
    slots: dict[Any, _Slots] = field(default_factory=dict)

    async def run(self, user_id: Any, wait_seconds: float, call: Any) -> None:
        slots = self.slots.setdefault(user_id, _Slots(asyncio.Semaphore(self.limit)))
        slots.holders += 1
        try:
            try:
                await asyncio.wait_for(slots.semaphore.acquire(), wait_seconds)
            except TimeoutError:
                retry_after = max(1, round(wait_seconds))
                raise TooManyRequestsError(
                    f"You have {self.limit} changes in progress already; "
                    f"try again in {retry_after} seconds.",
                    headers={"Retry-After": str(retry_after)},
                ) from None
            try:
                await call()
            finally:
                slots.semaphore.release()
        finally:
            slots.holders -= 1
            if not slots.holders:
                del self.slots[user_id]


class UserWritesInFlight(ASGIMiddleware):
    """Limits a signed-in user's concurrent writes (``USER_WRITES_IN_FLIGHT``,
    ``USER_WRITE_WAIT_SECONDS``) on the routes with :data:`LIMIT_USER_WRITES`; place it
    before the authentication middleware."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get("method") in SAFE_METHODS or not scope["route_handler"].opt.get(
            LIMIT_USER_WRITES_KEY
        ):
            await next_app(scope, receive, send)
            return
        state = scope["litestar_app"].state
        settings = state.settings
        try:
            token = bearer_token(Headers.from_scope(scope).get("authorization"))
            user_id = decode_access_claims(settings.secret_key, token).user_id
        except AppError:  # the authentication answers it
            await next_app(scope, receive, send)
            return
        slots: UserWriteSlots | None = state.get(STATE_KEY)
        if slots is None:
            slots = state[STATE_KEY] = UserWriteSlots(settings.user_writes_in_flight)
        await slots.run(
            user_id, settings.user_write_wait_seconds, lambda: next_app(scope, receive, send)
        )


user_writes_in_flight = UserWritesInFlight()
