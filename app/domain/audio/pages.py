"""The /audio page: create a user, upload a WAV and get the MP3 link, over the JSON API."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from app.lib.auth import PUBLIC_ROUTE
from app.lib.dependencies import SettingsDep


class AudioPageController(Controller):
    include_in_schema = False
    opt = PUBLIC_ROUTE

    @get("/audio")
    async def audio_page(self, settings: SettingsDep) -> Template:
        return Template(
            template_name="audio/index.html",
            context={"max_upload_mb": round(settings.max_upload_bytes / 1024 / 1024, 1)},
        )
