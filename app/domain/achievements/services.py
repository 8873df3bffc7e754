"""The achievements service: players, the catalogue, awards and the statistics.

Each award updates its player's ``PlayerStats`` row in the award's own transaction, so the
statistics are a few index reads of that table, fresh on every request, on PostgreSQL and
SQLite alike (no cache, nothing shared that concurrent awards would wait for).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from advanced_alchemy.exceptions import IntegrityError as RepositoryIntegrityError
from advanced_alchemy.filters import LimitOffset, OrderBy, StatementFilter
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
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
    update,
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
    PlayerStats,
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
from app.lib.errors import ConflictError, InvalidInputError

STREAK_DAYS = 7
LEADERBOARD_SIZE = 10
CHART_DAYS = 30
STREAKS_PAGE_SIZE = 100
EPOCH = date(1970, 1, 1)


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


@dataclass(frozen=True)
class PlayerAward:
    achievement: Achievement
    awarded_at: datetime


class PlayerService(SQLAlchemyAsyncRepositoryService[Player]):
    """Players through advanced-alchemy's repository: registration, look-ups, pages."""

    class Repo(SQLAlchemyAsyncRepository[Player]):
        model_type = Player

    repository_type = Repo

    async def create_player(self, name: str, language: str) -> Player:
        """Register a player; 409 when the name exists in any letter case."""
        player = Player(name=name.strip(), name_key=name_key(name), language=language)
        try:
            # The defaults are set in Python: nothing to read back after the INSERT.
            await self.create(player, auto_refresh=False)
        except RepositoryIntegrityError as exc:
            raise ConflictError(f"A player named {name.strip()!r} already exists.") from exc
        self.repository.session.add(PlayerStats(player_id=player.id))
        await self.repository.session.flush()
        return player

    async def get_player(self, player_id: UUID) -> Player:
        """The player, or advanced-alchemy's NotFoundError (a 404 problem)."""
        return await self.get(
            player_id, error_messages={"not_found": f"No player with id {player_id}."}
        )

    async def find_by_name(self, name: str) -> Player | None:
        return await self.get_one_or_none(name_key=name_key(name))

    async def list_players(
        self, *, name: str | None, page: LimitOffset
    ) -> tuple[Sequence[Player], int]:
        """Players by registration order; ``name`` matches one exactly, ignoring case."""
        filters: list[StatementFilter | ColumnElement[bool]] = [page, OrderBy("id", "asc")]
        if name is not None:
            filters.append(Player.name_key == name_key(name))
        return await self.get_many_and_count(*filters)


class AchievementService(SQLAlchemyAsyncRepositoryService[Achievement]):
    """The catalogue through advanced-alchemy's repository, and the awards."""

    class Repo(SQLAlchemyAsyncRepository[Achievement]):
        model_type = Achievement

    repository_type = Repo

    @property
    def session(self) -> AsyncSession:
        return cast("AsyncSession", self.repository.session)

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
        try:
            await self.create(achievement, auto_refresh=False)
        except RepositoryIntegrityError as exc:  # the same name added by a concurrent request
            raise ConflictError("An achievement with this name already exists.") from exc
        return achievement

    async def get_achievement(self, achievement_id: UUID) -> Achievement:
        """The achievement, or advanced-alchemy's NotFoundError (a 404 problem)."""
        return await self.get(
            achievement_id,
            error_messages={"not_found": f"No achievement with id {achievement_id}."},
        )

    async def list_achievements(
        self, *, language: str, page: LimitOffset
    ) -> tuple[Sequence[Achievement], int]:
        """The catalogue ordered by points, then by the name shown in ``language`` (the
        other language's when it has no translation), ignoring case; id breaks ties."""
        wanted = aliased(AchievementTranslation)
        other = aliased(AchievementTranslation)
        # At most one row of each alias per achievement (two languages): no duplicates.
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
        # SQLAlchemy 2.1 types select(Model) as Select[Model]; advanced-alchemy's
        # signature still says Select[tuple[Model]].
        return await self.get_many_and_count(page, statement=cast(Any, statement))

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
        await record_award(
            self.session, player.id, achievement.points, day_number(award.awarded_at)
        )
        return PlayerAward(achievement=achievement, awarded_at=award.awarded_at)

    async def player_awards(
        self, player: Player, *, page: LimitOffset
    ) -> tuple[list[PlayerAward], int, int]:
        """The player's awards, newest first, with their count and total points."""
        totals = (
            await self.session.execute(
                select(PlayerStats.awards, PlayerStats.points).where(
                    PlayerStats.player_id == player.id
                )
            )
        ).first() or (0, 0)
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


