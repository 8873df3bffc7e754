"""Writes in flight per user: one account's parallel writes wait for each other, so that one
client cannot hold the whole database pool.

A write holds a pooled connection from its first statement to its commit, and writes to one
chat queue for the chat's row lock while holding theirs: twenty parallel renames by one
user took all twenty connections of a process and everyone else's requests waited for the
pool. This middleware sits after authentication and before the handler (so before any
connection is checked out) and lets at most ``limit`` writes of one user run at once in
this process; the others wait up to ``wait_seconds``, then get a 429 with Retry-After.
Reads are not limited (they take a connection for one statement).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.lib.errors import TooManyRequestsError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATE_KEY = "user_writes_in_flight"


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
    ``USER_WRITE_WAIT_SECONDS``); place it after the authentication middleware."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        user = scope.get("user")
        if scope.get("method") in SAFE_METHODS or user is None:
            await next_app(scope, receive, send)
            return
        state = scope["litestar_app"].state
        settings = state.settings
        slots: UserWriteSlots | None = state.get(STATE_KEY)
        if slots is None:
            slots = state[STATE_KEY] = UserWriteSlots(settings.user_writes_in_flight)
        await slots.run(
            getattr(user, "id", user),
            settings.user_write_wait_seconds,
            lambda: next_app(scope, receive, send),
        )


user_writes_in_flight = UserWritesInFlight()
