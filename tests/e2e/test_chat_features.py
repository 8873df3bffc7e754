"""Issue 12, the page: a phone-sized layout, dates on timestamps, profile and avatar
editing, group management (rename, add, remove, leave), and no inline script anywhere (the
page runs under a strict CSP)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, Page, expect

from tests.e2e.chat_helpers import (
    LONG,
    account,
    direct_pair,
    log_in,
    logged_in_pages,
    open_chat,
    page_errors,
    send_in_page,
)
from tests.messenger.api import allow_group_adds, group_chat, send_text
from tests.support import LiveServer

pytestmark = pytest.mark.browser


async def no_horizontal_scroll(page: Page) -> None:
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
    )
    assert max(widths[:2]) <= widths[2], widths


async def test_the_page_works_on_a_390px_phone(browser: Browser, live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice, bob, chat = await direct_pair(http)
        await send_text(http, alice, chat["id"], "A" * 300)  # no break opportunity at all

    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    errors = page_errors(page)
    await page.goto(f"{live_server.url}/chat")
    await expect(page.locator("#auth-form")).to_be_visible(timeout=LONG)
    await no_horizontal_scroll(page)
    await log_in(page, live_server.url, bob)
    await no_horizontal_scroll(page)

    await open_chat(page, "Alice")
    await expect(page.get_by_test_id("chat-list")).to_be_hidden()  # one column at a time
    box = page.get_by_test_id("message-input")
    await expect(box).to_be_visible()
    bounds = await box.bounding_box()
    assert bounds is not None
    assert bounds["x"] >= 0, bounds
    assert bounds["x"] + bounds["width"] <= 390, bounds
    assert bounds["width"] >= 150, bounds  # room to type
    assert bounds["y"] + bounds["height"] <= 844, bounds
    send_button = await page.get_by_test_id("send").bounding_box()
    assert send_button is not None
    assert send_button["x"] + send_button["width"] <= 390, send_button
    await send_in_page(page, "Typed on a phone")
    await no_horizontal_scroll(page)

    await page.get_by_test_id("back-button").click()
    await expect(page.get_by_test_id("chat-list")).to_be_visible()
    await no_horizontal_scroll(page)
    assert errors == []
    await context.close()


async def test_timestamps_show_the_time_today_and_the_date_before(
    browser: Browser, live_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice, bob, chat = await direct_pair(http)
        sent = await send_text(http, alice, chat["id"], "What time is it?")
    created = datetime.fromisoformat(sent["created_at"]).astimezone(UTC)

    today = await browser.new_context(locale="en-US", timezone_id="UTC")
    page = await today.new_page()
    await log_in(page, live_server.url, bob)
    await open_chat(page, "Alice")
    stamp = page.locator("#message-items .meta time")
    await expect(stamp).to_have_text(re.compile(r"^\d{1,2}:\d{2}( [AP]M)?$"), timeout=LONG)
    await today.close()

    # The same message seen three days later carries its date.
    later = await browser.new_context(locale="en-US", timezone_id="UTC")
    await later.clock.set_fixed_time(datetime.now(UTC) + timedelta(days=3))
    page = await later.new_page()
    await log_in(page, live_server.url, bob)
    await open_chat(page, "Alice")
    stamp = page.locator("#message-items .meta time")
    month = created.strftime("%b")
    await expect(stamp).to_have_text(
        re.compile(rf"^{month} {created.day} \d{{1,2}}:\d{{2}}( [AP]M)?$"), timeout=LONG
    )
    await expect(stamp).to_have_attribute("datetime", sent["created_at"])
    await later.close()


def png(size: int = 200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), "teal").save(out, format="PNG")
    return out.getvalue()


async def test_profile_and_avatar_are_edited_in_the_page(
    browser: Browser, live_server: LiveServer, tmp_path: Path
) -> None:
    avatar = tmp_path / "me.png"
    avatar.write_bytes(png())
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        bob = await account(http, "Bob")
        context = await browser.new_context()
        page = await context.new_page()
        errors = page_errors(page)
        await log_in(page, live_server.url, bob)

        await page.get_by_test_id("profile-button").click()
        await expect(page.get_by_test_id("profile-name")).to_have_value("Bob", timeout=LONG)
        await page.get_by_test_id("profile-name").fill("   ")
        await page.get_by_test_id("profile-save").click()
        await expect(page.get_by_test_id("profile-error")).to_have_text("The name cannot be blank.")
        await page.get_by_test_id("profile-name").fill("Robert")
        await page.get_by_test_id("profile-username").fill("robert_b")
        await page.get_by_test_id("profile-bio").fill("Plays the cello")
        await page.get_by_test_id("profile-save").click()
        await expect(page.get_by_test_id("me-name")).to_contain_text("Robert", timeout=LONG)
        await expect(page.locator("#profile-modal")).to_be_hidden(timeout=LONG)

        await page.get_by_test_id("profile-button").click()
        await page.get_by_test_id("avatar-input").set_input_files(avatar)
        await expect(page.get_by_test_id("me-avatar")).to_be_visible(timeout=LONG)
        await expect(page.get_by_test_id("me-avatar")).to_have_js_property("complete", True)
        assert await page.get_by_test_id("me-avatar").evaluate("img => img.naturalWidth") > 0

        me = (await http.get("/api/v1/users/me", headers=bob.headers)).json()
        assert (me["name"], me["username"], me["bio"]) == ("Robert", "robert_b", "Plays the cello")
        assert me["avatar"] is not None

        await page.get_by_test_id("avatar-remove").click()
        await expect(page.get_by_test_id("me-avatar")).to_be_hidden(timeout=LONG)
        me = (await http.get("/api/v1/users/me", headers=bob.headers)).json()
        assert me["avatar"] is None
        assert errors == []
        await context.close()


async def test_a_group_is_renamed_grown_shrunk_and_left_in_the_page(
    browser: Browser, live_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice = await account(http, "Alice")
        bob = await account(http, "Bob")
        carol = await account(http, "Carol")
        group = await group_chat(http, alice, [bob], title="Trip")
        await allow_group_adds(http, carol)  # a stranger to Alice until she adds her

        (alice_page, bob_page), errors = await logged_in_pages(browser, live_server.url, alice, bob)
        await open_chat(alice_page, "Trip")

        await alice_page.get_by_test_id("manage-button").click()
        await alice_page.get_by_test_id("rename-title").fill("Weekend trip")
        await alice_page.get_by_test_id("rename-submit").click()
        await expect(alice_page.get_by_test_id("chat-title")).to_have_text(
            "Weekend trip", timeout=LONG
        )
        await expect(
            bob_page.get_by_test_id("chat-list").get_by_text("Weekend trip", exact=True)
        ).to_be_visible(timeout=LONG)

        members = alice_page.get_by_test_id("manage-members")
        await alice_page.get_by_test_id("manage-search").fill(carol.phone)
        await alice_page.get_by_test_id("manage-search-button").click()
        await alice_page.get_by_test_id("manage-results").get_by_text("Carol").click()
        await expect(members).to_contain_text("Carol", timeout=LONG)
        await expect(alice_page.locator("#chat-subtitle")).to_contain_text("3 members")

        await members.locator("li", has_text="Carol").get_by_test_id("remove-member").click()
        await expect(members).not_to_contain_text("Carol", timeout=LONG)
        await expect(alice_page.locator("#chat-subtitle")).to_contain_text("2 members")
        carols = (await http.get("/api/v1/chats", headers=carol.headers)).json()
        assert [c["id"] for c in carols] == []
        await alice_page.get_by_text("Close", exact=True).click()
        await expect(alice_page.locator("#manage-modal")).to_be_hidden(timeout=LONG)

        # Bob leaves by himself; both pages follow.
        await open_chat(bob_page, "Weekend trip")
        await bob_page.get_by_test_id("manage-button").click()
        await expect(bob_page.get_by_test_id("rename-title")).to_be_hidden()  # not the owner
        bob_page.on("dialog", lambda dialog: dialog.accept())
        await bob_page.get_by_test_id("leave-button").click()
        await expect(bob_page.get_by_test_id("chat-title")).to_have_text(
            "Pick a chat", timeout=LONG
        )
        await expect(bob_page.get_by_test_id("chat-list")).not_to_contain_text("Weekend trip")
        await expect(alice_page.locator("#chat-subtitle")).to_contain_text(
            "1 members", timeout=LONG
        )
        bobs = (await http.get("/api/v1/chats", headers=bob.headers)).json()
        assert group["id"] not in [c["id"] for c in bobs]
        assert errors == [[], []]
        await alice_page.context.close()
        await bob_page.context.close()


async def test_the_page_has_no_inline_script_or_handler(client: httpx.AsyncClient) -> None:
    """A CSP of script-src 'self' would block any."""
    html = (await client.get("/chat")).text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert "javascript:" not in html
    script = (await client.get("/static/js/chat.js")).text
    assert "innerHTML" not in script
    assert "eval(" not in script


async def test_my_messages_are_edited_and_deleted_in_the_page(
    browser: Browser, live_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice, bob, _ = await direct_pair(http)

    (alice_page, bob_page), errors = await logged_in_pages(browser, live_server.url, alice, bob)
    await open_chat(alice_page, "Bob")
    await open_chat(bob_page, "Alice")
    await send_in_page(alice_page, "See you at 7")
    await send_in_page(alice_page, "Wrong chat, sorry")
    await expect(bob_page.get_by_test_id("messages")).to_contain_text("Wrong chat", timeout=LONG)
    # Only my own messages offer the actions.
    await expect(bob_page.get_by_test_id("edit-message")).to_have_count(0)

    first = alice_page.locator(".message", has_text="See you at 7")
    await first.get_by_test_id("edit-message").click()
    await first.get_by_test_id("edit-input").fill("See you at 8")
    await first.get_by_test_id("edit-save").click()
    edited = bob_page.locator(".message", has_text="See you at 8")
    await expect(edited).to_contain_text("edited", timeout=LONG)
    await expect(alice_page.locator(".message", has_text="See you at 8")).to_contain_text("edited")

    alice_page.on("dialog", lambda dialog: dialog.accept())
    wrong = alice_page.locator(".message", has_text="Wrong chat, sorry")
    await wrong.get_by_test_id("delete-message").click()
    await expect(bob_page.get_by_test_id("messages")).not_to_contain_text(
        "Wrong chat", timeout=LONG
    )
    await expect(bob_page.locator(".message").last).to_contain_text("Message deleted")
    await expect(alice_page.locator(".message").last).to_contain_text("Message deleted")
    assert errors == [[], []]
    await alice_page.context.close()
    await bob_page.context.close()