_HAS_STREAK = PlayerStats.longest_streak >= STREAK_DAYS


def _of_player(column: Any) -> Any:
    return select(column).where(Player.id == PlayerStats.player_id).scalar_subquery()


# A player as shown, looked up by primary key for each row an index read returned: a join
# would let the planner trade those few lookups for a scan of every player when it
# overestimates the rows (a tail value of the points index).
_SHOWN = (
    PlayerStats.player_id.label("id"),
    _of_player(Player.name).label("name"),
    _of_player(Player.language).label("language"),
)
# One statement for the figures everything else starts from, each the top of an index: the
# most awards, the most points, the lowest points value two players share, the streak count.
_TOP_FIGURES = (
    select(func.max(PlayerStats.awards)).scalar_subquery().label("awards"),
    select(func.max(PlayerStats.points)).scalar_subquery().label("points"),
    select(PlayerStats.points)
    .group_by(PlayerStats.points)
    .having(func.count() > 1)
    .order_by(PlayerStats.points)
    .limit(1)
    .scalar_subquery()
    .label("shared_points"),
    select(func.count()).where(_HAS_STREAK).scalar_subquery().label("streaks"),
)


class AchievementStatsService:
    """The statistics of the whole system; definitions in ``STATS_DESCRIPTION``.

    Every figure is read fresh from ``PlayerStats`` (kept up to date by each award): the
    maxima from the top of an index, the gaps from its two ends and the first repeated
    points value, the streaks as one page of a partial index. No cache: the answer costs a
    few index reads, however many awards there are.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page_summary(self, today: date) -> PageSummary:
        """Top players by points (then achievements, then id) and awards per UTC day up to
        ``today``."""
        leaders = await self.session.execute(
            select(
                Player.id,
                Player.name,
                Player.language,
                PlayerStats.awards,
                PlayerStats.points,
            )
            .join(PlayerStats, PlayerStats.player_id == Player.id)
            .where(PlayerStats.awards > 0)
            .order_by(PlayerStats.points.desc(), PlayerStats.awards.desc(), Player.id)
            .limit(LEADERBOARD_SIZE)
        )
        first_day = today - timedelta(days=CHART_DAYS - 1)
        day = utc_day_number(Award.awarded_at)
        per_day = await self.session.execute(
            select(day.label("day"), func.count().label("n"))
            .where(
                Award.awarded_at
                >= datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
            )
            .group_by(day)
        )
        counts = {EPOCH + timedelta(days=int(row.day)): int(row.n) for row in per_day}
        return PageSummary(
            leaderboard=[
                LeaderboardRow(
                    player=StatsPlayer(id=row.id, name=row.name, language=row.language),
                    achievements=int(row.awards),
                    points=int(row.points),
                )
                for row in leaders
            ],
            awards_per_day=[
                DailyAwards(day=d, awards=counts.get(d, 0))
                for d in (first_day + timedelta(days=i) for i in range(CHART_DAYS))
            ],
        )

    async def current_stats(
        self, *, streaks_limit: int = STREAKS_PAGE_SIZE, streaks_offset: int = 0
    ) -> AchievementStats:
        """Every statistic as of now; the streak list one page at a time."""
        tops = (await self.session.execute(select(*_TOP_FIGURES))).one()
        most_awards, most_points = int(tops.awards or 0), int(tops.points or 0)
        return AchievementStats(
            most_achievements=MostAchievements(
                count=most_awards, players=await self._holders(PlayerStats.awards, most_awards)
            ),
            most_points=MostPoints(
                points=most_points, players=await self._holders(PlayerStats.points, most_points)
            ),
            max_points_gap=await self._max_gap(most_points),
            min_points_gap=await self._min_gap(tops.shared_points),
            seven_day_streaks=await self._streaks(streaks_limit, streaks_offset),
            seven_day_streaks_total=int(tops.streaks),
        )

    async def _players(
        self, condition: ColumnElement[bool], limit: int | None, *, by_points: bool = True
    ) -> list[Any]:
        """(player, points) of the players meeting ``condition``, by points then id (or by
        id alone)."""
        order = (
            (PlayerStats.points, PlayerStats.player_id) if by_points else (PlayerStats.player_id,)
        )
        statement = (
            select(*_SHOWN, PlayerStats.points).where(condition).order_by(*order).limit(limit)
        )
        return [
            (StatsPlayer(id=row.id, name=row.name, language=row.language), int(row.points))
            for row in await self.session.execute(statement)
        ]

    async def _holders(self, figure: Any, top: int) -> list[StatsPlayer]:
        """Everyone whose ``figure`` is ``top`` (nobody leads with 0), by id."""
        if top == 0:
            return []
        return [player for player, _ in await self._players(figure == top, None, by_points=False)]

    async def _max_gap(self, most_points: int) -> PointsGap | None:
        """The first player with the most points against the lowest of the others."""
        lowest = await self._players(literal(True), 2)
        if len(lowest) < 2:
            return None
        top, top_points = (await self._players(PlayerStats.points == most_points, 1))[0]
        bottom, bottom_points = next(item for item in lowest if item[0].id != top.id)
        return PointsGap(difference=top_points - bottom_points, players=[top, bottom])

    async def _min_gap(self, shared: int | None) -> PointsGap | None:
        """The first neighbours in (points, id) order with the smallest difference. With
        many players some share a points value: the lowest ``shared`` one answers (found in
        the first entries of the points index). Only when every value is distinct is every
        neighbour pair compared."""
        if shared is not None:
            pair = await self._players(PlayerStats.points == shared, 2)
            return PointsGap(difference=0, players=[pair[0][0], pair[1][0]])
        order = (PlayerStats.points, PlayerStats.player_id)
        neighbours = select(
            PlayerStats.player_id,
            PlayerStats.points,
            (func.lead(PlayerStats.points).over(order_by=order) - PlayerStats.points).label("gap"),
            func.lead(PlayerStats.player_id).over(order_by=order).label("next_id"),
        ).subquery("neighbours")
        closest = (
            await self.session.execute(
                select(neighbours.c.player_id, neighbours.c.next_id)
                .where(neighbours.c.gap.is_not(None))
                .order_by(neighbours.c.gap, neighbours.c.points, neighbours.c.player_id)
                .limit(1)
            )
        ).first()
        if closest is None:
            return None
        low, high = (
            await self._players(PlayerStats.player_id == closest.player_id, 1),
            await self._players(PlayerStats.player_id == closest.next_id, 1),
        )
        return PointsGap(difference=high[0][1] - low[0][1], players=[low[0][0], high[0][0]])

    async def _streaks(self, limit: int, offset: int) -> list[Streak]:
        """One page of the players with a run of ``STREAK_DAYS`` days, longest first: the
        next entries of the partial index on ``(longest_streak DESC, player_id)``."""
        rows = await self.session.execute(
            select(*_SHOWN, PlayerStats.longest_streak)
            .where(_HAS_STREAK)
            .order_by(PlayerStats.longest_streak.desc(), PlayerStats.player_id)
            .limit(limit)
            .offset(offset)
        )
        return [
            Streak(
                player=StatsPlayer(id=row.id, name=row.name, language=row.language),
                longest_streak_days=int(row.longest_streak),
            )
            for row in rows
        ]


def day_number(moment: datetime) -> int:
    """Whole days since 1970-01-01 of ``moment``'s UTC date (as ``utc_day_number``)."""
    return (moment.astimezone(UTC).date() - EPOCH).days


