"""Issue 12, the page: invitations into groups (adds the invitee's ``group_adds`` setting
refused) are listed above the chats, arrive live, and are accepted or declined there."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.e2e.chat_helpers import LONG, account, log_in, page_errors
from tests.support import LiveServer

pytestmark = pytest.mark.browser


async def create_group(
    http: httpx.AsyncClient, owner_headers: dict[str, str], title: str, member: str
) -> str:
    response = await http.post(
        "/api/v1/chats",
        headers=owner_headers,
        json={"type": "group", "title": title, "member_ids": [member]},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_the_invitee_accepts_one_invitation_and_declines_another_in_the_page(
    browser: Browser, live_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        owner = await account(http, "Olga")
        carol = await account(http, "Carol")  # a stranger to Olga: invited, not added
        club = await create_group(http, owner.headers, "Book club", carol.id)

        context = await browser.new_context()
        page = await context.new_page()
        errors = page_errors(page)
        await log_in(page, live_server.url, carol)
        invitations = page.get_by_test_id("invitations")
        waiting = invitations.get_by_test_id("invitation").filter(has_text="Book club")
        await expect(waiting).to_contain_text("Invited by Olga · 1 member", timeout=LONG)
        await expect(page.get_by_test_id("chat-list")).not_to_contain_text("Book club")

        # A second one arrives while the page is open (invitation:new).
        await create_group(http, owner.headers, "Spam corner", carol.id)
        spam = invitations.get_by_test_id("invitation").filter(has_text="Spam corner")
        await expect(spam).to_be_visible(timeout=LONG)
        await spam.get_by_test_id("invitation-decline").click()
        await expect(spam).to_have_count(0, timeout=LONG)

        await waiting.get_by_test_id("invitation-accept").click()
        await expect(
            page.get_by_test_id("chat-list").get_by_text("Book club", exact=True)
        ).to_be_visible(timeout=LONG)
        await expect(page.get_by_test_id("chat-title")).to_have_text("Book club", timeout=LONG)
        await expect(invitations).to_be_hidden(timeout=LONG)

        left = (await http.get("/api/v1/invitations", headers=carol.headers)).json()
        assert left == []
        group = (await http.get(f"/api/v1/chats/{club}", headers=owner.headers)).json()
        assert carol.id in {m["id"] for m in group["members"]}
        assert errors == []
        await context.close()
