"""Issue 12, the page: a reply shows its quote on both sides, and the ticks of my message in
a direct chat go sent, delivered (the other page received it), read (it opened the chat)
live."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.e2e.chat_helpers import LONG, direct_pair, log_in, open_chat, page_errors
from tests.messenger.api import send_text
from tests.support import LiveServer

pytestmark = pytest.mark.browser


async def test_a_reply_shows_its_quote_and_the_ticks_turn_to_read_live(
    browser: Browser, live_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice, bob, chat = await direct_pair(http)
        await send_text(http, bob, chat["id"], "Lunch at noon?")

    alice_context = await browser.new_context()
    bob_context = await browser.new_context()
    alice_page = await alice_context.new_page()
    bob_page = await bob_context.new_page()
    alice_errors, bob_errors = page_errors(alice_page), page_errors(bob_page)

    await log_in(alice_page, live_server.url, alice)
    await open_chat(alice_page, "Bob")
    question = alice_page.get_by_test_id("message").filter(has_text="Lunch at noon?")
    await question.get_by_test_id("reply-message").click()
    await expect(alice_page.get_by_test_id("reply-bar")).to_contain_text(
        "Bob: Lunch at noon?", timeout=LONG
    )
    await alice_page.get_by_test_id("message-input").fill("Yes, see you there")
    await alice_page.get_by_test_id("send").click()
    await expect(alice_page.get_by_test_id("reply-bar")).to_be_hidden(timeout=LONG)
    answer = alice_page.locator(".message.mine").filter(has_text="Yes, see you there")
    await expect(answer.get_by_test_id("message-quote")).to_have_text(
        "Bob: Lunch at noon?", timeout=LONG
    )
    ticks = answer.get_by_test_id("ticks")
    # Bob has no page open: sent, not delivered.
    await expect(ticks).to_have_attribute("data-state", "sent", timeout=LONG)
    await expect(ticks).to_have_text("✓")

    # Bob's page comes online and receives it: delivered, on Alice's page without a reload.
    await log_in(bob_page, live_server.url, bob)
    await expect(ticks).to_have_attribute("data-state", "delivered", timeout=LONG)
    await expect(ticks).to_have_text("✓✓")

    # Bob opens the chat: he sees the quote, and Alice's ticks turn to read.
    await open_chat(bob_page, "Alice")
    received = bob_page.get_by_test_id("message").filter(has_text="Yes, see you there")
    await expect(received.get_by_test_id("message-quote")).to_have_text(
        "Bob: Lunch at noon?", timeout=LONG
    )
    await expect(ticks).to_have_attribute("data-state", "read", timeout=LONG)

    # After a reload Alice's page still shows read (the chat view's markers).
    await alice_page.reload()
    await open_chat(alice_page, "Bob")
    answer = alice_page.locator(".message.mine").filter(has_text="Yes, see you there")
    await expect(answer.get_by_test_id("ticks")).to_have_attribute(
        "data-state", "read", timeout=LONG
    )
    assert alice_errors == []
    assert bob_errors == []
    await alice_context.close()
    await bob_context.close()
