"""A visitor walks the board in Chromium: register, post, see the countdown, delete, log out."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect
from redis.asyncio import Redis

from tests.board.test_pagination import seed
from tests.support import LiveServer

pytestmark = pytest.mark.browser


async def register_owner(page: Page) -> None:
    """Signs up the board's "owner" account from its register page."""
    await page.goto("/board/register")
    await page.get_by_label("Username").fill("owner")
    await page.get_by_label("Password", exact=True).fill("a long password")
    await page.get_by_label("Repeat the password").fill("a long password")
    await page.get_by_role("button", name="Create the account").click()


async def post_message(page: Page, text: str) -> None:
    await page.goto("/board/messages/new")
    await page.get_by_label("Message").fill(text)
    await page.get_by_role("button", name="Post").click()


async def test_owner_walks_the_whole_board_in_a_browser(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(base_url=live_server.url)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    await page.goto("/")
    await page.get_by_role("link", name="Register the owner").click()
    await page.get_by_label("Username").fill("owner")
    await page.get_by_label("Password", exact=True).fill("a long password")
    await page.get_by_label("Repeat the password").fill("a long password")
    await page.get_by_role("button", name="Create the account").click()
    await expect(page).to_have_url(f"{live_server.url}/board/messages")
    await expect(page.get_by_text("No live messages")).to_be_visible()

    await page.get_by_role("link", name="New message").first.click()
    await page.get_by_label("Message").fill("Hello from Chromium")
    await page.get_by_role("button", name="Post").click()
    item = page.locator("li.message", has_text="Hello from Chromium")
    await expect(item).to_be_visible()
    first = int(await item.locator(".ttl").inner_text())
    assert 290 <= first <= 300
    await expect(item.locator(".ttl")).not_to_have_text(str(first), timeout=3000)

    await item.get_by_role("button", name="Delete this message").click()
    await expect(page.get_by_text("Message deleted.")).to_be_visible()
    await expect(page.locator("li.message")).to_have_count(0)

    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(f"{live_server.url}/")
    await expect(page.get_by_role("link", name="Register the owner")).to_have_count(0)
    await page.goto("/board/messages")
    await expect(page).to_have_url(f"{live_server.url}/board/login?next=/board/messages")
    assert errors == []
    await context.close()


async def test_an_expiring_message_leaves_the_page_without_a_reload(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(base_url=live_server.url)
    page = await context.new_page()
    await register_owner(page)
    await post_message(page, "about to expire")
    item = page.locator("li.message", has_text="about to expire")
    await expect(item).to_be_visible()
    # Pretend the message was posted 299 s ago: the page's own countdown must remove it.
    await item.evaluate("el => el.dataset.expiresAt = String(Date.now() / 1000 + 1)")
    await expect(item).to_have_count(0, timeout=4000)
    await expect(page.get_by_text("No live messages")).to_be_visible()
    await context.close()


async def test_owner_pages_through_the_list_and_the_countdown_keeps_the_total(
    browser: Browser, live_server: LiveServer, redis_client: Redis
) -> None:
    context = await browser.new_context(base_url=live_server.url)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await register_owner(page)
    await expect(page).to_have_url(f"{live_server.url}/board/messages")
    await seed(redis_client, 60)  # page 1: the newest 50, page 2: the oldest 10
    await page.reload()
    count = page.locator("#message-count")
    await expect(count).to_have_text("60")
    await expect(page.locator("li.message")).to_have_count(50)

    pages = page.get_by_role("navigation", name="Message pages")
    await pages.get_by_role("link", name="Next page").click()
    await expect(page).to_have_url(f"{live_server.url}/board/messages?page=2")
    items = page.locator("li.message")
    await expect(items).to_have_count(10)
    await expect(items.first).to_contain_text("message 009")
    await expect(count).to_have_text("60")

    await items.first.get_by_role("button", name="Delete this message").click()
    await expect(page.get_by_text("Message deleted.")).to_be_visible()
    await expect(page).to_have_url(f"{live_server.url}/board/messages?page=2")
    await expect(items).to_have_count(9)
    await expect(count).to_have_text("59")

    # The countdown removes expiring rows and takes them off the total of every page.
    await items.first.evaluate("el => el.dataset.expiresAt = String(Date.now() / 1000 - 1)")
    await expect(items).to_have_count(8, timeout=4000)
    await expect(count).to_have_text("58")
    await page.evaluate(
        "() => document.querySelectorAll('li.message').forEach("
        "el => el.dataset.expiresAt = String(Date.now() / 1000 - 1))"
    )
    await expect(items).to_have_count(0, timeout=4000)
    await expect(count).to_have_text("50")
    back = page.get_by_role("link", name="Go to page 1")
    await expect(back).to_be_visible()
    await expect(page.get_by_text("No live messages")).to_be_hidden()
    await back.click()
    await expect(page).to_have_url(f"{live_server.url}/board/messages")
    await expect(page.locator("li.message")).to_have_count(50)
    assert errors == []
    await context.close()


def shifted_clock(seconds: int) -> str:
    """An init script that sets the page's clock ``seconds`` off (Date and Date.now)."""
    return f"""
(() => {{
  const shift = {seconds * 1000};
  const RealDate = Date;
  class ShiftedDate extends RealDate {{
    constructor(...args) {{
      if (args.length === 0) super(RealDate.now() + shift); else super(...args);
    }}
    static now() {{ return RealDate.now() + shift; }}
  }}
  window.Date = ShiftedDate;
}})();
"""


async def test_the_countdown_follows_the_server_s_clock_not_the_visitor_s(
    browser: Browser, live_server: LiveServer
) -> None:
    """A visitor whose clock is 6 minutes fast saw every message vanish at once; one whose
    clock is slow saw 474 s left of a 300 s life."""
    for index, shift in enumerate((+360, -360)):
        context = await browser.new_context(base_url=live_server.url)
        await context.add_init_script(shifted_clock(shift))
        page = await context.new_page()
        assert abs(await page.evaluate("Date.now() / 1000 - performance.timeOrigin / 1000")) > 300
        if index == 0:
            await register_owner(page)
            await post_message(page, "on the server's clock")
        else:
            await page.goto("/board/login")
            await page.get_by_label("Username").fill("owner")
            await page.get_by_label("Password", exact=True).fill("a long password")
            await page.get_by_role("button", name="Log in").click()
        await expect(page).to_have_url(f"{live_server.url}/board/messages")
        item = page.locator("li.message", has_text="on the server's clock")
        ttl = item.locator(".ttl")
        shown = await ttl.inner_text()
        # Ticks happen (the value changes) and stay within the 300 s life.
        await expect(ttl).not_to_have_text(shown, timeout=5000)
        await expect(item).to_be_visible()
        left = int(await ttl.inner_text())
        assert 240 <= left <= 300, (shift, left)
        await context.close()
