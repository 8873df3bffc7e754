"""Benchmark: the achievements statistics, fresh after every award, and parallel awards.

Seed once (SQL ``generate_series``, then the same ``PlayerStats`` rebuild as the seed command;
the database is migrated first and its players and awards replaced, other data stays):

    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench_ach \\
        python -m tests.bench.achievements_stats --seed 100000

then run ``BENCH_DATABASE_URL=... python -m tests.bench.achievements_stats``. It serves the
app with uvicorn in its own process and measures through HTTP, reading the server's CPU time
from /proc before and after each measured window:

* ``GET /achievements/stats`` right after an award (there is no cache: every answer is fresh);
* ``GET /players/{id}/achievements``;
* award throughput with 1 writer and with 8 parallel writers, over HTTP and straight through
  the service; the same writers with one shared row upserted in every award (what the global
  version row did) are the baseline;
* the naive way, every row loaded and computed per player in Python (the tests' oracle).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import resource
import statistics
import time
from collections.abc import Callable, Coroutine
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.domain.achievements.models import Achievement, Award, Player
from app.domain.achievements.seed import finish_seed, load_catalogue
from app.domain.achievements.services import AchievementService
from app.lib.db import upgrade_database
from tests.achievements.support import oracle_from_database
from tests.bench.harness import BENCH_DATABASE_URL, cpu_seconds, server_process
from tests.support import make_settings

DATABASE_URL = BENCH_DATABASE_URL
ADMIN_KEY = "bench-admin-key"
FRESH_RUNS = int(os.environ.get("BENCH_FRESH_RUNS", "40"))
READ_RUNS = int(os.environ.get("BENCH_READ_RUNS", "200"))
# 0 skips the naive baseline (at 10M awards it needs several GB of memory).
NAIVE_RUNS = int(os.environ.get("BENCH_NAIVE_RUNS", "1"))
WRITE_SECONDS = float(os.environ.get("BENCH_WRITE_SECONDS", "4"))
WRITERS = 8
HOLD_SECONDS = 0.1

PLAYERS_SQL = """
INSERT INTO achievement_player (id, name, name_key, language, created_at)
SELECT md5('bench-player-' || i)::uuid, 'Bench ' || i, 'bench ' || i,
       CASE WHEN i % 2 = 0 THEN 'en' ELSE 'ru' END, now()
FROM generate_series(1, CAST(:players AS int)) AS i
"""
# Player i holds 5 + i % 11 achievements (10 on average), one every day for one player in
# eight (streaks of 5 to 15 days), every other day for the rest, starting 35-400 days ago.
AWARDS_SQL = """
INSERT INTO achievement_award (player_id, achievement_id, awarded_at)
SELECT md5('bench-player-' || i)::uuid,
       catalogue.ids[1 + (i * 7 + k * 13) % catalogue.n],
       date_trunc('day', now()) - make_interval(days => 400 - i % 365)
         + make_interval(days => CASE WHEN i % 8 = 0 THEN k ELSE 2 * k END)
         + make_interval(secs => (i::bigint * (k + 1) * 7919) % 86400)
FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS i,
     LATERAL generate_series(0, 4 + i % 11) AS k,
     (SELECT array_agg(id ORDER BY id) AS ids, count(*)::int AS n FROM achievement) AS catalogue
"""


async def seed(players: int) -> None:
    """Migrate, replace the players and awards (other domains' data stays), load them."""
    started = time.perf_counter()
    await asyncio.to_thread(upgrade_database, make_settings(database_url=DATABASE_URL))
    engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        await session.execute(text("TRUNCATE achievement_player CASCADE"))
        await load_catalogue(session)
        await session.execute(text(PLAYERS_SQL), {"players": players})
        for first in range(1, players + 1, 100_000):
            last = min(first + 99_999, players)
            await session.execute(text(AWARDS_SQL), {"first": first, "last": last})
            await session.commit()
            print(f"awards of players {first}-{last}: {time.perf_counter() - started:.0f} s")
        loaded = time.perf_counter()
        await finish_seed(session)
    async with engine.connect() as connection:  # the visibility map, for index-only scans
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))
    await engine.dispose()
    print(
        f"seeded {players} players in {time.perf_counter() - started:.0f} s "
        f"(player_stats rebuilt in {time.perf_counter() - loaded:.0f} s)"
    )


