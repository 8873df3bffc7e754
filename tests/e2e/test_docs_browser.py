"""Swagger UI renders in Chromium from the app's own assets, with no network beyond it."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Request, expect

from tests.support import LiveServer

pytestmark = pytest.mark.browser


async def test_swagger_ui_renders_the_api_offline(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(base_url=live_server.url)
    page = await context.new_page()
    foreign: list[str] = []

    def record(request: Request) -> None:
        if not request.url.startswith(live_server.url) and not request.url.startswith("data:"):
            foreign.append(request.url)

    page.on("request", record)
    await page.goto("/docs/")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Quintet")
    await expect(page.locator(".opblock-tag-section").first).to_be_visible()
    assert foreign == []
    await context.close()
