"""The statistics through the real server: edge cases, then random data against an oracle."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.domain.achievements.models import Achievement, Award, Player, PlayerStats
from app.domain.achievements.schemas import TranslationIn, Translations
from app.domain.achievements.services import AchievementService, PlayerService
from tests.achievements.support import (
    OraclePlayer,
    award,
    create_achievement,
    create_player,
    kept_and_rebuilt,
    oracle_stats,
    stats,
)
from tests.support import LiveServer

EMPTY: dict[str, Any] = {
    "most_achievements": {"count": 0, "players": []},
    "most_points": {"points": 0, "players": []},
    "max_points_gap": None,
    "min_points_gap": None,
    "seven_day_streaks": [],
    "seven_day_streaks_total": 0,
}


def shown(player: dict[str, Any]) -> dict[str, Any]:
    return {key: player[key] for key in ("id", "name", "language")}


async def award_on_days(
    client: httpx.AsyncClient,
    settings: Settings,
    player: dict[str, Any],
    moments: list[datetime],
) -> None:
    """One new achievement per moment (a player holds each achievement once)."""
    for moment in moments:
        thing = await create_achievement(client, settings, 1)
        response = await award(client, settings, player["id"], thing["id"], moment.isoformat())
        assert response.status_code == 201, response.text


def days_from(start: date, count: int, hour: int = 12) -> list[datetime]:
    return [
        datetime(start.year, start.month, start.day, hour, tzinfo=UTC) + timedelta(days=i)
        for i in range(count)
    ]


async def test_with_no_players_every_figure_is_empty(client: httpx.AsyncClient) -> None:
    assert await stats(client) == EMPTY


async def test_players_without_awards_lead_nothing_but_count_in_the_gaps(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    first = await create_player(client, migrated_database, "Zero One")
    second = await create_player(client, migrated_database, "Zero Two")
    result = await stats(client)
    assert result["most_achievements"] == {"count": 0, "players": []}
    assert result["max_points_gap"] == {"difference": 0, "players": [shown(first), shown(second)]}
    assert result["min_points_gap"] == {"difference": 0, "players": [shown(first), shown(second)]}


async def test_one_player_leads_alone_and_has_no_pair(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    solo = await create_player(client, migrated_database, "Solo", "ru")
    thing = await create_achievement(client, migrated_database, 7)
    await award(client, migrated_database, solo["id"], thing["id"])
    result = await stats(client)
    assert result["most_achievements"] == {"count": 1, "players": [shown(solo)]}
    assert result["most_points"] == {"points": 7, "players": [shown(solo)]}
    assert result["max_points_gap"] is None
    assert result["min_points_gap"] is None


async def test_ties_list_every_leader_and_pairs_break_ties_by_id(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    ann = await create_player(client, migrated_database, "Ann")
    ben = await create_player(client, migrated_database, "Ben")
    cid = await create_player(client, migrated_database, "Cid")
    dee = await create_player(client, migrated_database, "Dee")
    big = await create_achievement(client, migrated_database, 10)
    small = await create_achievement(client, migrated_database, 3)
    tiny = await create_achievement(client, migrated_database, 1)
    # Ann 10+3 = 13 (2 awards), Ben 10+3 = 13 (2), Cid 10+1 = 11 (2), Dee nothing.
    for player, things in ((ann, (big, small)), (ben, (big, small)), (cid, (big, tiny))):
        for thing in things:
            assert (await award(client, migrated_database, player["id"], thing["id"])).is_success
    result = await stats(client)
    assert result["most_achievements"] == {
        "count": 2,
        "players": [shown(ann), shown(ben), shown(cid)],
    }
    assert result["most_points"] == {"points": 13, "players": [shown(ann), shown(ben)]}
    assert result["max_points_gap"] == {"difference": 13, "players": [shown(ann), shown(dee)]}
    assert result["min_points_gap"] == {"difference": 0, "players": [shown(ann), shown(ben)]}


async def test_a_streak_runs_across_a_month_boundary_in_utc(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    runner = await create_player(client, migrated_database, "Runner")
    # 28 Feb .. 6 Mar 2026 is seven days; the first is given as 1 March 01:30 in Moscow.
    moments = days_from(date(2026, 2, 28), 7)
    moments[0] = datetime.fromisoformat("2026-03-01T01:30:00+03:00")
    await award_on_days(client, migrated_database, runner, moments)
    result = await stats(client)
    assert result["seven_day_streaks"] == [{"player": shown(runner), "longest_streak_days": 7}]


async def test_two_awards_on_one_day_count_as_one_day(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    busy = await create_player(client, migrated_database, "Busy")
    moments = days_from(date(2026, 1, 1), 6)
    moments += [moments[-1].replace(hour=23, minute=59)]  # a second award on day 6
    await award_on_days(client, migrated_database, busy, moments)
    assert (await stats(client))["seven_day_streaks"] == []

    await award_on_days(client, migrated_database, busy, days_from(date(2026, 1, 7), 1, hour=0))
    assert (await stats(client))["seven_day_streaks"] == [
        {"player": shown(busy), "longest_streak_days": 7}
    ]


async def test_a_six_day_run_does_not_count_and_the_longest_run_is_reported(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    six = await create_player(client, migrated_database, "Six")
    nine = await create_player(client, migrated_database, "Nine")
    # Six: 6 days, a gap day, 6 more days: two runs of 6, never 7.
    await award_on_days(
        client,
        migrated_database,
        six,
        days_from(date(2026, 5, 1), 6) + days_from(date(2026, 5, 8), 6),
    )
    # Nine: a run of 7, a gap, then a run of 9.
    await award_on_days(
        client,
        migrated_database,
        nine,
        days_from(date(2026, 4, 1), 7) + days_from(date(2026, 4, 10), 9),
    )
    assert (await stats(client))["seven_day_streaks"] == [
        {"player": shown(nine), "longest_streak_days": 9}
    ]


async def test_the_statistics_change_with_every_award(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    ann = await create_player(client, migrated_database, "Ann")
    thing = await create_achievement(client, migrated_database, 5)
    assert (await stats(client))["most_points"] == {"points": 0, "players": []}
    await award(client, migrated_database, ann["id"], thing["id"])
    assert (await stats(client))["most_points"] == {"points": 5, "players": [shown(ann)]}
    ben = await create_player(client, migrated_database, "Ben")
    assert (await stats(client))["max_points_gap"] == {
        "difference": 5,
        "players": [shown(ann), shown(ben)],
    }


# Random data: a handful of players, a catalogue with small point values (so ties are
# common), and awards over a fortnight that crosses a month boundary (so streaks occur).
BASE_DAY = datetime(2026, 1, 25, tzinfo=UTC)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[int, list[int], list[dict[int, tuple[int, int]]]]:
    player_count = draw(st.integers(0, 6))
    points = draw(st.lists(st.integers(1, 5), min_size=1, max_size=12))
    held = [
        draw(
            st.dictionaries(
                st.integers(0, len(points) - 1),
                st.tuples(st.integers(0, 13), st.integers(0, 86_399)),
                max_size=len(points),
            )
        )
        for _ in range(player_count)
    ]
    return player_count, points, held


async def build_world(
    database: Settings, world: tuple[int, list[int], list[dict[int, tuple[int, int]]]]
) -> dict[str, Any]:
    """Replace the data with ``world`` through the services; return the oracle's answer."""
    player_count, points, held = world
    engine = create_async_engine(database.database_url, poolclass=NullPool)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        for table in (Award, PlayerStats, Player, Achievement):
            await session.execute(delete(table))
        players = [
            await PlayerService(session).create_player(f"P{i}", "ru" if i % 2 else "en")
            for i in range(player_count)
        ]
        catalogue = [
            await AchievementService(session).create_achievement(
                p, Translations(en=TranslationIn(name=f"A{i}"))
            )
            for i, p in enumerate(points)
        ]
        awards = []
        for player, holdings in zip(players, held, strict=True):
            for index, (day, second) in holdings.items():
                moment = BASE_DAY + timedelta(days=day, seconds=second)
                await AchievementService(session).award_achievement(
                    player, catalogue[index].id, moment
                )
                awards.append((player.id, catalogue[index].id, moment))
        await session.commit()
    await engine.dispose()
    return oracle_stats(
        [OraclePlayer(p.id, p.name, p.language) for p in players],
        {a.id: a.points for a in catalogue},
        awards,
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_the_statistics_match_a_straightforward_computation(
    live_server: LiveServer, migrated_database: Settings, world: Any
) -> None:
    expected = asyncio.run(build_world(migrated_database, world))
    kept, rebuilt = asyncio.run(kept_and_rebuilt(migrated_database))
    assert kept == rebuilt  # what the awards kept is what the awards say
    with httpx.Client(base_url=live_server.url) as http:
        first = http.get("/api/v1/achievements/stats")
        again = http.get("/api/v1/achievements/stats")  # served from the cache
    assert first.status_code == 200
    assert first.json() == expected
    assert again.json() == expected


async def test_the_statistics_work_on_the_embedded_sqlite(tmp_path: Any) -> None:
    from app.asgi import create_asgi
    from tests.support import free_port, make_settings

    embedded = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'quintet.db'}", redis_url=None
    )
    server = LiveServer(create_asgi(embedded), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            ann = await create_player(client, embedded, "Аня", "ru")
            bob = await create_player(client, embedded, "Bob")
            with_dup = await client.post(
                "/api/v1/players",
                json={"name": "АНЯ", "language": "en"},
                headers={"X-API-Key": embedded.admin_api_key},
            )
            assert with_dup.status_code == 409
            moments = days_from(date(2026, 1, 28), 8)
            moments[0] = datetime.fromisoformat("2026-01-29T02:00:00+05:00")  # 28 Jan UTC
            await award_on_days(client, embedded, ann, moments)
            result = await stats(client)
            assert result["most_achievements"] == {"count": 8, "players": [shown(ann)]}
            assert result["max_points_gap"] == {
                "difference": 8,
                "players": [shown(ann), shown(bob)],
            }
            assert result["min_points_gap"] == {
                "difference": 8,
                "players": [shown(bob), shown(ann)],
            }
            assert result["seven_day_streaks"] == [{"player": shown(ann), "longest_streak_days": 8}]
            # A back-dated award the day before the run recomputes Ann's row on SQLite too.
            await award_on_days(client, embedded, ann, days_from(date(2026, 1, 27), 1))
            result = await stats(client)
            assert result["most_achievements"] == {"count": 9, "players": [shown(ann)]}
            assert result["seven_day_streaks"] == [{"player": shown(ann), "longest_streak_days": 9}]
            page = await client.get("/achievements", params={"player": "аня", "lang": "ru"})
            assert page.status_code == 200
            assert "Аня" in page.text
    finally:
        server.stop()