# --- measuring -------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def server_pid(url: str) -> int:
    """The uvicorn process serving ``url`` (harness.server_process started it)."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"app.asgi:create_asgi" in argv and port.encode() in argv:
            return int(entry.name)
    raise RuntimeError(f"no server process on port {port}")


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Window:
    """What one measured window cost: wall time, server and client CPU, operations."""

    server: float = 0.0
    client: float = 0.0
    wall: float = 0.0
    operations: int = 0


@contextmanager
def measured(pid: int, window: Window) -> Any:
    server, client, wall = cpu_seconds(pid), client_cpu(), time.perf_counter()
    yield
    window.server += cpu_seconds(pid) - server
    window.client += client_cpu() - client
    window.wall += time.perf_counter() - wall


def report(label: str, samples: list[float], window: Window | None = None) -> None:
    line = (
        f"{label:<58} n={len(samples):<4} p50={percentile(samples, 0.5) * 1000:8.1f} ms"
        f"  p99={percentile(samples, 0.99) * 1000:8.1f} ms"
    )
    if window is not None and samples:
        line += (
            f"  server CPU {window.server / len(samples) * 1000:6.1f} ms/req"
            f"  client CPU {window.client / len(samples) * 1000:5.1f} ms/req"
        )
    print(line)


# --- data for the writers --------------------------------------------------------------------


async def award_plan(count: int) -> list[tuple[UUID, UUID]]:
    """``count`` (player, achievement) pairs not held yet, every one on a different player."""
    engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        catalogue = list((await session.scalars(select(Achievement.id))).all())
        held = await session.execute(
            select(Award.player_id, func.array_agg(Award.achievement_id))
            .where(
                Award.player_id.in_(
                    select(Player.id).order_by(func.random()).limit(count).scalar_subquery()
                )
            )
            .group_by(Award.player_id)
        )
        plan = [
            (player_id, next(a for a in catalogue if a not in set(things)))
            for player_id, things in held
        ]
    await engine.dispose()
    return plan


async def http_writers(url: str, plan: list[tuple[UUID, UUID]], writers: int) -> int:
    """Awards from ``plan`` through POST, ``writers`` at a time, for WRITE_SECONDS."""
    deadline = time.perf_counter() + WRITE_SECONDS
    done = 0
    limits = httpx.Limits(max_connections=writers)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def writer() -> None:
            nonlocal done
            while plan and time.perf_counter() < deadline:
                player_id, achievement_id = plan.pop()
                response = await client.post(
                    f"/api/v1/players/{player_id}/achievements",
                    json={"achievement_id": str(achievement_id)},
                    headers={"X-API-Key": ADMIN_KEY},
                )
                assert response.status_code == 201, response.text
                done += 1

        await asyncio.gather(*(writer() for _ in range(writers)))
    return done


async def service_writers(
    plan: list[tuple[UUID, UUID]], writers: int, shared_row: bool, hold: float
) -> int:
    """The same awards straight through ``AchievementService`` (no HTTP), one transaction
    each; with ``shared_row`` every transaction also upserts one shared row, as the global
    statistics version did; with ``hold`` each transaction waits that long before its
    commit (a slower network or more work per award: the CPU stays idle, so the ratio shows
    only what the writers wait for)."""
    engine = create_async_engine(DATABASE_URL, pool_size=writers)
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE IF NOT EXISTS bench_version (slot int PRIMARY KEY, token text)")
        )
    deadline = time.perf_counter() + WRITE_SECONDS
    done = 0

    async def writer() -> None:
        nonlocal done
        while plan and time.perf_counter() < deadline:
            player_id, achievement_id = plan.pop()
            async with AsyncSession(engine, expire_on_commit=False) as session:
                player = await session.get_one(Player, player_id)
                await AchievementService(session).award_achievement(player, achievement_id, None)
                if shared_row:
                    await session.execute(
                        text(
                            "INSERT INTO bench_version VALUES (1, gen_random_uuid()::text) "
                            "ON CONFLICT (slot) DO UPDATE SET token = excluded.token"
                        )
                    )
                if hold:
                    await session.execute(text("SELECT pg_sleep(:hold)"), {"hold": hold})
                await session.commit()
                done += 1

    await asyncio.gather(*(writer() for _ in range(writers)))
    await engine.dispose()
    return done


def throughput(label: str, pid: int | None, run: Callable[[], Coroutine[Any, Any, int]]) -> float:
    window = Window()
    if pid is None:
        started, cpu = time.perf_counter(), client_cpu()
        window.operations = asyncio.run(run())
        window.wall, window.client = time.perf_counter() - started, client_cpu() - cpu
    else:
        with measured(pid, window):
            window.operations = asyncio.run(run())
    rate = window.operations / window.wall
    per = max(window.operations, 1)
    line = f"{label:<58} {window.operations:5} awards {rate:7.1f}/s"
    if pid is not None:
        line += f"  server CPU {window.server / per * 1000:5.1f} ms/award"
    print(line + f"  client CPU {window.client / per * 1000:5.1f} ms/award")
    return rate


# --- the baseline ----------------------------------------------------------------------------


async def naive_stats() -> dict[str, Any]:
    engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        answer = await oracle_from_database(session)
    await engine.dispose()
    return answer


async def sizes() -> tuple[int, int]:
    engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        players = await session.scalar(select(func.count()).select_from(Player))
        awards = await session.scalar(select(func.count()).select_from(Award))
    await engine.dispose()
    return int(players or 0), int(awards or 0)


def measure() -> None:
    players, awards = asyncio.run(sizes())
    print(f"data set: {players} players, {awards} awards ({DATABASE_URL})")
    if players < 2:
        raise SystemExit("no data: run with --seed 100000 first")
    plan = asyncio.run(award_plan(FRESH_RUNS + 6000))
    env = {"DATABASE_URL": DATABASE_URL, "ADMIN_API_KEY": ADMIN_KEY}
    with server_process(env) as url, httpx.Client(base_url=url, timeout=300) as http:
        pid = server_pid(url)
        first = http.get("/api/v1/achievements/stats", params={"streaks_limit": 1000})
        assert first.status_code == 200, first.text
        body = first.json()
        print(
            f"answer: {len(first.content)} bytes for 1000 streaks; "
            f"{body['seven_day_streaks_total']} players with 7-day streaks"
        )
        fresh: list[float] = []
        window = Window()
        for _ in range(FRESH_RUNS):
            player_id, achievement_id = plan.pop()
            posted = http.post(
                f"/api/v1/players/{player_id}/achievements",
                json={"achievement_id": str(achievement_id)},
                headers={"X-API-Key": ADMIN_KEY},
            )
            assert posted.status_code == 201, posted.text
            with measured(pid, window):
                started = time.perf_counter()
                assert http.get("/api/v1/achievements/stats").status_code == 200
                fresh.append(time.perf_counter() - started)
        report("GET /achievements/stats right after an award (fresh)", fresh, window)
        window = Window()
        with measured(pid, window):
            reads = []
            for player_id, _ in plan[:READ_RUNS]:
                started = time.perf_counter()
                assert http.get(f"/api/v1/players/{player_id}/achievements").is_success
                reads.append(time.perf_counter() - started)
        report("GET /players/{id}/achievements", reads, window)
        window = Window()
        with measured(pid, window):
            health = []
            for _ in range(READ_RUNS):
                started = time.perf_counter()
                assert http.get("/health/live").is_success
                health.append(time.perf_counter() - started)
        report("  reference: GET /health/live", health, window)
        one = throughput("POST award over HTTP, 1 writer", pid, lambda: http_writers(url, plan, 1))
        many = throughput(
            f"POST award over HTTP, {WRITERS} writers",
            pid,
            lambda: http_writers(url, plan, WRITERS),
        )
        print(f"  {WRITERS} writers / 1 writer over HTTP (one uvicorn process): x{many / one:.2f}")
    for hold in (0.0, HOLD_SECONDS):
        rates = {}
        for shared in (False, True):
            for writers in (1, WRITERS):
                label = f"award via the service, {writers} writer(s)" + (
                    ", + one shared row (baseline)" if shared else ""
                )
                rates[shared, writers] = throughput(
                    label + (f", {hold * 1000:.0f} ms held" if hold else ""),
                    None,
                    functools.partial(service_writers, plan, writers, shared, hold),
                )
        print(
            f"  {WRITERS} writers / 1 writer through the service"
            f"{f' ({hold * 1000:.0f} ms held)' if hold else ''}: "
            f"x{rates[False, WRITERS] / rates[False, 1]:.2f}; "
            f"with the shared row: x{rates[True, WRITERS] / rates[True, 1]:.2f}"
        )
    if NAIVE_RUNS == 0:
        return
    naive = []
    for _ in range(NAIVE_RUNS):
        started = time.perf_counter()
        expected = asyncio.run(naive_stats())
        naive.append(time.perf_counter() - started)
    report("baseline: naive, every row loaded and computed in Python", naive)
    with server_process(env) as url, httpx.Client(base_url=url, timeout=300) as http:
        limit = max(len(expected["seven_day_streaks"]), 1)
        body = http.get("/api/v1/achievements/stats", params={"streaks_limit": min(limit, 1000)})
        answer = body.json()
    same = all(answer[key] == expected[key] for key in expected if key != "seven_day_streaks")
    same = same and answer["seven_day_streaks"] == expected["seven_day_streaks"][:1000]
    same = same and answer["seven_day_streaks_total"] == len(expected["seven_day_streaks"])
    print(f"  the naive answer and the served one agree (first 1000 streaks): {same}")
    print(
        "median naive / median fresh: "
        f"x{statistics.median(naive) / max(percentile(fresh, 0.5), 1e-9):.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, metavar="PLAYERS", help="reset and seed, then stop")
    args = parser.parse_args()
    if args.seed:
        asyncio.run(seed(args.seed))
    else:
        measure()


if __name__ == "__main__":
    main()
