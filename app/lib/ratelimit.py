"""Fixed-window rate limits in Redis, shared by every replica."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

from redis.asyncio import Redis

from app.lib.errors import TooManyRequestsError


@dataclass(slots=True)
class _Allowance:
    """Attempts this process reserved in Redis and has not used yet, until the window ends."""

    left: int
    until: float


# Per Redis client (one per application), so that a new application starts afresh.
_allowances: weakref.WeakKeyDictionary[Redis, dict[str, _Allowance]] = weakref.WeakKeyDictionary()


class RateLimiter:
    """``limit`` attempts per ``window_seconds`` per subject, counted in Redis.

    With ``reserve`` above 1 (for limits hit on every message), a process takes that many
    attempts from the shared count in one round trip and spends them locally until the
    window ends: the limit still holds across replicas (Redis never grants more than
    ``limit`` in a window), but a replica can hold up to ``reserve - 1`` attempts it does
    not use, which the subject's other replicas then cannot spend in that window."""

    def __init__(
        self, redis: Redis, name: str, limit: int, window_seconds: int, *, reserve: int = 1
    ) -> None:
        self.redis = redis
        self.name = name
        self.limit = limit
        self.window_seconds = window_seconds
        self.reserve = max(1, reserve)

    async def hit(self, subject: str) -> None:
        """Count one attempt by ``subject``; raise 429 with Retry-After past the limit."""
        key = f"ratelimit:{self.name}:{subject}"
        local = _allowances.setdefault(self.redis, {}) if self.reserve > 1 else None
        if local is not None:
            allowance = local.get(key)
            if allowance is not None and allowance.left > 0 and allowance.until > time.monotonic():
                allowance.left -= 1
                return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, self.reserve)
            pipe.expire(key, self.window_seconds, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
        granted = min(self.reserve, self.limit - (count - self.reserve))
        if granted <= 0:
            retry_after = max(int(ttl), 1)
            raise TooManyRequestsError(
                f"Too many attempts; try again in {retry_after} seconds.",
                headers={"Retry-After": str(retry_after)},
            )
        if local is not None:
            local[key] = _Allowance(granted - 1, time.monotonic() + max(int(ttl), 1))

    async def reset(self, subject: str) -> None:
        key = f"ratelimit:{self.name}:{subject}"
        _allowances.get(self.redis, {}).pop(key, None)
        await self.redis.delete(key)
