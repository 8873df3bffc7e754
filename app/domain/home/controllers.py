"""The home menu: one page linking every service and the API docs."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from app.domain.board.services import BoardOwnerService
from app.lib.auth import PUBLIC_ROUTE
from app.lib.dependencies import DbSessionDep, SettingsDep
from app.lib.web import describe_duration, page


class HomeController(Controller):
    include_in_schema = False
    opt = PUBLIC_ROUTE

    @get("/")
    async def home(
        self, request: Request[Any, Any, Any], db_session: DbSessionDep, settings: SettingsDep
    ) -> Template:
        return page(
            request,
            "home.html",
            registration_open=not await BoardOwnerService(db_session).owner_exists(),
            message_lifetime=describe_duration(settings.board_message_ttl_seconds),
        )
