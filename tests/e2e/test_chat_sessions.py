"""Issue 12, item 1 (the page side): tabs of one user share one session. The tabs refresh
their tokens one at a time (Web Locks) and pick the new pair up from storage, so an access
token expiry logs nobody out; when the session really is gone, every tab says so and shows
the login form."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser, Response, expect

from app.asgi import create_asgi
from app.config import Settings
from tests.e2e.chat_helpers import (
    LONG,
    account,
    direct_pair,
    eventually,
    is_live,
    log_in,
    open_chat,
    page_errors,
    send_in_page,
    storage,
)
from tests.support import LiveServer, free_port, make_settings

pytestmark = pytest.mark.browser

TOKEN_TTL = 3  # seconds: every few seconds each tab's socket is closed for its expired token


@pytest.fixture
def short_tokens(migrated_database: Settings) -> Iterator[LiveServer]:
    server = LiveServer(
        create_asgi(make_settings(access_token_ttl_seconds=TOKEN_TTL)), free_port()
    ).start()
    yield server
    server.stop()


async def test_two_tabs_stay_signed_in_and_can_send_across_token_expiries(
    browser: Browser, short_tokens: LiveServer
) -> None:
    url = short_tokens.url
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        alice, _, _ = await direct_pair(http)

    context = await browser.new_context()
    refreshes: list[int] = []

    def record(response: Response) -> None:
        if response.url.endswith("/api/v1/auth/refresh"):
            refreshes.append(response.status)

    context.on("response", record)
    first = await context.new_page()
    second = await context.new_page()
    errors = [page_errors(first), page_errors(second)]
    await log_in(first, url, alice)
    await second.goto(f"{url}/chat")  # the same browser: signed in from storage
    await is_live(second, alice)
    for tab in (first, second):
        await open_chat(tab, "Bob")

    # Several expiries pass: each one closes both tabs' sockets at about the same moment.
    tokens: set[str] = set()

    async def rotated_three_times() -> bool:
        tokens.add(await storage(first, "quintet.access"))
        return len(tokens) >= 4

    await eventually(rotated_three_times, timeout=90, what="three token rotations")
    assert 401 not in refreshes, refreshes

    for tab in (first, second):
        await expect(tab.locator("#auth-view")).to_be_hidden()
        await expect(tab.locator("#socket-status")).to_have_text("live", timeout=LONG)
    await send_in_page(first, "Sent from the first tab")
    await expect(second.get_by_test_id("messages")).to_contain_text(
        "Sent from the first tab", timeout=LONG
    )
    await send_in_page(second, "Sent from the second tab")
    await expect(first.get_by_test_id("messages")).to_contain_text(
        "Sent from the second tab", timeout=LONG
    )
    assert 401 not in refreshes, refreshes
    assert errors == [[], []]
    await context.close()


async def test_a_revoked_session_shows_the_login_form_with_the_reason_in_every_tab(
    browser: Browser, short_tokens: LiveServer
) -> None:
    url = short_tokens.url
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        alice = await account(http, "Alice")
        context = await browser.new_context()
        first = await context.new_page()
        second = await context.new_page()
        errors = [page_errors(first), page_errors(second)]
        await log_in(first, url, alice)
        await second.goto(f"{url}/chat")
        await is_live(second, alice)

        # The session is revoked elsewhere (another device logs this login out).
        refresh_token = await storage(first, "quintet.refresh")
        response = await http.post("/api/v1/auth/logout", json={"refresh_token": refresh_token})
        assert response.status_code == 204

    for tab in (first, second):
        await expect(tab.locator("#auth-form")).to_be_visible(timeout=LONG)
        await expect(tab.get_by_test_id("auth-notice")).to_contain_text(
            "Your session has ended", timeout=LONG
        )
        await expect(tab.locator("#app-view")).to_be_hidden()
    assert await storage(first, "quintet.refresh") is None

    # Signing in again in one tab brings the other one back too.
    await first.fill("#auth-phone", alice.phone)
    await first.fill("#auth-password", alice.password)
    await first.get_by_test_id("auth-submit").click()
    await is_live(first, alice)
    await is_live(second, alice)
    assert errors == [[], []]
    await context.close()
