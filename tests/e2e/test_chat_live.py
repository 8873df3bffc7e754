"""Issue 12, items 3 and 4 and the live parts of the page: catch-up after a reconnect
follows the cursor to the end and marks the chat read; events update the chat list in place
(no list reload per message); typing and presence are shown."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from playwright.async_api import Browser, Route, WebSocketRoute, expect

from tests.e2e.chat_helpers import (
    LONG,
    account,
    counting,
    direct_pair,
    eventually,
    log_in,
    open_chat,
    page_errors,
    send_in_page,
)
from tests.messenger.api import direct_chat, send_text
from tests.support import LiveServer

pytestmark = pytest.mark.browser


class SocketGate:
    """Stands between the page and the server's WebSocket: ``cut`` drops the live connection
    and refuses new ones (the network is gone) until ``restore``."""

    def __init__(self) -> None:
        self.open = True
        self.routes: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    async def handle(self, ws: WebSocketRoute) -> None:
        if not self.open:
            await ws.close()
            return
        self.routes.append((ws, ws.connect_to_server()))

    async def cut(self) -> None:
        self.open = False
        for page_side, server_side in self.routes:
            await server_side.close()
            await page_side.close()
        self.routes.clear()

    def restore(self) -> None:
        self.open = True


async def test_after_a_reconnect_all_130_missed_messages_are_shown_and_the_chat_is_read(
    browser: Browser, live_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice, bob, chat = await direct_pair(http)
        await send_text(http, alice, chat["id"], "Before the tunnel")

        context = await browser.new_context()
        page = await context.new_page()
        errors = page_errors(page)
        gate = SocketGate()
        await page.route_web_socket(re.compile(r".*/socket\.io/.*"), gate.handle)
        await log_in(page, live_server.url, bob)
        await open_chat(page, "Alice")
        await expect(page.get_by_test_id("messages")).to_contain_text("Before the tunnel")

        await gate.cut()
        await expect(page.locator("#socket-status")).to_have_text("offline", timeout=LONG)
        await send_in_page(page, "Sent in the tunnel")  # over REST while the socket is down
        for n in range(1, 131):
            await send_text(http, alice, chat["id"], f"Missed {n:03d}")
        gate.restore()

        await expect(page.locator("#socket-status")).to_have_text("live", timeout=LONG)
        rows = page.locator("#message-items [data-message-id]")
        await expect(rows).to_have_count(132, timeout=LONG)
        await expect(rows.last).to_contain_text("Missed 130")
        await expect(rows.nth(2)).to_contain_text("Missed 001")
        texts = await page.locator("#message-items [data-testid=message-text]").all_inner_texts()
        expected = ["Before the tunnel", "Sent in the tunnel"]
        assert texts == expected + [f"Missed {n:03d}" for n in range(1, 131)]
        # The open chat is read: no badge, and the server agrees.
        await expect(page.get_by_test_id("chat-list").get_by_test_id("unread")).to_have_count(0)

        async def read_on_the_server() -> bool:
            chats = (await http.get("/api/v1/chats", headers=bob.headers)).json()
            return int(chats[0]["unread_count"]) == 0

        await eventually(read_on_the_server, what="the chat read on the server")
        assert errors == []
        await context.close()


async def test_a_burst_of_messages_updates_the_list_in_place(
    browser: Browser, live_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice = await account(http, "Alice")
        bob = await account(http, "Bob")
        carol = await account(http, "Carol")
        chat = await direct_chat(http, alice, bob)

        context = await browser.new_context()
        page = await context.new_page()
        errors = page_errors(page)
        await log_in(page, live_server.url, bob)
        chat_list = page.get_by_test_id("chat-list")
        await expect(chat_list.get_by_text("Alice", exact=True)).to_be_visible(timeout=LONG)

        with counting(page, "GET", "/api/v1/chats") as list_fetches:
            for n in range(1, 31):
                await send_text(http, alice, chat["id"], f"Burst {n:02d}")
            alice_item = chat_list.locator("[data-chat-id]", has_text="Alice")
            await expect(alice_item.get_by_test_id("unread")).to_have_text("30", timeout=LONG)
            await expect(alice_item).to_contain_text("Burst 30")

            # A chat the page has never seen arrives with its first message, on top.
            carols = await direct_chat(http, carol, bob)
            await send_text(http, carol, carols["id"], "Hi, it is Carol")
            carol_item = chat_list.locator("[data-chat-id]", has_text="Carol")
            await expect(carol_item.get_by_test_id("unread")).to_have_text("1", timeout=LONG)
            await expect(carol_item).to_contain_text("Hi, it is Carol")
            await expect(chat_list.locator("[data-chat-id]").first).to_contain_text("Carol")

            # With the chat open, a burst is shown and read as it comes.
            await open_chat(page, "Alice")
            await expect(alice_item.get_by_test_id("unread")).to_have_count(0, timeout=LONG)
            for n in range(31, 61):
                await send_text(http, alice, chat["id"], f"Burst {n:02d}")
            await expect(page.locator("#message-items [data-message-id]").last).to_contain_text(
                "Burst 60", timeout=LONG
            )
            await expect(alice_item).to_contain_text("Burst 60")
            await expect(chat_list.locator("[data-chat-id]").first).to_contain_text("Alice")
            await expect(alice_item.get_by_test_id("unread")).to_have_count(0, timeout=LONG)
        assert len(list_fetches) <= 2, list_fetches
        assert errors == []
        await context.close()


async def test_a_list_read_before_a_message_keeps_the_count_its_event_made(
    browser: Browser, live_server: LiveServer
) -> None:
    """The list reload after a reconnect was read before a message whose message:new the
    page counted while the list was on its way: the older list must not undo that count
    (nor make the next message count from zero)."""
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice, bob, chat = await direct_pair(http)
        context = await browser.new_context()
        page = await context.new_page()
        errors = page_errors(page)
        gate = SocketGate()
        await page.route_web_socket(re.compile(r".*/socket\.io/.*"), gate.handle)
        await log_in(page, live_server.url, bob)
        alice_item = page.get_by_test_id("chat-list").locator("[data-chat-id]", has_text="Alice")
        await expect(alice_item).to_contain_text("No messages yet", timeout=LONG)

        read, release = asyncio.Event(), asyncio.Event()

        async def hold_the_list(route: Route) -> None:
            response = await route.fetch()  # the server reads the list now
            read.set()
            await release.wait()
            await route.fulfill(response=response)

        await gate.cut()
        await expect(page.locator("#socket-status")).to_have_text("offline", timeout=LONG)
        await page.route(re.compile(r".*/api/v1/chats\?offset=0$"), hold_the_list)
        gate.restore()
        await asyncio.wait_for(read.wait(), timeout=60)  # the reconnect reloads the list
        await send_text(http, alice, chat["id"], "While the list was on its way")
        await expect(alice_item.get_by_test_id("unread")).to_have_text("1", timeout=LONG)
        release.set()

        await send_text(http, alice, chat["id"], "After the list came")
        await expect(alice_item).to_contain_text("After the list came", timeout=LONG)
        await expect(alice_item.get_by_test_id("unread")).to_have_text("2")
        assert errors == []
        await context.close()


async def test_typing_and_presence_are_shown(browser: Browser, live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice, bob, _ = await direct_pair(http)

    bob_context = await browser.new_context()
    bob_page = await bob_context.new_page()
    await log_in(bob_page, live_server.url, bob)
    await open_chat(bob_page, "Alice")
    dot = bob_page.get_by_test_id("chat-list").locator(".online-dot")
    await expect(bob_page.locator("#chat-subtitle")).to_have_text("offline")
    await expect(dot).not_to_have_class(re.compile(r"\bon\b"))

    alice_context = await browser.new_context()
    alice_page = await alice_context.new_page()
    await log_in(alice_page, live_server.url, alice)
    await expect(bob_page.locator("#chat-subtitle")).to_have_text("online", timeout=LONG)
    await expect(dot).to_have_class(re.compile(r"\bon\b"))

    await open_chat(alice_page, "Bob")
    await alice_page.get_by_test_id("message-input").press_sequentially("Typing a li")
    await expect(bob_page.get_by_test_id("typing")).to_have_text("Alice is typing…", timeout=LONG)
    await send_in_page(alice_page, "Typed it")
    await expect(bob_page.get_by_test_id("messages")).to_contain_text("Typed it", timeout=LONG)
    await expect(bob_page.get_by_test_id("typing")).to_have_text("")

    await alice_context.close()  # her only tab goes away
    await expect(bob_page.locator("#chat-subtitle")).to_have_text("offline", timeout=LONG)
    await expect(dot).not_to_have_class(re.compile(r"\bon\b"))
    await bob_context.close()
