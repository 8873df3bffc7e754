"""The /achievements page: the catalogue in a chosen language, a player looked up by name
with their achievements in their own language, and the statistics."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import Template

from app.domain.achievements.controllers import (
    MAX_PAGE_SIZE,
    AchievementsDep,
    PlayersDep,
    StatsDep,
    achievement_read,
    award_read,
    provide_achievement_service,
    provide_player_service,
    provide_stats_service,
)
from app.domain.achievements.models import LANGUAGES


class AchievementsPageController(Controller):
    path = "/achievements"
    include_in_schema = False
    dependencies = {
        "players": Provide(provide_player_service, sync_to_thread=False),
        "achievements": Provide(provide_achievement_service, sync_to_thread=False),
        "stats": Provide(provide_stats_service, sync_to_thread=False),
    }

    @get("/")
    async def achievements_page(
        self,
        players: PlayersDep,
        achievements: AchievementsDep,
        stats: StatsDep,
        lang: Annotated[str, Parameter(max_length=8)] = "en",
        player: Annotated[str | None, Parameter(max_length=64)] = None,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> Template:
        language = lang if lang in LANGUAGES else "en"
        catalogue, total = await achievements.list_achievements(limit=MAX_PAGE_SIZE, offset=offset)
        context: dict[str, Any] = {
            "lang": language,
            "catalogue": [achievement_read(a, language) for a in catalogue],
            "catalogue_total": total,
            "offset": offset,
            "page_size": MAX_PAGE_SIZE,
            "query": (player or "").strip(),
            "stats": await stats.current_stats(),
        }
        if context["query"]:
            found = await players.find_by_name(context["query"])
            context["player"] = found
            if found is not None:
                awards, count, points = await achievements.player_awards(
                    found, limit=MAX_PAGE_SIZE, offset=0
                )
                context["awards"] = [award_read(a, found.language) for a in awards]
                context["award_count"] = count
                context["award_points"] = points
        return Template(template_name="achievements/index.html", context=context)
