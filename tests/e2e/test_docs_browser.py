"""Swagger UI renders in Chromium from the app's own assets, with no network beyond it."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, ConsoleMessage, Request, expect

from tests.support import LiveServer

RENDER = 30_000  # ms: Swagger UI and the events page render slowly on a loaded machine

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
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "Quintet", timeout=RENDER
    )
    await expect(page.locator(".opblock-tag-section").first).to_be_visible(timeout=RENDER)
    assert foreign == []
    await context.close()


async def test_the_docs_link_to_the_rendered_socketio_events(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(base_url=live_server.url)
    foreign: list[str] = []
    refused: list[str] = []

    def record(request: Request) -> None:
        if not request.url.startswith((live_server.url, "data:")):
            foreign.append(request.url)

    def csp_violation(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    context.on("request", record)  # every page of the context, the new tab included
    context.on("console", csp_violation)
    page = await context.new_page()
    await page.goto("/docs/")
    link = page.locator(".swagger-ui .info .description a[href='/docs/asyncapi']")
    await expect(link).to_be_visible(timeout=RENDER)
    # Swagger UI opens the description's links in a new tab.
    async with context.expect_page() as opened:
        await link.click()
    events = await opened.value
    await expect(events).to_have_url(f"{live_server.url}/docs/asyncapi", timeout=RENDER)
    await expect(events.get_by_test_id("asyncapi-title")).to_contain_text(
        "Socket.IO", timeout=RENDER
    )
    await expect(events.locator("section[data-event='message:send']")).to_contain_text(
        "client → server"
    )
    await expect(events.locator("section[data-event='presence']")).to_contain_text(
        "server → client"
    )
    await events.get_by_test_id("back-to-docs").click()
    await expect(events.locator(".swagger-ui .info .title")).to_contain_text(
        "Quintet", timeout=RENDER
    )
    assert foreign == []
    assert refused == []
    await context.close()
