"""The achievements service: players, the catalogue, awards and the statistics.

Every statistic is computed by the database in set-based SQL (two statements, no loop over
awards in Python) that runs unchanged on PostgreSQL and SQLite. Answers are cached in Redis
under a version token that every write changes in its own transaction, so a cached answer
is never older than the data the reader could see.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.filters import LimitOffset
from redis.asyncio import Redis
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.domain.achievements.models import (
    Achievement,
    AchievementTranslation,
    Award,
    Player,
    StatsVersion,
    utc_now,
)
from app.domain.achievements.schemas import (
    EARLIEST_AWARD,
    AchievementStats,
    DailyAwards,
    LeaderboardRow,
    MostAchievements,
    MostPoints,
    PageSummary,
    PointsGap,
    StatsPlayer,
    Streak,
    Translations,
)
from app.lib.errors import ConflictError, InvalidInputError, NotFoundError
from app.lib.ids import new_uuid7

STREAK_DAYS = 7
STATS_CACHE_SECONDS = 3600
STATS_CACHE_PREFIX = "achievements:stats:"
PAGE_CACHE_PREFIX = "achievements:page:"
LEADERBOARD_SIZE = 10
CHART_DAYS = 30
STATS_WORK_MEM = "64MB"


def name_key(name: str) -> str:
    """The form under which names are unique: NFKC-normalised and Unicode case-folded."""
    return unicodedata.normalize("NFKC", name.strip()).casefold()


class utc_day_number(FunctionElement[int]):
    """Whole days since 1970-01-01 of a UTC timestamp, the same integer on both databases."""

    type = Integer()
    inherit_cache = True
    name = "utc_day_number"


@compiles(utc_day_number, "postgresql")
def _utc_day_number_postgresql(element: utc_day_number, compiler: SQLCompiler, **kw: Any) -> str:
    argument = compiler.process(element.clauses, **kw)
    return f"((({argument}) AT TIME ZONE 'UTC')::date - DATE '1970-01-01')"


@compiles(utc_day_number, "sqlite")
def _utc_day_number_sqlite(element: utc_day_number, compiler: SQLCompiler, **kw: Any) -> str:
    # DateTimeUTC stores UTC text on SQLite; julianday of 1970-01-01 00:00 is 2440587.5.
    argument = compiler.process(element.clauses, **kw)
    return f"CAST(julianday(date({argument})) - 2440587.5 AS INTEGER)"


async def bump_stats_version(session: AsyncSession) -> None:
    """Mark the statistics as changed, inside the caller's transaction."""
    token = str(new_uuid7())
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(StatsVersion).values(slot=1, token=token)
    await session.execute(
        statement.on_conflict_do_update(index_elements=[StatsVersion.slot], set_={"token": token})
    )


@dataclass(frozen=True)
class PlayerAward:
    achievement: Achievement
    awarded_at: datetime


class PlayerService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_player(self, name: str, language: str) -> Player:
        """Register a player; 409 when the name exists in any letter case."""
        player = Player(name=name.strip(), name_key=name_key(name), language=language)
        self.session.add(player)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise ConflictError(f"A player named {name.strip()!r} already exists.") from exc
        await bump_stats_version(self.session)
        return player

    async def get_player(self, player_id: UUID) -> Player:
        player = await self.session.get(Player, player_id)
        if player is None:
            raise NotFoundError(f"No player with id {player_id}.")
        return player

    async def find_by_name(self, name: str) -> Player | None:
        return await self.session.scalar(select(Player).where(Player.name_key == name_key(name)))

    async def list_players(
        self, *, name: str | None, page: LimitOffset
    ) -> tuple[Sequence[Player], int]:
        """Players by registration order; ``name`` matches one exactly, ignoring case."""
        condition = Player.name_key == name_key(name) if name is not None else literal(True)
        total = await self.session.scalar(select(func.count()).select_from(Player).where(condition))
        statement = select(Player).where(condition).order_by(Player.id)
        rows = await self.session.scalars(page.append_to_statement(statement, Player))
        return rows.all(), int(total or 0)


