"""The home menu: one page linking every service and the API docs."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import Provide
from litestar.response import Template

from app.domain.board.controllers import (
    OwnersDep,
    describe_duration,
    page,
    provide_owner_service,
    registration_open,
)
from app.lib.auth import PUBLIC_ROUTE
from app.lib.dependencies import SettingsDep


class HomeController(Controller):
    include_in_schema = False
    opt = PUBLIC_ROUTE
    dependencies = {"owners": Provide(provide_owner_service, sync_to_thread=False)}

    @get("/")
    async def home(
        self, request: Request[Any, Any, Any], owners: OwnersDep, settings: SettingsDep
    ) -> Template:
        return page(
            request,
            "home.html",
            registration_open=await registration_open(owners),
            message_lifetime=describe_duration(settings.board_message_ttl_seconds),
        )
