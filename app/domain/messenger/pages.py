"""The messenger web page (seed 001: a page to try the service with)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from app.lib.auth import PUBLIC_ROUTE
from app.lib.dependencies import SettingsDep


class ChatPageController(Controller):
    include_in_schema = False
    opt = PUBLIC_ROUTE

    @get("/chat")
    async def chat_page(self, settings: SettingsDep) -> Template:
        """The page is static; it signs in and talks to the API and Socket.IO by itself. The
        upload limits are printed into it so that it can refuse a too-big file before
        sending it, naming the limit."""
        return Template(
            template_name="messenger/chat.html",
            context={
                "max_image_bytes": settings.max_image_bytes,
                "max_file_bytes": settings.max_file_bytes,
            },
        )