class AchievementService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_achievement(self, points: int, translations: Translations) -> Achievement:
        texts = {
            language: text
            for language, text in (("ru", translations.ru), ("en", translations.en))
            if text is not None
        }
        if not texts:
            raise InvalidInputError(
                "An achievement needs a name in at least one language (ru or en).",
                errors=[{"field": "translations", "message": "give ru, en or both"}],
            )
        for language, given in texts.items():
            taken = await self.session.scalar(
                select(AchievementTranslation.name).where(
                    AchievementTranslation.language == language,
                    AchievementTranslation.name_key == name_key(given.name),
                )
            )
            if taken is not None:
                raise ConflictError(
                    f"An achievement named {taken!r} already exists in {language}.",
                    errors=[{"field": f"translations.{language}.name", "message": "already taken"}],
                )
        achievement = Achievement(
            points=points,
            translations=[
                AchievementTranslation(
                    language=language,
                    name=text.name.strip(),
                    name_key=name_key(text.name),
                    description=text.description,
                )
                for language, text in texts.items()
            ],
        )
        self.session.add(achievement)
        try:
            await self.session.flush()
        except IntegrityError as exc:  # the same name added by a concurrent request
            raise ConflictError("An achievement with this name already exists.") from exc
        return achievement

    async def get_achievement(self, achievement_id: UUID) -> Achievement:
        achievement = await self.session.get(Achievement, achievement_id)
        if achievement is None:
            raise NotFoundError(f"No achievement with id {achievement_id}.")
        return achievement

    async def list_achievements(
        self, *, language: str, page: LimitOffset
    ) -> tuple[Sequence[Achievement], int]:
        """The catalogue ordered by points, then by the name shown in ``language`` (the
        other language's when it has no translation), ignoring case; id breaks ties."""
        total = await self.session.scalar(select(func.count()).select_from(Achievement))
        wanted = aliased(AchievementTranslation)
        other = aliased(AchievementTranslation)
        statement = (
            select(Achievement)
            .outerjoin(
                wanted, and_(wanted.achievement_id == Achievement.id, wanted.language == language)
            )
            .outerjoin(
                other, and_(other.achievement_id == Achievement.id, other.language != language)
            )
            .order_by(
                Achievement.points, func.coalesce(wanted.name_key, other.name_key), Achievement.id
            )
        )
        rows = await self.session.scalars(page.append_to_statement(statement, Achievement))
        return rows.all(), int(total or 0)

    async def award_achievement(
        self, player: Player, achievement_id: UUID, awarded_at: datetime | None
    ) -> PlayerAward:
        """Give ``player`` an achievement: 404 unknown, 409 already held, 422 future time."""
        now = utc_now()
        if awarded_at is not None and awarded_at > now:
            raise InvalidInputError(
                "awarded_at is in the future.",
                errors=[{"field": "awarded_at", "message": "must not be later than now"}],
            )
        if awarded_at is not None and awarded_at < EARLIEST_AWARD:
            raise InvalidInputError(
                "awarded_at is before 2000-01-01; give the date the achievement was earned.",
                errors=[{"field": "awarded_at", "message": "must be 2000-01-01 or later"}],
            )
        achievement = await self.get_achievement(achievement_id)
        award = Award(
            player_id=player.id, achievement_id=achievement.id, awarded_at=awarded_at or now
        )
        holder = player.name  # read now: a failed flush expires the loaded objects
        self.session.add(award)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise ConflictError(f"{holder} already holds this achievement.") from exc
        await bump_stats_version(self.session)
        return PlayerAward(achievement=achievement, awarded_at=award.awarded_at)

    async def player_awards(
        self, player: Player, *, page: LimitOffset
    ) -> tuple[list[PlayerAward], int, int]:
        """The player's awards, newest first, with their count and total points."""
        totals = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(Achievement.points), 0))
                .select_from(Award)
                .join(Achievement, Achievement.id == Award.achievement_id)
                .where(Award.player_id == player.id)
            )
        ).one()
        statement = (
            select(Achievement, Award.awarded_at)
            .join(Award, Award.achievement_id == Achievement.id)
            .where(Award.player_id == player.id)
            .order_by(Award.awarded_at.desc(), Achievement.id)
        )
        # Two columns: LimitOffset's typing takes one-model selects, so apply it by hand.
        rows = await self.session.execute(statement.limit(page.limit).offset(page.offset))
        awards = [PlayerAward(achievement=a, awarded_at=at) for a, at in rows]
        return awards, int(totals[0]), int(totals[1])


