"""The achievements statistics SQL on tiny hand-made data sets in the test database.

Players, achievements and awards are inserted as rows; the figures come from the
statistics' own statements (``player_stats_rows``, ``record_award``, the stats service),
and each data set sits on a boundary: a run of 6 against 7 days, two awards on one day, UTC
midnight, a back-dated award joining two runs, ties."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.domain.achievements.models import Achievement, Award, Player, PlayerStats
from app.domain.achievements.services import (
    AchievementStatsService,
    day_number,
    player_stats_rows,
    rebuild_player_stats,
    record_award,
)

START = date(2026, 3, 1)


@pytest.fixture
async def session(migrated_database: Settings) -> AsyncIterator[AsyncSession]:
    engine = create_async_engine(migrated_database.database_url, poolclass=NullPool)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        yield session  # never committed: closing rolls every row back
    await engine.dispose()


def on_day(day: int, hour: int = 12, minute: int = 0) -> datetime:
    """Noon (or ``hour``) UTC of day ``day`` after START."""
    start = datetime(START.year, START.month, START.day, hour, minute, tzinfo=UTC)
    return start + timedelta(days=day)


class World:
    """A few players and achievements, with awards inserted as plain rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.players: dict[str, Player] = {}
        self.names: dict[UUID, str] = {}

    async def player(self, name: str) -> Player:
        player = Player(name=name, name_key=name.casefold(), language="en")
        self.session.add(player)
        await self.session.flush()
        self.session.add(PlayerStats(player_id=player.id))
        self.players[name] = player
        self.names[player.id] = name
        return player

    async def awards(self, player: Player, *moments: datetime, points: int = 1) -> None:
        for moment in moments:
            achievement = Achievement(points=points)
            self.session.add(achievement)
            await self.session.flush()
            self.session.add(
                Award(player_id=player.id, achievement_id=achievement.id, awarded_at=moment)
            )
        await self.session.flush()

    async def computed(self) -> dict[str, dict[str, Any]]:
        """Each player's row as the statistics SQL computes it from the awards."""
        rows = await self.session.execute(player_stats_rows())
        return {self.names[row.player_id]: row._asdict() for row in rows}

    async def kept(self) -> dict[str, dict[str, Any]]:
        rows = await self.session.scalars(select(PlayerStats))
        return {
            self.names[row.player_id]: {
                "player_id": row.player_id,
                "awards": row.awards,
                "points": row.points,
                "last_day": row.last_day,
                "current_run": row.current_run,
                "longest_streak": row.longest_streak,
            }
            for row in rows
        }

    async def rebuild(self) -> None:
        await self.session.execute(rebuild_player_stats(self.session.get_bind().dialect.name))
        self.session.expire_all()


def days(*numbers: int) -> list[datetime]:
    return [on_day(n) for n in numbers]


