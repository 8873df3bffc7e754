"""Issue 12, the page: blocking a user from our direct chat and the privacy settings in the
profile (who finds me by phone, who may add me to groups), on a phone-sized screen."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.e2e.chat_helpers import (
    LONG,
    direct_pair,
    is_live,
    log_in,
    open_chat,
    page_errors,
)
from tests.e2e.test_chat_features import no_horizontal_scroll
from tests.support import LiveServer

pytestmark = pytest.mark.browser


async def test_a_user_blocks_from_the_page_and_the_privacy_settings_persist(
    browser: Browser, live_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice, bob, _ = await direct_pair(http)

        alice_context = await browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        bob_context = await browser.new_context()
        alice_page = await alice_context.new_page()
        bob_page = await bob_context.new_page()
        errors = [page_errors(alice_page), page_errors(bob_page)]
        await log_in(alice_page, live_server.url, alice)
        await log_in(bob_page, live_server.url, bob)
        await open_chat(bob_page, "Alice")
        await expect(bob_page.get_by_test_id("chat-subtitle")).to_have_text("online", timeout=LONG)

        # Alice blocks Bob from their chat's header.
        await open_chat(alice_page, "Bob")
        block_button = alice_page.get_by_test_id("block-button")
        await expect(block_button).to_have_text("Block")
        bounds = await block_button.bounding_box()
        assert bounds is not None
        assert bounds["x"] + bounds["width"] <= 390, bounds
        await no_horizontal_scroll(alice_page)
        alice_page.on("dialog", lambda dialog: dialog.accept())
        await block_button.click()
        await expect(block_button).to_have_text("Unblock", timeout=LONG)
        await expect(alice_page.get_by_test_id("block-note")).to_contain_text("You blocked Bob")
        blocked = (await http.get("/api/v1/users/me/blocked", headers=alice.headers)).json()
        assert [u["id"] for u in blocked] == [bob.id]

        # Bob's page now sees Alice offline, and his message is refused with a clear error.
        await expect(bob_page.get_by_test_id("chat-subtitle")).to_have_text("offline", timeout=LONG)
        await bob_page.get_by_test_id("message-input").fill("Are you there?")
        await bob_page.get_by_test_id("send").click()
        await expect(bob_page.get_by_test_id("notice")).to_have_text(
            "You cannot message this user", timeout=LONG
        )
        await expect(bob_page.get_by_test_id("message-input")).to_have_value("Are you there?")
        await expect(bob_page.get_by_test_id("messages")).not_to_contain_text("Are you there?")

        # Alice closes her groups to everyone; the setting is saved and survives a reload.
        await alice_page.get_by_test_id("profile-button").click()
        await expect(alice_page.get_by_test_id("blocked-list")).to_contain_text("Bob", timeout=LONG)
        await no_horizontal_scroll(alice_page)
        await alice_page.get_by_test_id("privacy-group-adds").select_option("nobody")
        await expect(alice_page.get_by_test_id("privacy-status")).to_have_text(
            "saved", timeout=LONG
        )
        me = (await http.get("/api/v1/users/me", headers=alice.headers)).json()
        assert me["group_adds"] == "nobody"
        await alice_page.reload()
        await is_live(alice_page, alice)
        await alice_page.get_by_test_id("profile-button").click()
        await expect(alice_page.get_by_test_id("privacy-group-adds")).to_have_value(
            "nobody", timeout=LONG
        )
        await expect(alice_page.get_by_test_id("privacy-phone-discovery")).to_have_value("everyone")

        # Unblocked from the list, Bob can write again.
        blocked_list = alice_page.get_by_test_id("blocked-list")
        await blocked_list.locator("li", has_text="Bob").get_by_test_id("unblock-user").click()
        await expect(blocked_list).to_have_text("Nobody.", timeout=LONG)
        assert (await http.get("/api/v1/users/me/blocked", headers=alice.headers)).json() == []
        await bob_page.get_by_test_id("send").click()
        await expect(bob_page.get_by_test_id("messages")).to_contain_text(
            "Are you there?", timeout=LONG
        )
        assert errors == [[], []]
        await alice_context.close()
        await bob_context.close()