class AchievementStatsService:
    """The statistics of the whole system; definitions in ``STATS_DESCRIPTION``."""

    def __init__(self, session: AsyncSession, redis: Redis | None = None) -> None:
        self.session = session
        self.redis = redis

    async def current_stats_json(self) -> bytes:
        """The statistics as JSON, from the cache when nothing changed since they were computed.

        The version token is read first: a write that commits after that read can only make
        the computed answer newer than the token says, never older, so no reader is ever
        served an answer older than the data it could already see. The cached JSON is
        returned as it is stored: with every streak listed it can weigh megabytes.
        """
        return await self._cached(STATS_CACHE_PREFIX, "", self.compute_stats)

    async def page_summary(self, today: date) -> PageSummary:
        """The leaderboard and the awards per day up to ``today``, cached like the statistics
        (and per day, as the chart's window moves with the date)."""
        body = await self._cached(
            PAGE_CACHE_PREFIX, f":{today.isoformat()}", lambda: self.compute_page_summary(today)
        )
        return msgspec.json.decode(body, type=PageSummary)

    async def _cached(
        self, prefix: str, suffix: str, compute: Callable[[], Awaitable[msgspec.Struct]]
    ) -> bytes:
        token = await self.session.scalar(select(StatsVersion.token))
        key = f"{prefix}{token}{suffix}"
        if token is not None and self.redis is not None:
            cached: bytes | str | None = await self.redis.get(key)
            if cached is not None:
                return cached.encode() if isinstance(cached, str) else cached
        body = msgspec.json.encode(await compute())
        if token is not None and self.redis is not None:
            await self.redis.set(key, body, ex=STATS_CACHE_SECONDS)
        return body

    async def compute_page_summary(self, today: date) -> PageSummary:
        """Top players by points (then achievements, then id) and awards per UTC day."""
        points = func.sum(Achievement.points)
        count = func.count()
        leaders = await self.session.execute(
            select(Player.id, Player.name, Player.language, count.label("n"), points.label("p"))
            .join(Award, Award.player_id == Player.id)
            .join(Achievement, Achievement.id == Award.achievement_id)
            .group_by(Player.id, Player.name, Player.language)
            .order_by(points.desc(), count.desc(), Player.id)
            .limit(LEADERBOARD_SIZE)
        )
        first_day = today - timedelta(days=CHART_DAYS - 1)
        epoch = date(1970, 1, 1)
        day = utc_day_number(Award.awarded_at)
        per_day = await self.session.execute(
            select(day.label("day"), func.count().label("n"))
            .where(
                Award.awarded_at
                >= datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
            )
            .group_by(day)
        )
        counts = {epoch + timedelta(days=int(row.day)): int(row.n) for row in per_day}
        return PageSummary(
            leaderboard=[
                LeaderboardRow(
                    player=StatsPlayer(id=row.id, name=row.name, language=row.language),
                    achievements=int(row.n),
                    points=int(row.p),
                )
                for row in leaders
            ],
            awards_per_day=[
                DailyAwards(day=d, awards=counts.get(d, 0))
                for d in (first_day + timedelta(days=i) for i in range(CHART_DAYS))
            ],
        )

    async def current_stats(self) -> AchievementStats:
        return msgspec.json.decode(await self.current_stats_json(), type=AchievementStats)

    async def compute_stats(self) -> AchievementStats:
        """Compute every statistic from the tables, bypassing the cache."""
        if self.session.get_bind().dialect.name == "postgresql":
            # The streak query sorts every (player, day): keep that sort in memory.
            await self.session.execute(text(f"SET LOCAL work_mem = '{STATS_WORK_MEM}'"))
        ranked = await self._ranked_players()
        return AchievementStats(
            most_achievements=MostAchievements(
                count=max((r.awards for r in ranked), default=0),
                players=[r.player for r in ranked if r.most_awards],
            ),
            most_points=MostPoints(
                points=max((r.points for r in ranked), default=0),
                players=[r.player for r in ranked if r.most_points],
            ),
            max_points_gap=self._max_gap(ranked),
            min_points_gap=self._min_gap(ranked),
            seven_day_streaks=await self._streaks(),
        )

    @staticmethod
    def _max_gap(ranked: list[_RankedPlayer]) -> PointsGap | None:
        top = next((r for r in ranked if r.rank_desc == 1), None)
        bottom = next(
            (
                r
                for r in sorted(ranked, key=lambda r: r.rank_asc)
                if top is not None and r.rank_asc <= 2 and r.player.id != top.player.id
            ),
            None,
        )
        if top is None or bottom is None:
            return None
        return PointsGap(difference=top.points - bottom.points, players=[top.player, bottom.player])

    @staticmethod
    def _min_gap(ranked: list[_RankedPlayer]) -> PointsGap | None:
        low = next((r for r in ranked if r.min_gap_low), None)
        high = next((r for r in ranked if r.min_gap_high), None)
        if low is None or high is None:
            return None
        return PointsGap(difference=high.points - low.points, players=[low.player, high.player])

    async def _ranked_players(self) -> list[_RankedPlayer]:
        """One statement: per-player totals, ranked four ways; only the rows that matter."""
        per_player = (
            select(
                Award.player_id,
                func.count().label("awards"),
                func.sum(Achievement.points).label("points"),
            )
            .join(Achievement, Achievement.id == Award.achievement_id)
            .group_by(Award.player_id)
            .subquery("per_player")
        )
        totals = (
            select(
                Player.id,
                Player.name,
                Player.language,
                func.coalesce(per_player.c.awards, 0).label("awards"),
                func.coalesce(per_player.c.points, 0).label("points"),
            )
            .outerjoin(per_player, per_player.c.player_id == Player.id)
            .cte("totals")
        )
        by_points = (totals.c.points, totals.c.id)
        next_points = func.lead(totals.c.points).over(order_by=by_points)
        ranked = select(
            totals,
            func.max(totals.c.awards).over().label("max_awards"),
            func.max(totals.c.points).over().label("max_points"),
            func.row_number()
            .over(order_by=(totals.c.points.desc(), totals.c.id))
            .label("rank_desc"),
            func.row_number().over(order_by=by_points).label("rank_asc"),
            (next_points - totals.c.points).label("gap_to_next"),
        ).subquery("ranked")
        # The smallest gap is always between neighbours in (points, id) order; the first
        # such neighbour pair wins ties. Its upper player is the row right after it.
        gap_order = func.row_number().over(
            order_by=(
                case((ranked.c.gap_to_next.is_(None), 1), else_=0),
                ranked.c.gap_to_next,
                ranked.c.points,
                ranked.c.id,
            )
        )
        with_gap = select(ranked, gap_order.label("gap_rank")).subquery("with_gap")
        is_gap_low = and_(with_gap.c.gap_rank == 1, with_gap.c.gap_to_next.is_not(None))
        previous_is_gap_low = func.lag(case((is_gap_low, 1), else_=0)).over(
            order_by=(with_gap.c.points, with_gap.c.id)
        )
        flagged = select(
            with_gap,
            case((is_gap_low, 1), else_=0).label("min_gap_low"),
            func.coalesce(previous_is_gap_low, 0).label("min_gap_high"),
        ).subquery("flagged")
        most_awards: ColumnElement[bool] = and_(
            flagged.c.awards == flagged.c.max_awards, flagged.c.awards > 0
        )
        most_points: ColumnElement[bool] = and_(
            flagged.c.points == flagged.c.max_points, flagged.c.points > 0
        )
        statement: Select[Any] = (
            select(
                flagged.c.id,
                flagged.c.name,
                flagged.c.language,
                flagged.c.awards,
                flagged.c.points,
                flagged.c.rank_desc,
                flagged.c.rank_asc,
                most_awards.label("most_awards"),
                most_points.label("most_points"),
                flagged.c.min_gap_low,
                flagged.c.min_gap_high,
            )
            .where(
                or_(
                    most_awards,
                    most_points,
                    flagged.c.rank_desc == 1,
                    flagged.c.rank_asc <= 2,
                    flagged.c.min_gap_low == 1,
                    flagged.c.min_gap_high == 1,
                )
            )
            .order_by(flagged.c.id)
        )
        rows = await self.session.execute(statement)
        return [
            _RankedPlayer(
                player=StatsPlayer(id=row.id, name=row.name, language=row.language),
                awards=int(row.awards),
                points=int(row.points),
                rank_desc=int(row.rank_desc),
                rank_asc=int(row.rank_asc),
                most_awards=bool(row.most_awards),
                most_points=bool(row.most_points),
                min_gap_low=bool(row.min_gap_low),
                min_gap_high=bool(row.min_gap_high),
            )
            for row in rows
        ]

    async def _streaks(self) -> list[Streak]:
        """Gaps and islands, walking each player's awards in (player_id, awarded_at) order,
        which the index already has, so the database never sorts the awards: an award
        starts a run unless the previous one fell on the same or the previous UTC day; the
        running count of starts numbers the runs; a run covers max(day) - min(day) + 1
        days (several awards on one day count once)."""
        day = utc_day_number(Award.awarded_at)
        previous_day = func.lag(day).over(partition_by=Award.player_id, order_by=Award.awarded_at)
        steps = select(
            Award.player_id,
            Award.awarded_at,
            day.label("day"),
            case((day - previous_day <= 1, 0), else_=1).label("starts"),
        ).subquery("steps")
        numbered = select(
            steps.c.player_id,
            steps.c.day,
            func.sum(steps.c.starts)
            .over(partition_by=steps.c.player_id, order_by=steps.c.awarded_at, rows=(None, 0))
            .label("run"),
        ).subquery("numbered")
        runs = (
            select(
                numbered.c.player_id,
                (func.max(numbered.c.day) - func.min(numbered.c.day) + 1).label("length"),
            )
            .group_by(numbered.c.player_id, numbered.c.run)
            .subquery("runs")
        )
        longest = (
            select(runs.c.player_id, func.max(runs.c.length).label("longest"))
            .group_by(runs.c.player_id)
            .having(func.max(runs.c.length) >= STREAK_DAYS)
            .subquery("longest")
        )
        rows = await self.session.execute(
            select(Player.id, Player.name, Player.language, longest.c.longest)
            .join(longest, longest.c.player_id == Player.id)
            .order_by(longest.c.longest.desc(), Player.id)
        )
        return [
            Streak(
                player=StatsPlayer(id=row.id, name=row.name, language=row.language),
                longest_streak_days=int(row.longest),
            )
            for row in rows
        ]


@dataclass(frozen=True)
class _RankedPlayer:
    player: StatsPlayer
    awards: int
    points: int
    rank_desc: int
    rank_asc: int
    most_awards: bool
    most_points: bool
    min_gap_low: bool
    min_gap_high: bool
