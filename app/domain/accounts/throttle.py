"""Sign-in throttling that slows a guesser without locking the owner out.

Three counters, all in Redis so every replica shares them:

* per address: a hard limit (429) on attempts from one address, whatever the phone;
* per (phone, address): a hard limit (429) on attempts at one phone from one address;
* per phone alone: failed attempts from anywhere make every further attempt on that phone
  wait longer (doubling from 0.5 s up to LOGIN_MAX_DELAY_SECONDS) but never refuse it, so
  ten wrong passwords from other addresses cannot lock the owner out of their own account.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from app.config import Settings
from app.lib.ratelimit import RateLimiter

FAILURE_WINDOW_SECONDS = 900
FIRST_DELAY_SECONDS = 0.5


class LoginThrottle:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.limit = settings.login_attempts_per_minute
        self.max_delay = settings.login_max_delay_seconds

    @staticmethod
    def _failures_key(phone: str) -> str:
        return f"login-failures:{phone}"

    def delay_for(self, failures: int) -> float:
        """Seconds the next attempt on a phone waits after ``failures`` recent failures."""
        if failures < self.limit:
            return 0.0
        return float(min(FIRST_DELAY_SECONDS * 2 ** min(failures - self.limit, 16), self.max_delay))

    async def before_attempt(self, phone: str, address: str) -> None:
        """Raises 429 past a hard limit; otherwise waits as long as the phone's failures say."""
        await RateLimiter(self.redis, "login-ip", self.limit * 5, 60).hit(address)
        await RateLimiter(self.redis, "login-phone-ip", self.limit, 60).hit(f"{phone}|{address}")
        failures = int(await self.redis.get(self._failures_key(phone)) or 0)
        delay = self.delay_for(failures)
        if delay > 0:
            await asyncio.sleep(delay)

    async def failed(self, phone: str) -> None:
        key = self._failures_key(phone)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, FAILURE_WINDOW_SECONDS)
            await pipe.execute()

    async def succeeded(self, phone: str) -> None:
        await self.redis.delete(self._failures_key(phone))
