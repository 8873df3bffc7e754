"""The achievements API under /api/v1: thin handlers over the services (seed 002)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any
from uuid import UUID

from advanced_alchemy.filters import LimitOffset
from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody, Parameter

from app.config import Settings
from app.domain.achievements.models import Achievement, Player
from app.domain.achievements.schemas import (
    STATS_DESCRIPTION,
    AchievementCreate,
    AchievementPage,
    AchievementRead,
    AchievementStats,
    AwardCreate,
    AwardRead,
    Language,
    PlayerAwardPage,
    PlayerCreate,
    PlayerPage,
    PlayerRead,
)
from app.domain.achievements.services import (
    STREAKS_PAGE_SIZE,
    AchievementService,
    AchievementStatsService,
    PlayerAward,
    PlayerService,
)
from app.lib.auth import PUBLIC_ROUTE
from app.lib.bodies import decode_strictly
from app.lib.dependencies import DbSessionDep
from app.lib.errors import VISIBLE_TEXT_PATTERN, UnauthorizedError
from app.lib.web import problem_spec

MAX_PAGE_SIZE = 100
MAX_STREAKS_PAGE = 1000
# Far beyond any real list, and within the 64-bit integers both databases take for OFFSET.
MAX_OFFSET = 1_000_000_000
Limit = Annotated[
    int, Parameter(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, 1 to {MAX_PAGE_SIZE}")
]
Offset = Annotated[
    int,
    Parameter(
        ge=0, le=MAX_OFFSET, description=f"Items to skip, 0 to {MAX_OFFSET:,}".replace(",", " ")
    ),
]
PlayersDep = NamedDependency[PlayerService]
AchievementsDep = NamedDependency[AchievementService]
StatsDep = NamedDependency[AchievementStatsService]
ADMIN_ONLY: list[dict[str, list[str]]] = [{"AdminApiKey": []}]


def page_of(limit: int, offset: int) -> LimitOffset:
    """advanced-alchemy's pagination filter for the validated ``limit`` and ``offset``."""
    return LimitOffset(limit=limit, offset=offset)


UNAUTHORIZED = {401: problem_spec("The X-API-Key header is missing or wrong")}
NOT_FOUND = {404: problem_spec("No such player or achievement")}
INVALID = {422: problem_spec("A field breaks a constraint")}


