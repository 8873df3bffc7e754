"""The board (seed 000) through the real server, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import re

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.domain.board.models import BoardOwner
from tests.support import LiveServer, csrf_token, post_form

OWNER = {
    "username": "owner",
    "password": "correct horse battery",
    "password_confirm": "correct horse battery",
}


async def register_owner(client: httpx.AsyncClient) -> httpx.Response:
    return await post_form(client, "/board/register", OWNER)


async def login(client: httpx.AsyncClient) -> httpx.Response:
    return await post_form(
        client, "/board/login", {"username": OWNER["username"], "password": OWNER["password"]}
    )


async def post_message(client: httpx.AsyncClient, text: str) -> httpx.Response:
    return await post_form(client, "/board/messages/new", {"text": text})


async def owner_count(settings: Settings) -> int:
    engine = create_async_engine(settings.database_url)
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(BoardOwner))
    await engine.dispose()
    return int(count or 0)


async def test_home_menu_links_every_board_page_and_the_docs(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    for href in (
        "/board/register",
        "/board/login",
        "/board/messages",
        "/board/messages/new",
        "/docs/",
    ):
        assert f'href="{href}"' in page.text


async def test_registration_logs_the_owner_in_and_closes_registration(
    client: httpx.AsyncClient,
) -> None:
    response = await register_owner(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/board/messages"
    assert "Welcome" in (await client.get("/board/messages")).text

    async with httpx.AsyncClient(base_url=str(client.base_url)) as stranger:
        closed = await stranger.get("/board/register")
        assert closed.status_code == 403
        assert "Registration is closed" in closed.text
        home = await stranger.get("/")
        assert 'href="/board/register"' not in home.text


async def test_post_to_register_after_the_owner_exists_is_refused(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    await register_owner(client)
    async with httpx.AsyncClient(base_url=str(client.base_url)) as stranger:
        token = await csrf_token(stranger, "/board/login")
        response = await stranger.post(
            "/board/register",
            data={
                "username": "intruder",
                "password": "x" * 12,
                "password_confirm": "x" * 12,
                "_csrf_token": token,
            },
        )
    assert response.status_code == 403
    assert "Registration is closed" in response.text
    assert await owner_count(migrated_database) == 1


async def test_fifty_concurrent_registrations_create_exactly_one_owner(
    live_server: LiveServer, migrated_database: Settings
) -> None:
    async def attempt(index: int) -> int:
        async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
            token = await csrf_token(http, "/board/login")
            password = f"password-{index:04d}"
            response = await http.post(
                "/board/register",
                data={
                    "username": f"user{index}",
                    "password": password,
                    "password_confirm": password,
                    "_csrf_token": token,
                },
            )
            return response.status_code

    statuses = await asyncio.gather(*(attempt(i) for i in range(50)))
    assert statuses.count(303) == 1
    assert set(statuses) == {303, 403}
    assert await owner_count(migrated_database) == 1


async def test_registration_rejects_bad_input_with_a_message(client: httpx.AsyncClient) -> None:
    short = await post_form(
        client,
        "/board/register",
        {"username": "ab", "password": "short", "password_confirm": "short"},
    )
    assert short.status_code == 422
    assert "3 to 64 letters" in short.text
    mismatch = await post_form(
        client,
        "/board/register",
        {"username": "owner", "password": "long enough 1", "password_confirm": "long enough 2"},
    )
    assert mismatch.status_code == 422
    assert "the passwords differ" in mismatch.text


async def test_message_pages_redirect_anonymous_visitors_to_login(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/board/messages", "/board/messages/new"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/board/login")


async def test_forged_form_post_without_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    await register_owner(client)
    response = await client.post("/board/messages/new", data={"text": "forged"})
    assert response.status_code == 403
    wrong = await client.post(
        "/board/messages/new", data={"text": "forged", "_csrf_token": "not-the-token"}
    )
    assert wrong.status_code == 403
    assert "forged" not in (await client.get("/board/messages")).text


async def test_login_with_a_wrong_password_shows_an_error(client: httpx.AsyncClient) -> None:
    await register_owner(client)
    async with httpx.AsyncClient(base_url=str(client.base_url)) as other:
        response = await post_form(
            other, "/board/login", {"username": "owner", "password": "wrong password"}
        )
        assert response.status_code == 401
        assert "Wrong username or password" in response.text
        assert (await other.get("/board/messages")).status_code == 303


async def test_login_then_logout(client: httpx.AsyncClient) -> None:
    await register_owner(client)
    async with httpx.AsyncClient(base_url=str(client.base_url)) as other:
        assert (await login(other)).headers["location"] == "/board/messages"
        assert (await other.get("/board/messages")).status_code == 200
        logout = await post_form(other, "/board/messages", {}, action="/board/logout")
        assert logout.status_code == 303
        assert (await other.get("/board/messages")).status_code == 303


async def test_posted_message_lives_in_redis_for_300_seconds(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    response = await post_message(client, "hello <b>board</b>")
    assert response.status_code == 303
    keys = await redis_client.keys("board:message:*")
    assert len(keys) == 1
    ttl = await redis_client.ttl(keys[0])
    assert 298 <= ttl <= 300
    listing = await client.get("/board/messages")
    assert "hello &lt;b&gt;board&lt;/b&gt;" in listing.text
    assert re.search(r'<span class="ttl">(29[89]|300)</span>', listing.text)


async def test_expired_message_disappears_from_the_list(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    await post_message(client, "short-lived")
    (key,) = await redis_client.keys("board:message:*")
    message_id = str(key).rsplit(":", 1)[1]  # a str: the client decodes responses
    # Let Redis expire it now, as it would after 300 s, and age its index entry likewise.
    await redis_client.pexpire(key, 1)
    await redis_client.zadd("board:messages", {message_id: 1})
    await asyncio.sleep(0.05)
    listing = await client.get("/board/messages")
    assert "short-lived" not in listing.text
    assert await redis_client.zcard("board:messages") == 0


async def test_delete_removes_the_message(client: httpx.AsyncClient, redis_client: Redis) -> None:
    await register_owner(client)
    await post_message(client, "delete me")
    await post_message(client, "keep me")
    listing = await client.get("/board/messages")
    message_id = re.search(
        r'id="message-([0-9a-f]{32})"[^>]*>\s*<div class="flex-grow-1">\s*<div class="message-text">delete me',
        listing.text,
    )
    assert message_id
    token = await csrf_token(client, "/board/messages")
    response = await client.post(
        f"/board/messages/{message_id.group(1)}/delete", data={"_csrf_token": token}
    )
    assert response.status_code == 303
    listing = await client.get("/board/messages")
    assert "delete me" not in listing.text
    assert "keep me" in listing.text


async def test_deleting_an_unknown_message_is_a_404_page(client: httpx.AsyncClient) -> None:
    await register_owner(client)
    token = await csrf_token(client, "/board/messages")
    for message_id in ("0" * 32, "not-an-id"):
        response = await client.post(
            f"/board/messages/{message_id}/delete",
            data={"_csrf_token": token},
            headers={"accept": "text/html"},
        )
        assert response.status_code == 404
        assert "No such message" in response.text


async def test_empty_and_overlong_messages_are_refused_with_a_message(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    empty = await post_message(client, "   ")
    assert empty.status_code == 422
    assert "The message is empty" in empty.text
    long = await post_message(client, "x" * 1001)
    assert long.status_code == 422
    assert "the limit is 1000" in long.text
    assert await redis_client.keys("board:message:*") == []


async def test_unknown_api_route_answers_problem_details(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404
    assert {"type", "title", "detail"} <= body.keys()
    assert response.headers["x-request-id"]


async def test_login_never_adopts_a_planted_session_id(client: httpx.AsyncClient) -> None:
    await register_owner(client)
    async with httpx.AsyncClient(base_url=str(client.base_url)) as victim:
        victim.cookies.set("quintet_session", "attacker-chosen-session-id", domain="127.0.0.1")
        response = await login(victim)
        assert response.status_code == 303
        issued = victim.cookies.get("quintet_session")
        assert issued
        assert issued != "attacker-chosen-session-id"
    async with httpx.AsyncClient(base_url=str(client.base_url)) as attacker:
        attacker.cookies.set("quintet_session", "attacker-chosen-session-id", domain="127.0.0.1")
        assert (await attacker.get("/board/messages")).status_code == 303


async def test_login_rotates_the_session_id(client: httpx.AsyncClient) -> None:
    await register_owner(client)
    before = client.cookies.get("quintet_session")
    assert before
    response = await login(client)
    assert response.status_code == 303
    assert client.cookies.get("quintet_session") not in (None, before)


async def test_every_board_form_refuses_a_post_without_its_csrf_token(
    client: httpx.AsyncClient,
) -> None:
    await register_owner(client)
    for action in (
        "/board/register",
        "/board/login",
        "/board/logout",
        "/board/messages/new",
        f"/board/messages/{'0' * 32}/delete",
    ):
        response = await client.post(action, data={"username": "owner", "text": "x"})
        assert response.status_code == 403, action


async def test_login_attempts_are_rate_limited(client: httpx.AsyncClient) -> None:
    await register_owner(client)
    async with httpx.AsyncClient(base_url=str(client.base_url)) as guesser:
        statuses = [
            (
                await post_form(
                    guesser, "/board/login", {"username": "owner", "password": f"guess {i}"}
                )
            ).status_code
            for i in range(12)
        ]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
