"""Redis client: redis-py asyncio from REDIS_URL, or an in-process stand-in for the embedded run.

The stand-in is fakeredis: the same API as redis-py, key expiry included, so code written
against Redis behaves the same in both runs. Its data lives in the process; the embedded run
snapshots it to ./var/ so a restart keeps it (:class:`EmbeddedRedisSnapshot`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import structlog
from redis.asyncio import BlockingConnectionPool, Redis

from app.config import Settings

logger = structlog.get_logger("app.redis")


def create_redis(settings: Settings, **options: Any) -> Redis:
    if settings.redis_url:
        # A blocking pool of a set size: under a storm of requests a command waits up to
        # REDIS_POOL_TIMEOUT_SECONDS for a free connection instead of failing with "Too many
        # connections" (or opening thousands of them).
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_pool_timeout_seconds,
            health_check_interval=30,
            socket_connect_timeout=5,
            socket_timeout=10,
            retry_on_timeout=True,
            **options,
        )
        return Redis.from_pool(pool)
    from fakeredis import FakeAsyncRedis

    return FakeAsyncRedis(server=_embedded_server(), **options)


_server: Any = None


def _embedded_server() -> Any:
    """One fake server per process, so every client of the embedded run shares its data."""
    global _server
    if _server is None:
        from fakeredis import FakeServer

        _server = FakeServer()
    return _server


async def ping_redis(redis: Redis) -> None:
    await redis.ping()


class EmbeddedRedisSnapshot:
    """Keeps the embedded run's stand-in data across restarts, as a real Redis with
    persistence would: the keys are written to a JSON file next to the SQLite database
    (``./var/redis-standin.json``) every ``interval`` seconds and at shutdown, and read back
    at start-up with their remaining time to live. So a restart keeps the board's live
    messages and the owner's login. Strings, hashes, lists, sets and sorted sets are kept
    (everything the application stores); a key past its expiry is not restored."""

    FILE_NAME = "redis-standin.json"

    def __init__(self, redis: Redis, path: Path, interval: float = 10.0) -> None:
        self.redis = redis
        self.path = path
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_settings(cls, settings: Settings, redis: Redis) -> EmbeddedRedisSnapshot | None:
        """One for the embedded run with a SQLite file; None otherwise."""
        if not settings.embedded or ":///" not in settings.database_url:
            return None
        database = settings.database_url.split(":///", 1)[1]
        if not database or database.startswith(":memory:"):
            return None
        return cls(redis, Path(database).parent / cls.FILE_NAME)

    async def start(self) -> int:
        """Restore the last snapshot, then keep saving; returns how many keys came back."""
        restored = await self.restore()
        self._task = asyncio.create_task(self._keep_saving(), name="redis-standin-snapshot")
        return restored

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.save()

    async def _keep_saving(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.save()
            except Exception:  # a full disk must not stop the app; the next round retries
                logger.warning("redis_standin_snapshot_failed", path=str(self.path), exc_info=True)

    async def save(self) -> int:
        entries = []
        now_ms = time.time() * 1000
        async for key in self.redis.scan_iter(count=1000):
            entry = await self._entry(key, now_ms)
            if entry is not None:
                entries.append(entry)
        payload = json.dumps({"version": 1, "keys": entries})
        await asyncio.to_thread(self._write, payload)
        return len(entries)

    def _write(self, payload: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(payload)
        os.replace(partial, self.path)  # a crash mid-write leaves the previous snapshot

    async def _entry(self, key: bytes, now_ms: float) -> dict[str, Any] | None:
        kind = as_text(await self.redis.type(key))
        ttl = await self.redis.pttl(key)
        if ttl == -2:
            return None
        value: Any
        if kind == "string":
            value = _b64(await self.redis.get(key))
        elif kind == "hash":
            value = {_b64(k): _b64(v) for k, v in (await self.redis.hgetall(key)).items()}
        elif kind == "list":
            value = [_b64(v) for v in await self.redis.lrange(key, 0, -1)]
        elif kind == "set":
            value = [_b64(v) for v in await self.redis.smembers(key)]
        elif kind == "zset":
            scored: list[Any] = await self.redis.zrange(key, 0, -1, withscores=True)
            value = [[_b64(member), score] for member, score in scored]
        else:
            return None
        expires_at = now_ms + ttl if ttl > 0 else None
        return {"key": _b64(key), "type": kind, "expires_at_ms": expires_at, "value": value}

    async def restore(self) -> int:
        try:
            text = await asyncio.to_thread(self.path.read_text)
        except FileNotFoundError:
            return 0
        try:
            entries = json.loads(text)["keys"]
        except (ValueError, KeyError, TypeError):
            logger.warning("redis_standin_snapshot_unreadable", path=str(self.path))
            return 0
        now_ms = time.time() * 1000
        restored = 0
        for entry in entries:
            expires_at = entry.get("expires_at_ms")
            if expires_at is not None and expires_at <= now_ms:
                continue
            key, kind, value = _unb64(entry["key"]), entry["type"], entry["value"]
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if kind == "string":
                    pipe.set(key, _unb64(value))
                elif kind == "hash" and value:
                    pipe.hset(key, mapping={_unb64(k): _unb64(v) for k, v in value.items()})
                elif kind == "list" and value:
                    pipe.rpush(key, *(_unb64(v) for v in value))
                elif kind == "set" and value:
                    pipe.sadd(key, *(_unb64(v) for v in value))
                elif kind == "zset" and value:
                    pipe.zadd(key, {_unb64(m): float(s) for m, s in value})
                if expires_at is not None:
                    pipe.pexpireat(key, int(expires_at))
                await pipe.execute()
            restored += 1
        logger.info("redis_standin_restored", keys=restored, path=str(self.path))
        return restored


def as_text(value: bytes | str) -> str:
    """A reply of the shared client (bytes: it does not decode, since sessions, SAQ and the
    snapshot store binary values) as text, for the keys and fields that are text."""
    return value.decode() if isinstance(value, bytes) else value


def _b64(value: bytes | str | None) -> str:
    raw = value.encode() if isinstance(value, str) else value or b""
    return base64.b64encode(raw).decode("ascii")


def _unb64(value: str) -> bytes:
    return base64.b64decode(value)
