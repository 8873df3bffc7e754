"""The messenger web page (seed 001: a page to try the service with)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template


class ChatPageController(Controller):
    include_in_schema = False

    @get("/chat")
    async def chat_page(self) -> Template:
        """The page is static; it signs in and talks to the API and Socket.IO by itself."""
        return Template(template_name="messenger/chat.html")