def require_admin_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Writes need ADMIN_API_KEY in X-API-Key (compared in constant time)."""
    settings: Settings = connection.app.state.settings
    supplied = connection.headers.get("x-api-key", "")
    if not hmac.compare_digest(supplied.encode(), settings.admin_api_key.encode()):
        raise UnauthorizedError(
            "This write needs the admin API key in the X-API-Key header.",
            headers={"WWW-Authenticate": 'ApiKey realm="achievements", header="X-API-Key"'},
        )


def provide_player_service(db_session: DbSessionDep) -> PlayerService:
    return PlayerService(db_session)


def provide_achievement_service(db_session: DbSessionDep) -> AchievementService:
    return AchievementService(db_session)


def provide_stats_service(db_session: DbSessionDep) -> AchievementStatsService:
    return AchievementStatsService(db_session)


def player_read(player: Player) -> PlayerRead:
    return PlayerRead(
        id=player.id,
        name=player.name,
        language=player.language,  # type: ignore[arg-type]
        created_at=player.created_at,
    )


def achievement_read(achievement: Achievement, language: str) -> AchievementRead:
    text = achievement.text_in(language)
    return AchievementRead(
        id=achievement.id,
        points=achievement.points,
        language=text.language,  # type: ignore[arg-type]
        name=text.name,
        description=text.description,
        created_at=achievement.created_at,
    )


def award_read(award: PlayerAward, language: str) -> AwardRead:
    text = award.achievement.text_in(language)
    return AwardRead(
        achievement_id=award.achievement.id,
        points=award.achievement.points,
        language=text.language,  # type: ignore[arg-type]
        name=text.name,
        description=text.description,
        awarded_at=award.awarded_at,
    )


_DEPENDENCIES = {
    "players": Provide(provide_player_service, sync_to_thread=False),
    "achievements": Provide(provide_achievement_service, sync_to_thread=False),
    "stats": Provide(provide_stats_service, sync_to_thread=False),
}


class PlayerController(Controller):
    path = "/api/v1/players"
    opt = PUBLIC_ROUTE
    tags = ["achievements"]
    dependencies = _DEPENDENCIES

    @post(
        "/",
        summary="Register a player",
        description="The name is unique ignoring letter case (409 otherwise); "
        "language is `ru` or `en`.",
        guards=[require_admin_key],
        security=ADMIN_ONLY,
        responses={**UNAUTHORIZED, **INVALID, 409: problem_spec("The name is taken")},
    )
    async def create_player(self, players: PlayersDep, data: JSONBody[PlayerCreate]) -> PlayerRead:
        return player_read(await players.create_player(data.name, data.language))

    @get(
        "/",
        summary="List players, or find one by name",
        description="`name` matches exactly, ignoring letter case (0 or 1 item). "
        "Players are listed in registration order.",
    )
    async def list_players(
        self,
        players: PlayersDep,
        name: Annotated[
            str | None,
            Parameter(
                max_length=64,
                pattern=VISIBLE_TEXT_PATTERN,
                description="A player's name, any letter case: lists that player alone",
            ),
        ] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PlayerPage:
        """Registered players, oldest first, a page at a time."""
        items, total = await players.list_players(name=name, page=page_of(limit, offset))
        return PlayerPage(
            items=[player_read(p) for p in items], total=total, limit=limit, offset=offset
        )

    @get("/{player_id:uuid}", summary="A player", responses=NOT_FOUND)
    async def get_player(self, players: PlayersDep, player_id: FromPath[UUID]) -> PlayerRead:
        """One player by id: name, language and registration time."""
        return player_read(await players.get_player(player_id))

    @post(
        "/{player_id:uuid}/achievements",
        summary="Award an achievement to a player",
        description="`awarded_at` (ISO 8601 with a zone) defaults to now; a past time from "
        "2000-01-01 on is accepted (imports), an earlier or a future one is refused with "
        "422. A player holds each "
        "achievement at most once (409). The answer is in the player's language.",
        guards=[require_admin_key],
        security=ADMIN_ONLY,
        responses={
            **UNAUTHORIZED,
            **NOT_FOUND,
            **INVALID,
            409: problem_spec("The player already holds it"),
        },
    )
    async def award_achievement(
        self,
        players: PlayersDep,
        achievements: AchievementsDep,
        player_id: FromPath[UUID],
        data: JSONBody[AwardCreate],
    ) -> AwardRead:
        player = await players.get_player(player_id)
        award = await achievements.award_achievement(player, data.achievement_id, data.awarded_at)
        return award_read(award, player.language)

    @get(
        "/{player_id:uuid}/achievements",
        summary="A player's achievements, in the player's language",
        description="Newest award first. Each text is in the player's language, or in the "
        "other one when the achievement has no translation (`language` says which).",
        responses=NOT_FOUND,
    )
    async def list_player_achievements(
        self,
        players: PlayersDep,
        achievements: AchievementsDep,
        player_id: FromPath[UUID],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PlayerAwardPage:
        player = await players.get_player(player_id)
        awards, total, points = await achievements.player_awards(
            player, page=page_of(limit, offset)
        )
        return PlayerAwardPage(
            player=player_read(player),
            language=player.language,  # type: ignore[arg-type]
            items=[award_read(a, player.language) for a in awards],
            total=total,
            total_points=points,
            limit=limit,
            offset=offset,
        )


class AchievementController(Controller):
    path = "/api/v1/achievements"
    opt = PUBLIC_ROUTE
    tags = ["achievements"]
    dependencies = _DEPENDENCIES

    @post(
        "/",
        summary="Add an achievement to the catalogue",
        description="`points` is a positive integer; `translations` holds `ru`, `en` or both "
        "(`name`, `description`). A missing language falls back to the other one. A name "
        "is unique within its language, ignoring letter case (409 otherwise).",
        guards=[require_admin_key],
        security=ADMIN_ONLY,
        responses={
            **UNAUTHORIZED,
            **INVALID,
            409: problem_spec("An achievement of that name exists in that language"),
        },
    )
    async def create_achievement(
        self,
        request: Request[Any, Any, Any],
        achievements: AchievementsDep,
        data: JSONBody[AchievementCreate],  # noqa: ARG002 - declares the body for OpenAPI
    ) -> AchievementRead:
        strict = decode_strictly(await request.body(), AchievementCreate)  # "3" is no integer
        achievement = await achievements.create_achievement(strict.points, strict.translations)
        language = "en" if strict.translations.en is not None else "ru"
        return achievement_read(achievement, language)

    @get(
        "/",
        summary="The catalogue in one language",
        description="`lang` is `ru` or `en` (default `en`); an achievement without that "
        "translation is shown in the other one (`language` says which). Ordered by points, "
        "then by the name shown, ignoring letter case.",
        responses=INVALID,
    )
    async def list_achievements(
        self,
        achievements: AchievementsDep,
        lang: Annotated[Language, Parameter(description="The language to show: ru or en")] = "en",
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> AchievementPage:
        items, total = await achievements.list_achievements(
            language=lang, page=page_of(limit, offset)
        )
        return AchievementPage(
            items=[achievement_read(a, lang) for a in items],
            total=total,
            limit=limit,
            offset=offset,
            language=lang,
        )

    @get("/stats", summary="Statistics of the whole system", description=STATS_DESCRIPTION)
    async def get_stats(
        self,
        stats: StatsDep,
        streaks_limit: Annotated[
            int,
            Parameter(
                ge=1,
                le=MAX_STREAKS_PAGE,
                description=f"Streaks listed, 1 to {MAX_STREAKS_PAGE}",
            ),
        ] = STREAKS_PAGE_SIZE,
        streaks_offset: Offset = 0,
    ) -> AchievementStats:
        """Leaders, point gaps and seven-day streaks over all players (definitions above)."""
        return await stats.current_stats(streaks_limit=streaks_limit, streaks_offset=streaks_offset)

    @get(
        "/{achievement_id:uuid}",
        summary="One achievement",
        responses={**NOT_FOUND, **INVALID},
    )
    async def get_achievement(
        self,
        achievements: AchievementsDep,
        achievement_id: FromPath[UUID],
        lang: Annotated[Language, Parameter(description="The language to show: ru or en")] = "en",
    ) -> AchievementRead:
        """One catalogue entry in ``lang``, or in the other language when it has no
        translation (``language`` says which)."""
        return achievement_read(await achievements.get_achievement(achievement_id), lang)
