"""Helpers for the achievements tests: calls to the real API and the statistics oracle."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import combinations, pairwise
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.domain.achievements.models import Achievement, Award, Player, PlayerStats
from app.domain.achievements.services import player_stats_rows


def admin(settings: Settings) -> dict[str, str]:
    return {"X-API-Key": settings.admin_api_key}


async def create_player(
    client: httpx.AsyncClient, settings: Settings, name: str, language: str = "en"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/players", json={"name": name, "language": language}, headers=admin(settings)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


_things = itertools.count(1)


async def create_achievement(
    client: httpx.AsyncClient,
    settings: Settings,
    points: int,
    *,
    ru: str | None = None,
    en: str | None = "",
) -> dict[str, Any]:
    """An achievement; without names, an English one that no other achievement has."""
    if en == "":
        en = f"Thing {next(_things)}"
    translations: dict[str, Any] = {}
    if ru is not None:
        translations["ru"] = {"name": ru, "description": f"{ru} (описание)"}
    if en is not None:
        translations["en"] = {"name": en, "description": f"{en} (description)"}
    response = await client.post(
        "/api/v1/achievements",
        json={"points": points, "translations": translations},
        headers=admin(settings),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def award(
    client: httpx.AsyncClient,
    settings: Settings,
    player_id: str,
    achievement_id: str,
    awarded_at: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"achievement_id": achievement_id}
    if awarded_at is not None:
        body["awarded_at"] = awarded_at
    return await client.post(
        f"/api/v1/players/{player_id}/achievements", json=body, headers=admin(settings)
    )


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/achievements/stats")
    assert response.status_code == 200, response.text
    figures: dict[str, Any] = response.json()
    return figures


@dataclass(frozen=True)
class OraclePlayer:
    id: UUID
    name: str
    language: str


def oracle_stats(
    players: list[OraclePlayer],
    points: dict[UUID, int],
    awards: list[tuple[UUID, UUID, datetime]],
) -> dict[str, Any]:
    """The statistics computed the obvious way, straight from their definitions."""

    def shown(player: OraclePlayer) -> dict[str, str]:
        return {"id": str(player.id), "name": player.name, "language": player.language}

    count: dict[UUID, int] = defaultdict(int)
    total: dict[UUID, int] = defaultdict(int)
    days: dict[UUID, set[date]] = defaultdict(set)
    for player_id, achievement_id, at in awards:
        count[player_id] += 1
        total[player_id] += points[achievement_id]
        days[player_id].add(at.date())
    by_id = sorted(players, key=lambda p: p.id)
    most_count = max((count[p.id] for p in players), default=0)
    most_points = max((total[p.id] for p in players), default=0)
    result: dict[str, Any] = {
        "most_achievements": {
            "count": most_count,
            "players": [shown(p) for p in by_id if most_count and count[p.id] == most_count],
        },
        "most_points": {
            "points": most_points,
            "players": [shown(p) for p in by_id if most_points and total[p.id] == most_points],
        },
        "max_points_gap": None,
        "min_points_gap": None,
    }
    if len(players) >= 2:
        top = min(players, key=lambda p: (-total[p.id], p.id))
        bottom = min((p for p in players if p != top), key=lambda p: (total[p.id], p.id))
        result["max_points_gap"] = {
            "difference": total[top.id] - total[bottom.id],
            "players": [shown(top), shown(bottom)],
        }
        # The brute-force cross-checks are quadratic: only for the tests' small worlds.
        small = len(players) <= 100
        assert not small or result["max_points_gap"]["difference"] == max(
            abs(total[a.id] - total[b.id]) for a, b in combinations(players, 2)
        )
        ordered = sorted(players, key=lambda p: (total[p.id], p.id))
        pairs = list(pairwise(ordered))
        low, high = min(pairs, key=lambda pair: total[pair[1].id] - total[pair[0].id])
        result["min_points_gap"] = {
            "difference": total[high.id] - total[low.id],
            "players": [shown(low), shown(high)],
        }
        assert not small or result["min_points_gap"]["difference"] == min(
            abs(total[a.id] - total[b.id]) for a, b in combinations(players, 2)
        )
    streaks = []
    for player in players:
        longest = run = 0
        previous: date | None = None
        for day in sorted(days[player.id]):
            run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
            longest = max(longest, run)
            previous = day
        if longest >= 7:
            streaks.append((player, longest))
    streaks.sort(key=lambda item: (-item[1], item[0].id))
    result["seven_day_streaks"] = [
        {"player": shown(p), "longest_streak_days": n} for p, n in streaks
    ]
    result["seven_day_streaks_total"] = len(streaks)
    return result


async def oracle_from_database(session: AsyncSession) -> dict[str, Any]:
    """The naive way: every player and award row into Python, then ``oracle_stats``."""
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
    return oracle_stats(players, points, awards)


async def kept_and_rebuilt(settings: Settings) -> tuple[set[Any], set[Any]]:
    """The ``PlayerStats`` rows the awards kept, and the same computed from the awards."""
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        kept = await session.execute(
            select(
                PlayerStats.player_id,
                PlayerStats.awards,
                PlayerStats.points,
                PlayerStats.last_day,
                PlayerStats.current_run,
                PlayerStats.longest_streak,
            )
        )
        kept_rows = {tuple(row) for row in kept}
        rebuilt_rows = {tuple(row) for row in await session.execute(player_stats_rows())}
    await engine.dispose()
    return kept_rows, rebuilt_rows
