"""The /chat page in Chromium: two people in two browser contexts talk live."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from app.config import Settings
from tests.accounts.api import new_phone
from tests.e2e.chat_helpers import LONG, account, counting, log_in, page_errors
from tests.messenger.api import silent_members
from tests.messenger.test_chat_list import direct_chats_as_rows
from tests.support import LiveServer

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        await browser.close()


async def register_in_page(page: Page, url: str, name: str, phone: str) -> None:
    await page.goto(f"{url}/chat")
    await page.get_by_test_id("tab-register").click()
    await page.fill("#auth-phone", phone)
    await page.fill("#auth-name", name)
    await page.fill("#auth-password", "correct horse battery")
    await page.get_by_test_id("auth-submit").click()
    await expect(page.get_by_test_id("me-name")).to_contain_text(name)
    await expect(page.locator("#socket-status")).to_have_text("live")


async def test_home_and_nav_link_the_messenger(client: httpx.AsyncClient) -> None:
    home = await client.get("/")
    assert 'href="/chat"' in home.text
    page = await client.get("/chat")
    assert page.status_code == 200
    assert "/static/vendor/socket.io/socket.io.min.js" in page.text
    script = await client.get("/static/vendor/socket.io/socket.io.min.js")
    assert script.status_code == 200
    assert "Socket.IO v4.8" in script.text[:200]


async def test_a_message_typed_in_one_browser_appears_in_the_other(
    browser: Browser, live_server: LiveServer
) -> None:
    alice_context = await browser.new_context()
    bob_context = await browser.new_context()
    alice = await alice_context.new_page()
    bob = await bob_context.new_page()
    bob_phone = new_phone()
    await register_in_page(alice, live_server.url, "Alice", new_phone())
    await register_in_page(bob, live_server.url, "Bob", bob_phone)

    # Alice finds Bob by phone and starts a direct chat.
    await alice.get_by_test_id("people-search").fill(bob_phone)
    await alice.get_by_test_id("people-search-button").click()
    await alice.get_by_test_id("people-results").get_by_text("Bob").click()
    await expect(alice.get_by_test_id("chat-title")).to_have_text("Bob")
    await alice.get_by_test_id("message-input").fill("Hello from Alice")
    await alice.get_by_test_id("send").click()
    await expect(alice.get_by_test_id("messages")).to_contain_text("Hello from Alice")

    # Bob's list shows the new chat with one unread message, without a reload.
    bob_chat = bob.get_by_test_id("chat-list").get_by_text("Alice", exact=True)
    await expect(bob_chat).to_be_visible()
    await expect(bob.get_by_test_id("chat-list").locator("[data-testid=unread]")).to_have_text("1")
    await bob_chat.click()
    await expect(bob.get_by_test_id("messages")).to_contain_text("Hello from Alice")

    # With the chat open, Bob sees Alice typing and then her next message live.
    await alice.get_by_test_id("message-input").press_sequentially("How are")
    await expect(bob.get_by_test_id("typing")).to_contain_text("Alice is typing")
    await alice.get_by_test_id("message-input").fill("How are you?")
    await alice.get_by_test_id("send").click()
    await expect(bob.get_by_test_id("messages")).to_contain_text("How are you?")

    # Bob likes it; Alice sees the count change.
    liked = bob.locator(".message", has_text="How are you?").locator(".like-button")
    await liked.click()
    await expect(liked).to_have_text("♥ 1")
    await expect(
        alice.locator(".message", has_text="How are you?").locator(".like-button")
    ).to_have_text("♡ 1")

    await alice_context.close()
    await bob_context.close()


async def test_a_user_in_more_chats_than_a_page_sees_them_all(
    browser: Browser,
    client: httpx.AsyncClient,
    live_server: LiveServer,
    migrated_database: Settings,
) -> None:
    """The list comes 50 chats at a time: the page asks for the next pages itself."""
    owner = await account(client, "Owner")
    peers = await silent_members(migrated_database, 60)
    await direct_chats_as_rows(migrated_database, owner, peers)
    context = await browser.new_context()
    page = await context.new_page()
    errors = page_errors(page)
    with counting(page, "GET", "/api/v1/chats") as requested:
        await log_in(page, live_server.url, owner)
        items = page.get_by_test_id("chat-list").locator("[data-testid=chat-item]")
        await expect(items).to_have_count(60, timeout=LONG)
    assert any("offset=50" in url for url in requested), requested
    for peer in (peers[0], peers[-1]):
        await expect(
            page.get_by_test_id("chat-list").get_by_text(peer.name, exact=True)
        ).to_be_visible()
    assert errors == []
    await context.close()