def player_stats_rows(player_id: UUID | None = None) -> Select[Any]:
    """Every player's ``PlayerStats`` row computed from the awards (one player's when
    ``player_id`` is given, read through the ``(player_id, awarded_at)`` index).

    Gaps and islands: an award starts a run unless the previous one fell on the same or
    the previous UTC day; the running count of starts numbers the runs; a run covers
    max(day) - min(day) + 1 days. The current run is the one holding the latest day.
    """
    of_player: Callable[[Any], ColumnElement[bool]] = lambda column: (  # noqa: E731
        column == player_id if player_id is not None else literal(True)
    )
    totals = (
        select(
            Award.player_id,
            func.count().label("awards"),
            func.sum(Achievement.points).label("points"),
        )
        .join(Achievement, Achievement.id == Award.achievement_id)
        .where(of_player(Award.player_id))
        .group_by(Award.player_id)
        .subquery("totals")
    )
    day = utc_day_number(Award.awarded_at)
    previous_day = func.lag(day).over(partition_by=Award.player_id, order_by=Award.awarded_at)
    steps = (
        select(
            Award.player_id,
            Award.awarded_at,
            day.label("day"),
            case((day - previous_day <= 1, 0), else_=1).label("starts"),
        )
        .where(of_player(Award.player_id))
        .subquery("steps")
    )
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
            func.max(numbered.c.day).label("last_day"),
            func.row_number()
            .over(partition_by=numbered.c.player_id, order_by=func.max(numbered.c.day).desc())
            .label("recency"),
        )
        .group_by(numbered.c.player_id, numbered.c.run)
        .subquery("runs")
    )
    streaks = (
        select(
            runs.c.player_id,
            func.max(runs.c.length).label("longest"),
            func.max(runs.c.last_day).label("last_day"),
            func.max(case((runs.c.recency == 1, runs.c.length), else_=0)).label("current"),
        )
        .group_by(runs.c.player_id)
        .subquery("streaks")
    )
    return (
        select(
            Player.id.label("player_id"),
            func.coalesce(totals.c.awards, 0).label("awards"),
            func.coalesce(totals.c.points, 0).label("points"),
            streaks.c.last_day,
            func.coalesce(streaks.c.current, 0).label("current_run"),
            func.coalesce(streaks.c.longest, 0).label("longest_streak"),
        )
        .outerjoin(totals, totals.c.player_id == Player.id)
        .outerjoin(streaks, streaks.c.player_id == Player.id)
        .where(of_player(Player.id))
    )


