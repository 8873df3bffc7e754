"""Fixed-window rate limits in Redis, shared by every replica."""

from __future__ import annotations

from redis.asyncio import Redis

from app.lib.errors import TooManyRequestsError


class RateLimiter:
    def __init__(self, redis: Redis, name: str, limit: int, window_seconds: int) -> None:
        self.redis = redis
        self.name = name
        self.limit = limit
        self.window_seconds = window_seconds

    async def hit(self, subject: str) -> None:
        """Count one attempt by ``subject``; raise 429 with Retry-After past the limit."""
        key = f"ratelimit:{self.name}:{subject}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window_seconds, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
        if count > self.limit:
            retry_after = max(int(ttl), 1)
            raise TooManyRequestsError(
                f"Too many attempts; try again in {retry_after} seconds.",
                headers={"Retry-After": str(retry_after)},
            )

    async def reset(self, subject: str) -> None:
        await self.redis.delete(f"ratelimit:{self.name}:{subject}")
