"""Benchmark: the achievements statistics and a player's achievements on a large data set.

Load the data first (100,000 players and about 1,000,000 awards):

    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/quintet_bench \\
        .venv/bin/litestar --app app.asgi:create_app database upgrade --no-prompt
    DATABASE_URL=... .venv/bin/litestar --app app.asgi:create_app achievements seed \\
        --synthetic-players 100000 --awards-per-player 10

then run ``BENCH_DATABASE_URL=... BENCH_REDIS_URL=redis://127.0.0.1:6379/N
python -m tests.bench.achievements_stats``. It serves the app with uvicorn and measures,
through HTTP, the statistics computed afresh (after a write changed the version), the
statistics served from the cache, and a player's achievements; the baseline, measured in
the same run, is the naive approach: load the rows and compute per player in Python.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.asgi import create_asgi
from app.domain.achievements.models import Achievement, AchievementTranslation, Award, Player
from app.domain.achievements.services import AchievementStatsService, bump_stats_version
from tests.achievements.support import OraclePlayer, oracle_stats
from tests.support import LiveServer, free_port, make_settings

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/quintet_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "5"))
WARM_RUNS = int(os.environ.get("BENCH_WARM_RUNS", "200"))
NAIVE_RUNS = int(os.environ.get("BENCH_NAIVE_RUNS", "3"))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, samples: list[float]) -> None:
    print(
        f"{label:<52} n={len(samples):<4} p50={percentile(samples, 0.5) * 1000:9.1f} ms"
        f"  p99={percentile(samples, 0.99) * 1000:9.1f} ms"
    )


def timed(action: Callable[[], Any], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


async def sizes() -> tuple[int, int, list[Any]]:
    engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        players = await session.scalar(select(func.count()).select_from(Player))
        awards = await session.scalar(select(func.count()).select_from(Award))
        ids = (await session.scalars(select(Player.id).order_by(func.random()).limit(500))).all()
    await engine.dispose()
    return int(players or 0), int(awards or 0), list(ids)


async def bump_version() -> None:
    """What every write does: the next statistics request computes afresh."""
    engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        await bump_stats_version(session)
        await session.commit()
    await engine.dispose()


async def naive_stats() -> dict[str, Any]:
    """The baseline: every player and award row into Python, then compute per player."""
    engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        players = [
            OraclePlayer(row.id, row.name, row.language)
            for row in await session.execute(select(Player.id, Player.name, Player.language))
        ]
        points = {
            row.id: row.points
            for row in await session.execute(select(Achievement.id, Achievement.points))
        }
        awards = [
            (row.player_id, row.achievement_id, row.awarded_at)
            for row in await session.execute(
                select(Award.player_id, Award.achievement_id, Award.awarded_at)
            )
        ]
    await engine.dispose()
    return oracle_stats(players, points, awards)


async def naive_player_achievements(player_id: Any) -> list[Any]:
    """The baseline for one player: load every award with its texts, keep the player's."""
    engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        rows = (
            await session.execute(
                select(Award.player_id, Award.awarded_at, AchievementTranslation.name).join(
                    AchievementTranslation,
                    AchievementTranslation.achievement_id == Award.achievement_id,
                )
            )
        ).all()
    await engine.dispose()
    return [row for row in rows if row.player_id == player_id]


async def sql_compute_only() -> None:
    engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        await AchievementStatsService(session).compute_stats()
    await engine.dispose()


def main() -> None:
    players, awards, sample_ids = asyncio.run(sizes())
    print(f"data set: {players} players, {awards} awards ({DATABASE_URL})")
    if players < 2 or not sample_ids:
        raise SystemExit("no data: run the seed command with --synthetic-players first")
    settings = make_settings(database_url=DATABASE_URL, redis_url=REDIS_URL)
    server = LiveServer(create_asgi(settings), free_port()).start()
    rng = random.Random(7)
    try:
        with httpx.Client(base_url=server.url, timeout=300) as http:
            stats_response = http.get("/api/v1/achievements/stats")
            assert stats_response.status_code == 200
            body = stats_response.json()
            print(
                f"answer: {len(stats_response.content)} bytes, "
                f"{len(body['seven_day_streaks'])} players with 7-day streaks"
            )

            def cold_stats() -> None:
                asyncio.run(bump_version())
                start = time.perf_counter()
                assert http.get("/api/v1/achievements/stats").status_code == 200
                cold.append(time.perf_counter() - start)

            cold: list[float] = []
            for _ in range(COLD_RUNS):
                cold_stats()
            report("GET /achievements/stats, computed afresh (SQL)", cold)
            report(
                "  the two SQL statements alone (no HTTP, no JSON)",
                timed(lambda: asyncio.run(sql_compute_only()), COLD_RUNS),
            )
            report(
                "GET /achievements/stats, cached (version unchanged)",
                timed(lambda: http.get("/api/v1/achievements/stats"), WARM_RUNS),
            )
            report(
                "GET /players/{id}/achievements (SQL, index)",
                timed(
                    lambda: http.get(f"/api/v1/players/{rng.choice(sample_ids)}/achievements"),
                    WARM_RUNS,
                ),
            )
    finally:
        server.stop()
    naive = []
    for _ in range(NAIVE_RUNS):
        start = time.perf_counter()
        expected = asyncio.run(naive_stats())
        naive.append(time.perf_counter() - start)
    report("baseline: stats, rows loaded and computed in Python", naive)
    same = expected["most_points"]["points"] == body["most_points"]["points"] and len(
        expected["seven_day_streaks"]
    ) == len(body["seven_day_streaks"])
    print(f"  baseline and SQL agree on most points and streak count: {same}")
    report(
        "baseline: one player's achievements, filtered in Python",
        timed(lambda: asyncio.run(naive_player_achievements(rng.choice(sample_ids))), NAIVE_RUNS),
    )
    print(
        "median baseline / median fresh SQL: "
        f"x{statistics.median(naive) / max(percentile(cold, 0.5), 1e-9):.1f}"
    )


if __name__ == "__main__":
    main()