def figures(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return row["awards"], row["points"], row["current_run"], row["longest_streak"]


async def test_runs_are_consecutive_utc_days(session: AsyncSession) -> None:
    world = World(session)
    three_then_two = await world.player("Three then two")
    await world.awards(three_then_two, *days(0, 1, 2, 4, 5), points=2)
    none = await world.player("None")
    rows = await world.computed()
    assert figures(rows["Three then two"]) == (5, 10, 2, 3)
    assert rows["Three then two"]["last_day"] == day_number(on_day(5))
    assert figures(rows["None"]) == (0, 0, 0, 0)
    assert rows["None"]["last_day"] is None
    assert none.id in {row["player_id"] for row in rows.values()}


async def test_two_awards_on_one_day_are_one_day_of_the_run(session: AsyncSession) -> None:
    world = World(session)
    busy = await world.player("Busy")
    await world.awards(busy, on_day(0), on_day(1, 0, 0), on_day(1, 23, 59), on_day(2))
    assert figures((await world.computed())["Busy"]) == (4, 4, 3, 3)


async def test_utc_midnight_separates_the_days(session: AsyncSession) -> None:
    world = World(session)
    late = await world.player("Late")
    # 23:59 UTC and 00:00 UTC a minute later: two days, one run of 2. 01:30 in Moscow on
    # day 3 is still day 2 in UTC: the same day as the award before it.
    moscow = datetime.fromisoformat("2026-03-04T01:30:00+03:00")
    await world.awards(late, on_day(0, 23, 59), on_day(1, 0, 0), on_day(2, 22), moscow)
    row = (await world.computed())["Late"]
    assert figures(row) == (4, 4, 3, 3)
    assert row["last_day"] == day_number(on_day(2))


async def test_a_gap_day_ends_the_run_and_the_longest_run_is_kept(session: AsyncSession) -> None:
    world = World(session)
    runner = await world.player("Runner")
    await world.awards(runner, *days(*range(7)), *days(8, 9))  # 7 days, a gap, 2 days
    assert figures((await world.computed())["Runner"]) == (9, 9, 2, 7)


async def keep(world: World, player: Player, moments: list[datetime], points: int = 1) -> None:
    """Each award inserted and counted by ``record_award``, as an award request does."""
    for moment in moments:
        await world.awards(player, moment, points=points)
        await record_award(world.session, player.id, points, day_number(moment))
    world.session.expire_all()


async def test_awards_in_order_extend_and_restart_the_run_without_a_rebuild(
    session: AsyncSession,
) -> None:
    world = World(session)
    player = await world.player("In order")
    # Seven days (a second award on day 3), a gap, then two days.
    await keep(world, player, [*days(0, 1, 2, 3), on_day(3, 20), *days(4, 5, 6, 8, 9)], points=3)
    kept = (await world.kept())["In order"]
    assert figures(kept) == (10, 30, 2, 7)
    assert kept == (await world.computed())["In order"]


async def test_a_back_dated_award_joins_two_runs(session: AsyncSession) -> None:
    world = World(session)
    player = await world.player("Back-dated")
    # In this order: days 0-2, then 4-6 (a gap at 3), then 3 back-dated (joining both runs
    # into 7 days), then day 9, then day 1 again at another hour (no change to the runs).
    await keep(world, player, [*days(0, 1, 2, 4, 5, 6, 3, 9), on_day(1, 6)])
    kept = (await world.kept())["Back-dated"]
    assert figures(kept) == (9, 9, 1, 7)
    assert kept == (await world.computed())["Back-dated"]


async def current_stats(world: World) -> Any:
    await world.rebuild()
    return await AchievementStatsService(world.session).current_stats()


def names(world: World, players: list[Any]) -> list[str]:
    return [world.names[player.id] for player in players]


async def test_seven_days_is_a_streak_and_six_is_not(session: AsyncSession) -> None:
    world = World(session)
    await world.awards(await world.player("Six"), *days(*range(6)))
    await world.awards(await world.player("Seven"), *days(*range(10, 17)))
    await world.awards(await world.player("Nine"), *days(*range(20, 29)))
    result = await current_stats(world)
    assert [(s.longest_streak_days, s.player.name) for s in result.seven_day_streaks] == [
        (9, "Nine"),
        (7, "Seven"),
    ]
    assert result.seven_day_streaks_total == 2


async def test_leaders_ties_and_gaps(session: AsyncSession) -> None:
    world = World(session)
    ann, ben, cid, dee = [await world.player(name) for name in ("Ann", "Ben", "Cid", "Dee")]
    await world.awards(ann, *days(0, 1), points=5)  # 2 awards, 10 points
    await world.awards(ben, on_day(0), points=10)  # 1 award, 10 points
    await world.awards(cid, *days(0, 1), points=3)  # 2 awards, 6 points
    await world.awards(dee, on_day(0), points=4)  # 1 award, 4 points
    result = await current_stats(world)
    assert result.most_achievements.count == 2
    assert sorted(names(world, result.most_achievements.players)) == ["Ann", "Cid"]
    assert result.most_points.points == 10
    assert sorted(names(world, result.most_points.players)) == ["Ann", "Ben"]
    assert result.max_points_gap.difference == 6
    assert names(world, result.max_points_gap.players)[1] == "Dee"
    assert result.min_points_gap.difference == 0
    assert sorted(names(world, result.min_points_gap.players)) == ["Ann", "Ben"]


async def test_without_shared_points_the_closest_neighbours_are_the_minimum_gap(
    session: AsyncSession,
) -> None:
    world = World(session)
    for name, points in (("Low", 1), ("Mid", 7), ("High", 9), ("Top", 20)):
        await world.awards(await world.player(name), on_day(0), points=points)
    result = await current_stats(world)
    assert result.min_points_gap.difference == 2
    assert names(world, result.min_points_gap.players) == ["Mid", "High"]
    assert result.max_points_gap.difference == 19
    assert names(world, result.max_points_gap.players) == ["Top", "Low"]


async def test_one_player_has_no_gap_and_nobody_leads_with_nothing(session: AsyncSession) -> None:
    world = World(session)
    await world.player("Alone")
    result = await current_stats(world)
    assert result.most_points.points == 0
    assert result.most_points.players == []
    assert result.max_points_gap is None
    assert result.min_points_gap is None