def rebuild_player_stats(dialect: str, player_id: UUID | None = None) -> Any:
    """An upsert of ``PlayerStats`` from the awards: every player's, or one player's."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = ["player_id", "awards", "points", "last_day", "current_run", "longest_streak"]
    statement = insert(PlayerStats).from_select(columns, player_stats_rows(player_id))
    return statement.on_conflict_do_update(
        index_elements=[PlayerStats.player_id],
        set_={name: statement.excluded[name] for name in columns[1:]},
    )


async def record_award(session: AsyncSession, player_id: UUID, points: int, day: int) -> None:
    """Add one award on UTC day ``day`` to the player's ``PlayerStats``, in the caller's
    transaction. Only the player's own row is locked. An award on or after the player's
    last day extends or restarts the current run in the same statement; one dated earlier
    recomputes the player's runs from their awards (it may join two runs)."""
    stats = PlayerStats.__table__.c
    later = or_(stats.last_day.is_(None), stats.last_day < day)
    run = case(
        (stats.last_day == day - 1, stats.current_run + 1),
        (later, 1),
        else_=stats.current_run,
    )
    result = await session.execute(
        update(PlayerStats)
        .where(PlayerStats.player_id == player_id)
        .values(
            awards=stats.awards + 1,
            points=stats.points + points,
            current_run=run,
            last_day=case((later, day), else_=stats.last_day),
            longest_streak=case(
                (and_(later, run > stats.longest_streak), run), else_=stats.longest_streak
            ),
        )
        .returning(PlayerStats.last_day)
    )
    last_day = result.scalar_one_or_none()
    if last_day is None or last_day > day:
        dialect = session.get_bind().dialect.name
        await session.execute(rebuild_player_stats(dialect, player_id))
