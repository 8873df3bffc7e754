"""Every page in Chromium under the Content Security Policy the app sends: no violation
(a refused script or style would be reported as 'Refused to ...'), and the pages' own
scripts still work: the board's countdown, the chat's sign-up and live socket, the audio
form, Swagger UI."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, expect

from tests.accounts.api import new_phone
from tests.e2e.test_chat_page import register_in_page
from tests.support import LiveServer

pytestmark = pytest.mark.browser

# Collects the violations the page itself sees, including those from before a listener on
# the console could have been attached.
REPORT_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


async def watch(page: Page) -> list[str]:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" and ("Refused to" in text or "Content Security" in text):
            problems.append(f"{page.url}: {text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    await page.add_init_script(REPORT_VIOLATIONS)
    return problems


async def violations(page: Page) -> list[str]:
    found: list[str] = await page.evaluate("window.__violations")
    return [f"{page.url}: {v}" for v in found]


async def test_every_page_works_under_the_content_security_policy(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(base_url=live_server.url)
    page = await context.new_page()
    problems = await watch(page)
    seen: list[str] = []

    async def visit(path: str) -> None:
        response = await page.goto(path)
        assert response is not None
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        seen.extend(await violations(page))

    await visit("/")
    await visit("/board/register")
    await page.get_by_label("Username").fill("owner")
    await page.get_by_label("Password", exact=True).fill("a long password")
    await page.get_by_label("Repeat the password").fill("a long password")
    await page.get_by_role("button", name="Create the account").click()
    await expect(page).to_have_url(f"{live_server.url}/board/messages")
    await visit("/board/messages/new")
    await page.get_by_label("Message").fill("under the policy")
    await page.get_by_role("button", name="Post").click()
    item = page.locator("li.message", has_text="under the policy")
    ttl = await item.locator(".ttl").inner_text()
    await expect(item.locator(".ttl")).not_to_have_text(ttl, timeout=5000)  # board.js runs
    seen.extend(await violations(page))
    # Bootstrap's script runs: the navigation's dropdown opens.
    await page.get_by_role("button", name="Board log out").wait_for()
    await (
        page.get_by_role("button", name="Board", exact=True)
        .or_(page.locator("a.dropdown-toggle", has_text="Board"))
        .first.click()
    )
    await expect(page.get_by_role("link", name="New message").first).to_be_visible()

    await visit("/board/login")
    await visit("/achievements")
    await visit("/audio")
    await page.fill("#audio-name", "Policy tester")
    await page.locator("#audio-user-form button[type=submit]").click()
    await expect(page.locator("#audio-user-result")).not_to_be_empty()  # audio.js runs
    seen.extend(await violations(page))
    await visit("/no/such/page")

    await visit("/docs/")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Quintet")
    await page.locator(".opblock").first.click()  # Swagger UI is interactive
    await expect(page.locator(".opblock-body").first).to_be_visible()
    seen.extend(await violations(page))

    chat = await context.new_page()
    problems += await watch(chat)
    await register_in_page(chat, live_server.url, "Policy", new_phone())  # socket goes live
    seen.extend(await violations(chat))

    assert problems == []
    assert seen == []
    await context.close()
