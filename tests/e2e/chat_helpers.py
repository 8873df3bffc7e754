"""Helpers of the /chat browser tests: accounts made through the API, signed in through the
page, and waits that poll a condition with a long deadline (the machine may be busy)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from playwright.async_api import Browser, Page, Request, expect

from tests.accounts.api import Account, register
from tests.messenger.api import alice_and_bob_in_a_direct_chat

LONG = 30_000  # ms: what Playwright's expect waits for
PASSWORD = "Quintet browser test 7391"


async def account(http: httpx.AsyncClient, name: str) -> Account:
    return await register(http, name=name, password=PASSWORD)


async def log_in(page: Page, url: str, who: Account) -> None:
    """Open /chat and sign in with the form; answers once the socket is live."""
    await page.goto(f"{url}/chat")
    await page.fill("#auth-phone", who.phone)
    await page.fill("#auth-password", who.password)
    await page.get_by_test_id("auth-submit").click()
    await is_live(page, who)


async def logged_in_pages(
    browser: Browser, url: str, *accounts: Account
) -> tuple[list[Page], list[list[str]]]:
    """For each account a page in a browser context of its own, logged in, and the errors
    each page reports (close a page's ``context`` when done)."""
    pages = [await (await browser.new_context()).new_page() for _ in accounts]
    errors = [page_errors(page) for page in pages]
    for page, who in zip(pages, accounts, strict=True):
        await log_in(page, url, who)
    return pages, errors


async def is_live(page: Page, who: Account) -> None:
    await expect(page.get_by_test_id("me-name")).to_contain_text(who.name, timeout=LONG)
    await expect(page.locator("#socket-status")).to_have_text("live", timeout=LONG)


async def open_chat(page: Page, title: str) -> None:
    await page.get_by_test_id("chat-list").get_by_text(title, exact=True).click()
    await expect(page.get_by_test_id("chat-title")).to_have_text(title, timeout=LONG)


async def send_in_page(page: Page, text: str) -> None:
    await page.get_by_test_id("message-input").fill(text)
    await page.get_by_test_id("send").click()
    await expect(page.get_by_test_id("messages")).to_contain_text(text, timeout=LONG)


async def eventually(
    condition: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"{what} never became true"
        await asyncio.sleep(0.25)


def page_errors(page: Page) -> list[str]:
    """Uncaught script errors of the page (a test ends by asserting there were none)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@contextmanager
def counting(page: Page, method: str, path: str) -> Iterator[list[str]]:
    """The URLs of the page's requests with this method and exact path (query aside)."""
    seen: list[str] = []

    def record(request: Request) -> None:
        bare = request.url.split("?", 1)[0]
        if request.method == method and bare.endswith(path):
            seen.append(request.url)

    page.on("request", record)
    try:
        yield seen
    finally:
        page.remove_listener("request", record)


def storage(page: Page, key: str) -> Awaitable[Any]:
    return page.evaluate("(key) => localStorage.getItem(key)", key)


async def direct_pair(http: httpx.AsyncClient) -> tuple[Account, Account, dict[str, Any]]:
    """Alice and Bob (with the browser tests' password), with the direct chat between them."""
    return await alice_and_bob_in_a_direct_chat(http, password=PASSWORD)
