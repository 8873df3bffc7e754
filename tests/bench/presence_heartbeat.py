"""The presence heartbeat's cost per replica: every third of PRESENCE_TTL_SECONDS a replica
re-announces each of its connections. Measured on the real Redis for 2,500 connections
(half of messenger_scale's 5,000 on each of its two processes): the application's
``Presence.beat`` (server-side scripts, a few round trips) against the same writes sent as
one pipeline of per-connection commands (what it did before), in the same run.

    python -m tests.bench.presence_heartbeat [--connections 2500] [--beats 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from uuid import UUID, uuid4

from redis.asyncio import Redis

from app.lib.realtime import Presence
from tests.bench.harness import BENCH_REDIS_URL


async def pipelined_beat(presence: Presence, connections: dict[str, UUID]) -> None:
    """The baseline: one command per write, built in Python, sent as one pipeline."""
    redis, ttl, replica = presence.redis, presence.ttl_seconds, presence.replica_id
    now = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(f"presence:replica:{replica}", "1", px=int(ttl * 1000))
        pipe.sadd(Presence.REPLICAS_KEY, replica)
        pipe.delete(f"presence:replica:{replica}:swept")
        pipe.hset(
            f"presence:replica:{replica}:connections",
            mapping={sid: str(user) for sid, user in connections.items()},
        )
        await pipe.execute()
    async with redis.pipeline(transaction=False) as pipe:
        for sid, user_id in connections.items():
            key = f"presence:{user_id}"
            pipe.zadd(key, {f"{replica}:{sid}": now + ttl})
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.expire(key, ttl * 2)
        await pipe.execute()


async def measure(name: str, beat: object, beats: int) -> None:
    started_cpu, started = time.process_time(), time.perf_counter()
    for _ in range(beats):
        await beat()  # type: ignore[operator]
    cpu = (time.process_time() - started_cpu) / beats * 1000
    wall = (time.perf_counter() - started) / beats * 1000
    print(f"{name:<34} {cpu:8.1f} ms CPU/beat {wall:8.1f} ms wall/beat")


async def main(connections: int, beats: int) -> None:
    redis = Redis.from_url(BENCH_REDIS_URL)
    presence = Presence(redis, "bench-" + uuid4().hex, 9)
    live = {uuid4().hex: uuid4() for _ in range(connections)}
    try:
        await presence.beat(live)  # warm: scripts loaded, keys exist
        print(f"{connections} connections, {beats} beats each; load {os.getloadavg()[0]:.1f}")
        await measure("Presence.beat (scripts)", lambda: presence.beat(live), beats)
        await measure("baseline: pipelined commands", lambda: pipelined_beat(presence, live), beats)
    finally:
        await presence.leave()
        async with redis.pipeline(transaction=False) as pipe:
            for user_id in live.values():
                pipe.delete(f"presence:{user_id}")
            await pipe.execute()
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=2500)
    parser.add_argument("--beats", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.connections, arguments.beats))
