"""The /achievements page: the catalogue in a chosen language, a player looked up by name
with their achievements in their own language, a leaderboard, a chart of awards per day
and the statistics. The page's own words follow ``lang`` too (``texts.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import Template

from app.config import DEV_ADMIN_API_KEY, Settings
from app.domain.achievements.controllers import (
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    AchievementsDep,
    PlayersDep,
    StatsDep,
    achievement_read,
    award_read,
    page_of,
    provide_achievement_service,
    provide_player_service,
    provide_stats_service,
)
from app.domain.achievements.models import LANGUAGES
from app.domain.achievements.schemas import DailyAwards
from app.domain.achievements.texts import PAGE_TEXTS
from app.lib.auth import PUBLIC_ROUTE
from app.lib.errors import VISIBLE_TEXT_PATTERN

CHART_WIDTH = 600
CHART_HEIGHT = 160
CHART_AXIS = 20  # room under the bars for the first and last date
PAGE_STREAKS = 20  # the streaks listed; the rest are counted


@dataclass(frozen=True)
class ChartBar:
    x: float
    y: float
    width: float
    height: float
    label: str


def awards_chart(days: list[DailyAwards], texts: dict[str, str]) -> dict[str, Any]:
    """Geometry of a bar chart (an inline SVG, drawn by the server) of awards per day."""
    most = max((d.awards for d in days), default=0)
    plot_height = CHART_HEIGHT - CHART_AXIS
    slot = CHART_WIDTH / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        height = plot_height * day.awards / most if most else 0.0
        if day.awards and height < 2:
            height = 2.0  # a day with awards stays visible next to a busy one
        bars.append(
            ChartBar(
                x=round(index * slot + slot * 0.1, 2),
                y=round(plot_height - height, 2),
                width=round(slot * 0.8, 2),
                height=round(height, 2),
                label=texts["chart_day"].format(day=day.day.isoformat(), count=day.awards),
            )
        )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "baseline": plot_height,
        "bars": bars,
        "first_day": days[0].day.isoformat() if days else "",
        "last_day": days[-1].day.isoformat() if days else "",
        "summary": texts["chart_summary"].format(
            total=sum(d.awards for d in days), days=len(days), max=most
        ),
    }


def page_link(lang: str, player: str, offset: int) -> str:
    """A link to the page that keeps the language and the player looked up."""
    query: dict[str, str | int] = {"lang": lang}
    if player:
        query["player"] = player
    if offset:
        query["offset"] = offset
    return f"/achievements?{urlencode(query)}"


class AchievementsPageController(Controller):
    path = "/achievements"
    opt = PUBLIC_ROUTE
    include_in_schema = False
    dependencies = {
        "players": Provide(provide_player_service, sync_to_thread=False),
        "achievements": Provide(provide_achievement_service, sync_to_thread=False),
        "stats": Provide(provide_stats_service, sync_to_thread=False),
    }

    @get("/")
    async def achievements_page(
        self,
        request: Request[Any, Any, Any],
        players: PlayersDep,
        achievements: AchievementsDep,
        stats: StatsDep,
        lang: Annotated[str, Parameter(max_length=8)] = "en",
        player: Annotated[
            str | None, Parameter(max_length=64, pattern=VISIBLE_TEXT_PATTERN)
        ] = None,
        offset: Annotated[int, Parameter(ge=0, le=MAX_OFFSET)] = 0,
    ) -> Template:
        settings: Settings = request.app.state.settings
        language = lang if lang in LANGUAGES else "en"
        texts = PAGE_TEXTS[language]
        query = (player or "").strip()
        catalogue, total = await achievements.list_achievements(
            language=language, page=page_of(MAX_PAGE_SIZE, offset)
        )
        summary = await stats.page_summary(datetime.now(UTC).date())
        context: dict[str, Any] = {
            "lang": language,
            "t": texts,
            "catalogue": [achievement_read(a, language) for a in catalogue],
            "catalogue_total": total,
            "offset": offset,
            "page_size": MAX_PAGE_SIZE,
            "query": query,
            "stats": await stats.current_stats(streaks_limit=PAGE_STREAKS),
            "leaderboard": summary.leaderboard,
            "chart": awards_chart(summary.awards_per_day, texts),
            "language_links": {code: page_link(code, query, offset) for code in LANGUAGES},
            "previous_link": page_link(language, query, max(offset - MAX_PAGE_SIZE, 0))
            if offset > 0
            else None,
            "next_link": page_link(language, query, offset + MAX_PAGE_SIZE)
            if offset + MAX_PAGE_SIZE < total
            else None,
            # Only the development default is shown; a configured key stays secret.
            "embedded_admin_key": DEV_ADMIN_API_KEY
            if settings.admin_api_key == DEV_ADMIN_API_KEY
            else None,
        }
        if query:
            found = await players.find_by_name(query)
            context["player"] = found
            if found is not None:
                awards, count, points = await achievements.player_awards(
                    found, page=page_of(MAX_PAGE_SIZE, 0)
                )
                context["awards"] = [award_read(a, found.language) for a in awards]
                context["award_count"] = count
                context["award_points"] = points
        return Template(template_name="achievements/index.html", context=context)
