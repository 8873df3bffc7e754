"""The per-player figures that every award keeps: back-dated and concurrent awards, the
seed, the paged streak list, all checked against the straightforward computation."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.domain.achievements.plugin import seed
from tests.achievements.support import (
    award,
    create_achievement,
    create_player,
    kept_and_rebuilt,
    oracle_from_database,
    stats,
)

WRITERS = 8


def on_day(day: date, hour: int = 12) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


async def oracle(settings: Settings) -> dict[str, Any]:
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        answer = await oracle_from_database(session)
    await engine.dispose()
    return answer


async def test_a_back_dated_award_joins_two_runs_into_one_streak(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    runner = await create_player(client, migrated_database, "Runner")
    start = date(2026, 3, 1)
    for offset in (0, 1, 2, 4, 5, 6, 7):  # 1-3 March, then 5-8 March: runs of 3 and 4
        thing = await create_achievement(client, migrated_database, 1)
        posted = await award(
            client, migrated_database, runner["id"], thing["id"], on_day(start + timedelta(offset))
        )
        assert posted.status_code == 201
    assert (await stats(client))["seven_day_streaks"] == []

    gap = await create_achievement(client, migrated_database, 1)
    posted = await award(
        client, migrated_database, runner["id"], gap["id"], on_day(date(2026, 3, 4), hour=23)
    )
    assert posted.status_code == 201
    result = await stats(client)
    assert [s["longest_streak_days"] for s in result["seven_day_streaks"]] == [8]
    assert result == await oracle(migrated_database)
    kept, rebuilt = await kept_and_rebuilt(migrated_database)
    assert kept == rebuilt


async def test_parallel_awards_are_all_counted(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    busy = await create_player(client, migrated_database, "Busy")
    others = [await create_player(client, migrated_database, f"Other {i}") for i in range(WRITERS)]
    things = [await create_achievement(client, migrated_database, 1 + i) for i in range(WRITERS)]
    today = datetime.now(UTC).date()
    # Eight awards at once to one player on the last eight days, in a shuffled order (so
    # most are back-dated past another), and eight at once to eight players.
    days_ago = [(i * 5) % WRITERS for i in range(WRITERS)]
    to_busy = [
        award(
            client,
            migrated_database,
            busy["id"],
            thing["id"],
            on_day(today - timedelta(days=ago), hour=0) if ago else None,
        )
        for ago, thing in zip(days_ago, things, strict=True)
    ]
    to_others = [
        award(client, migrated_database, player["id"], things[0]["id"]) for player in others
    ]
    answers = await asyncio.gather(*to_busy, *to_others)
    assert [answer.status_code for answer in answers] == [201] * (2 * WRITERS)

    result = await stats(client)
    assert result["most_achievements"]["count"] == WRITERS
    assert result["most_points"]["points"] == sum(1 + i for i in range(WRITERS))
    assert [s["longest_streak_days"] for s in result["seven_day_streaks"]] == [WRITERS]
    assert result == await oracle(migrated_database)
    kept, rebuilt = await kept_and_rebuilt(migrated_database)
    assert kept == rebuilt


async def test_the_streak_list_comes_a_page_at_a_time_with_its_total(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    runners = [await create_player(client, migrated_database, f"Runner {n}") for n in (7, 8, 9)]
    for days, runner in zip((7, 8, 9), runners, strict=True):
        for offset in range(days):
            thing = await create_achievement(client, migrated_database, 1)
            moment = on_day(date(2026, 6, 1) + timedelta(offset))
            assert (
                await award(client, migrated_database, runner["id"], thing["id"], moment)
            ).is_success
    everything = await stats(client)
    assert [s["longest_streak_days"] for s in everything["seven_day_streaks"]] == [9, 8, 7]
    assert everything["seven_day_streaks_total"] == 3

    page = await client.get(
        "/api/v1/achievements/stats", params={"streaks_limit": 1, "streaks_offset": 1}
    )
    assert page.status_code == 200
    assert page.json()["seven_day_streaks"] == [everything["seven_day_streaks"][1]]
    assert page.json()["seven_day_streaks_total"] == 3
    too_many = await client.get("/api/v1/achievements/stats", params={"streaks_limit": 1001})
    assert too_many.status_code in (400, 422)


async def test_the_seed_fills_every_players_figures(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    await seed(migrated_database, 60, 12, 7)
    expected = await oracle(migrated_database)
    assert expected["seven_day_streaks"], "the synthetic data has streaks"
    assert await stats(client) == expected
    kept, rebuilt = await kept_and_rebuilt(migrated_database)
    assert kept == rebuilt
