"""The board's message list in pages (BOARD_PAGE_SIZE, newest first), through the real server
and Redis: sizes, order, the total badge, the page navigation, bad and past-the-end page
numbers, and deleting from a page."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.asgi import create_asgi
from app.config import ConfigurationError, Settings
from app.domain.board.services import BoardMessagePage, BoardMessageStore
from tests.board.test_board import register_owner
from tests.support import CSRF_INPUT, LiveServer, free_port

MESSAGE_TEXT = re.compile(r'<div class="message-text">([^<]*)</div>')
MESSAGE_ID = re.compile(r'id="message-([0-9a-f]{32})"')
BADGE = re.compile(r'id="message-count" data-total="(\d+)"[^>]*>(\d+)</span>')
PAGE_NAV = re.compile(r'<nav[^>]*aria-label="Message pages".*?</nav>', re.S)


async def seed(redis: Redis, count: int, start: int = 0) -> list[str]:
    """Post ``count`` messages through the store, oldest first: "message 000", "message 001"…"""
    store = BoardMessageStore(redis, ttl_seconds=300, max_live=10_000)
    texts = [f"message {index:03d}" for index in range(start, start + count)]
    for text in texts:
        await store.add(text)
    return texts


def shown(page: httpx.Response) -> list[str]:
    return [html.unescape(text) for text in MESSAGE_TEXT.findall(page.text)]


def badge(page: httpx.Response) -> int:
    match = BADGE.search(page.text)
    assert match, "no count badge"
    assert match.group(1) == match.group(2)
    return int(match.group(2))


def page_nav(page: httpx.Response) -> str:
    match = PAGE_NAV.search(page.text)
    assert match, "no page navigation"
    return match.group(0)


def link_hrefs(nav: str) -> dict[str, str]:
    """aria-label → href of every link in the navigation."""
    links = re.findall(r'<a class="page-link" href="([^"]+)"[^>]*aria-label="([^"]+)"', nav)
    return {label: href for href, label in links}


async def test_120_messages_make_three_pages_of_50_50_and_20_newest_first(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    texts = await seed(redis_client, 120)
    newest_first = texts[::-1]

    first = await client.get("/board/messages")
    second = await client.get("/board/messages?page=2")
    third = await client.get("/board/messages?page=3")

    assert [p.status_code for p in (first, second, third)] == [200, 200, 200]
    assert shown(first) == newest_first[:50]
    assert shown(second) == newest_first[50:100]
    assert shown(third) == newest_first[100:]
    assert [len(shown(p)) for p in (first, second, third)] == [50, 50, 20]
    # The badge counts every live message, not the page's.
    assert [badge(p) for p in (first, second, third)] == [120, 120, 120]
    assert "Page 2 of 3, newest first, 50 per page." in second.text
    assert (await client.get("/board/messages?page=1")).text.count('class="message-text"') == 50


async def test_page_navigation_links_previous_next_and_every_page(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    await seed(redis_client, 120)

    first = page_nav(await client.get("/board/messages"))
    assert link_hrefs(first) == {
        "Page 2": "/board/messages?page=2",
        "Page 3": "/board/messages?page=3",
        "Next page": "/board/messages?page=2",
    }
    assert re.search(r'class="page-item active" aria-current="page"><span[^>]*>1</span>', first)
    assert '<span class="page-link" aria-disabled="true">Previous</span>' in first

    middle = page_nav(await client.get("/board/messages?page=2"))
    assert link_hrefs(middle) == {
        "Previous page": "/board/messages",
        "Page 1": "/board/messages",
        "Page 3": "/board/messages?page=3",
        "Next page": "/board/messages?page=3",
    }
    assert re.search(r'aria-current="page"><span[^>]*>2</span>', middle)

    last = page_nav(await client.get("/board/messages?page=3"))
    assert link_hrefs(last) == {
        "Previous page": "/board/messages?page=2",
        "Page 1": "/board/messages",
        "Page 2": "/board/messages?page=2",
    }
    assert '<span class="page-link" aria-disabled="true">Next</span>' in last


async def test_one_page_of_messages_shows_no_page_navigation(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    await seed(redis_client, 50)
    full = await client.get("/board/messages")
    assert len(shown(full)) == 50
    assert not PAGE_NAV.search(full.text)
    assert "Page 1 of" not in full.text

    await seed(redis_client, 1, start=50)
    two_pages = await client.get("/board/messages")
    assert len(shown(two_pages)) == 50
    assert "Page 2" in page_nav(two_pages)
    assert shown(await client.get("/board/messages?page=2")) == ["message 000"]


def test_many_pages_link_the_ends_and_the_neighbours_with_gaps_between() -> None:
    def numbers(page: int, total: int) -> list[int | None]:
        return BoardMessagePage(messages=[], page=page, page_size=50, total=total).nav_pages()

    assert numbers(1, 10_000) == [1, 2, 3, None, 200]
    assert numbers(100, 10_000) == [1, None, 98, 99, 100, 101, 102, None, 200]
    assert numbers(5, 10_000) == [1, 2, 3, 4, 5, 6, 7, None, 200]  # page 2 fills its gap
    assert numbers(200, 10_000) == [1, None, 198, 199, 200]
    assert numbers(1, 120) == [1, 2, 3]
    assert numbers(9, 120) == [1, 2, 3]  # past the end: around the last page


async def test_a_page_past_the_end_shows_an_empty_state_with_a_link_to_the_last_page(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    await seed(redis_client, 120)
    for past in ("4", "999999999999999999"):
        page = await client.get(f"/board/messages?page={past}")
        assert page.status_code == 200
        assert shown(page) == []
        assert badge(page) == 120
        assert f"No messages left on page {past}: the board has 3 pages." in page.text
        assert re.search(r'href="/board/messages\?page=3">Go to page 3</a>', page.text)
        assert link_hrefs(page_nav(page))["Previous page"] == "/board/messages?page=3"


async def test_a_page_past_the_end_of_an_empty_board_links_back_to_page_1(
    client: httpx.AsyncClient,
) -> None:
    await register_owner(client)
    page = await client.get("/board/messages?page=2")
    assert page.status_code == 200
    assert badge(page) == 0
    assert re.search(
        r'<p id="empty-note" class="text-body-secondary ">No live messages\. Each one lives 300 '
        r'seconds\. <a href="/board/messages">Back to page 1</a>',
        page.text,
    )
    assert not PAGE_NAV.search(page.text)


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "1.5", "", "+2", " 2", "1" * 19])
async def test_a_bad_page_number_is_a_400_error_page(client: httpx.AsyncClient, bad: str) -> None:
    await register_owner(client)
    page = await client.get(
        "/board/messages", params={"page": bad}, headers={"accept": "text/html"}
    )
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert '<div class="alert alert-danger shadow-sm" role="alert">' in page.text
    assert "400 · Bad page number" in page.text
    assert "The page number must be a whole number from 1" in page.text

    api = await client.get("/board/messages", params={"page": bad})
    assert api.status_code == 400
    assert api.headers["content-type"].startswith("application/problem+json")
    assert api.json()["title"] == "Bad page number"


async def delete_from(client: httpx.AsyncClient, path: str, index: int) -> httpx.Response:
    """Press the Delete button of the ``index``-th message on ``path``, as a browser would:
    the delete form's fields (CSRF token, page) posted to the button's formaction."""
    page = await client.get(path)
    form = re.search(r'<form method="post" id="delete-form">(.*?)</form>', page.text, re.S)
    assert form, "no delete form"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(1)))
    assert CSRF_INPUT.search(form.group(1))
    message_id = MESSAGE_ID.findall(page.text)[index]
    assert f'formaction="/board/messages/{message_id}/delete"' in page.text
    return await client.post(f"/board/messages/{message_id}/delete", data=fields)


async def test_deleting_a_message_from_page_2_returns_to_page_2(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    await seed(redis_client, 120)

    response = await delete_from(client, "/board/messages?page=2", 0)

    assert response.status_code == 303
    assert response.headers["location"] == "/board/messages?page=2"
    page = await client.get(response.headers["location"])
    assert "Message deleted." in page.text
    assert badge(page) == 119
    # "message 069" is gone; the newest of page 3 moved up to fill page 2.
    assert shown(page) == [f"message {index:03d}" for index in range(68, 18, -1)]


async def test_deleting_the_last_message_of_the_last_page_returns_to_the_new_last_page(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    await seed(redis_client, 101)
    assert shown(await client.get("/board/messages?page=3")) == ["message 000"]

    response = await delete_from(client, "/board/messages?page=3", 0)

    assert response.status_code == 303
    assert response.headers["location"] == "/board/messages?page=2"
    assert badge(await client.get("/board/messages")) == 100


async def test_deleting_from_page_1_and_without_a_page_field_returns_to_page_1(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    await seed(redis_client, 60)
    assert (await delete_from(client, "/board/messages", 0)).headers["location"] == (
        "/board/messages"
    )
    page = await client.get("/board/messages?page=2")
    token = CSRF_INPUT.search(page.text)
    assert token
    message_id = MESSAGE_ID.findall(page.text)[0]
    for data in ({}, {"page": "nonsense"}):
        response = await client.post(
            f"/board/messages/{message_id}/delete", data={**data, "_csrf_token": token.group(1)}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/board/messages"
        message_id = MESSAGE_ID.findall((await client.get("/board/messages?page=2")).text)[0]


async def test_deleting_from_a_page_still_needs_the_csrf_token(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    await seed(redis_client, 60)
    message_id = MESSAGE_ID.findall((await client.get("/board/messages?page=2")).text)[0]
    forged = await client.post(f"/board/messages/{message_id}/delete", data={"page": "2"})
    assert forged.status_code == 403
    assert badge(await client.get("/board/messages")) == 60


async def test_expired_messages_leave_the_count_and_the_pages(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    await seed(redis_client, 120)
    # Age the 30 oldest as Redis would after 300 s: keys gone, index entries in the past.
    oldest = await redis_client.zrange("board:messages", 0, 29)
    for member in oldest:
        message_id = str(member)  # already a str: the client decodes responses
        await redis_client.delete(f"board:message:{message_id}")
        await redis_client.zadd("board:messages", {message_id: 1})

    first = await client.get("/board/messages")
    assert badge(first) == 90
    assert len(shown(await client.get("/board/messages?page=2"))) == 40
    assert (
        "No messages left on page 3: the board has 2 pages."
        in (await client.get("/board/messages?page=3")).text
    )
    assert await redis_client.zcard("board:messages") == 90


async def test_the_store_reads_only_the_keys_of_the_page(redis_client: Redis) -> None:
    store = BoardMessageStore(redis_client, ttl_seconds=300, max_live=10_000)
    texts = await seed(redis_client, 120)
    read: list[int] = []
    mget = redis_client.mget

    async def counting_mget(keys: Any, *args: Any) -> list[bytes | str | None]:
        read.append(len(keys))
        return await mget(keys, *args)

    redis_client.mget = counting_mget  # type: ignore[method-assign]
    page = await store.list_page(3, 50)
    past = await store.list_page(4, 50)

    assert read == [20]  # the past-the-end page reads no message at all
    assert [m.text for m in page.messages] == texts[19::-1]
    assert (page.total, page.page_count, past.total, past.messages) == (120, 3, 120, [])


async def test_the_page_size_comes_from_the_settings(
    migrated_database: Settings, redis_client: Redis
) -> None:
    server = LiveServer(
        create_asgi(replace(migrated_database, board_page_size=7)), free_port()
    ).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            await register_owner(client)
            await seed(redis_client, 20)
            sizes = [len(shown(await client.get(f"/board/messages?page={n}"))) for n in (1, 2, 3)]
            assert sizes == [7, 7, 6]
            assert (
                "Page 1 of 3, newest first, 7 per page."
                in (await client.get("/board/messages")).text
            )
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("raw", "error"), [("0", True), ("501", True), ("x", True), ("1", False), ("500", False)]
)
def test_board_page_size_must_be_between_1_and_500(
    monkeypatch: pytest.MonkeyPatch, raw: str, error: bool
) -> None:
    monkeypatch.setenv("BOARD_PAGE_SIZE", raw)
    if error:
        with pytest.raises(ConfigurationError, match="BOARD_PAGE_SIZE"):
            Settings.from_env()
    else:
        assert Settings.from_env().board_page_size == int(raw)


def test_board_page_size_defaults_to_50(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOARD_PAGE_SIZE", raising=False)
    assert Settings.from_env().board_page_size == 50
