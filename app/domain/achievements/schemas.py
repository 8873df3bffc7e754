"""Request and response bodies of the achievements API (msgspec: validation and OpenAPI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from advanced_alchemy.service import OffsetPagination
from msgspec import Meta

from app.lib.errors import NO_NUL_PATTERN, VISIBLE_TEXT_PATTERN

Language = Literal["ru", "en"]
# The earliest award time accepted: older dates are typos (0001-01-01), not history.
EARLIEST_AWARD = datetime(2000, 1, 1, tzinfo=UTC)
PlayerName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=VISIBLE_TEXT_PATTERN,
        description="Unique, case-insensitive; no control characters",
    ),
]
Points = Annotated[int, Meta(gt=0, le=1_000_000, description="A positive integer")]
AwareDateTime = Annotated[datetime, Meta(tz=True, description="ISO 8601 with a zone")]


class PlayerCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: PlayerName
    language: Language


class PlayerRead(msgspec.Struct):
    id: UUID
    name: str
    language: Language
    created_at: datetime


PlayerPage = OffsetPagination[PlayerRead]


class TranslationIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=120,
            pattern=VISIBLE_TEXT_PATTERN,
            description="Unique within its language, ignoring letter case",
        ),
    ]
    description: Annotated[str, Meta(max_length=2000, pattern=NO_NUL_PATTERN)] = ""


class Translations(msgspec.Struct, forbid_unknown_fields=True):
    ru: TranslationIn | None = None
    en: TranslationIn | None = None


class AchievementCreate(msgspec.Struct, forbid_unknown_fields=True):
    points: Points
    translations: Annotated[
        Translations, Meta(description="At least one of ru, en; the other falls back to it.")
    ]


class AchievementRead(msgspec.Struct):
    id: UUID
    points: int
    language: Language
    name: str
    description: str
    created_at: datetime


@dataclass
class AchievementPage(OffsetPagination[AchievementRead]):
    """A page of the catalogue: advanced-alchemy's page shape, with the language asked for."""

    items: Sequence[AchievementRead]
    language: Language


class AwardCreate(msgspec.Struct, forbid_unknown_fields=True):
    achievement_id: UUID
    awarded_at: Annotated[
        AwareDateTime | None,
        Meta(description="When it was earned, from 2000-01-01 to now; default now"),
    ] = None


class AwardRead(msgspec.Struct):
    achievement_id: UUID
    points: int
    language: Language
    name: str
    description: str
    awarded_at: datetime


@dataclass
class PlayerAwardPage(OffsetPagination[AwardRead]):
    """A page of a player's awards: advanced-alchemy's page shape, with the player, their
    language and the points of all their awards."""

    items: Sequence[AwardRead]
    player: PlayerRead
    language: Language
    total_points: int


class StatsPlayer(msgspec.Struct):
    id: UUID
    name: str
    language: Language


class MostAchievements(msgspec.Struct):
    count: int
    players: list[StatsPlayer]


class MostPoints(msgspec.Struct):
    points: int
    players: list[StatsPlayer]


class PointsGap(msgspec.Struct):
    difference: int
    players: list[StatsPlayer]


class Streak(msgspec.Struct):
    player: StatsPlayer
    longest_streak_days: int


class AchievementStats(msgspec.Struct):
    most_achievements: MostAchievements
    most_points: MostPoints
    max_points_gap: PointsGap | None
    min_points_gap: PointsGap | None
    seven_day_streaks: Annotated[
        list[Streak],
        Meta(description="One page of the streaks: `streaks_limit` from `streaks_offset`"),
    ]
    seven_day_streaks_total: Annotated[
        int, Meta(description="How many players have a seven-day streak (every page)")
    ] = 0


class LeaderboardRow(msgspec.Struct):
    player: StatsPlayer
    achievements: int
    points: int


class DailyAwards(msgspec.Struct):
    day: date
    awards: int


class PageSummary(msgspec.Struct):
    """What the /achievements page shows besides the statistics: the top players by points
    and the awards of each of the last days (UTC), zero days included."""

    leaderboard: list[LeaderboardRow]
    awards_per_day: list[DailyAwards]


STATS_DESCRIPTION = """
Every figure is read at the time of the request from per-player totals that each award
updates in its own transaction: an answer always includes every award made before it.

A player's **achievement count** is the number of achievements awarded to them and their
**points** the sum of those achievements' points. Players without awards take part with
0 achievements and 0 points. A player is shown as `{id, name, language}`.

* `most_achievements`: `count` is the largest achievement count; `players` are all players
  with that count (ordered by id, i.e. registration order). When nobody has an award,
  `count` is 0 and `players` is empty.
* `most_points`: the same for points.
* `max_points_gap`: the largest difference in points between two different players
  (an unordered pair). `players` is `[a, b]`: `a` has the most points, `b` the fewest
  among the others; `difference` = points(a) - points(b) ≥ 0. Ties are broken by the
  smaller id (the earlier registered player). `null` with fewer than two players.
* `min_points_gap`: the smallest difference in points between two different players.
  Players are sorted by (points, id); the smallest difference is always found between
  neighbours in that order, and the first such neighbour pair is reported, as `[a, b]`
  with points(a) ≤ points(b) and `difference` = points(b) - points(a). Two players with
  equal points give 0. `null` with fewer than two players.
* `seven_day_streaks`: every player who was awarded on at least 7 consecutive calendar
  days (UTC dates of `awarded_at`; several awards on one day count as that one day), with
  `longest_streak_days`, the length of their longest such run. Ordered by the longest run
  (longest first), then id. The list comes a page at a time (`streaks_limit`, default
  100, from `streaks_offset`, default 0); `seven_day_streaks_total` counts them all.
"""
