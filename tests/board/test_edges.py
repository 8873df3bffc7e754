"""The board at its edges (issue 13, issue 14 item 1): forwarded headers, the throttle and
its setting, cookies over plain http, line breaks, anonymous views, the texts a user reads,
CSRF refusals and ended sessions. Through real servers, PostgreSQL and Redis."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import httpx
import pytest
from redis.asyncio import Redis

from app.asgi import create_asgi
from app.config import ConfigurationError, Settings
from tests.board.test_board import OWNER, login, post_message, register_owner
from tests.support import (
    CSRF_INPUT,
    LiveServer,
    csrf_token,
    free_port,
    local_trivia_upstream,
    make_settings,
    post_form,
)

HTML = {"Accept": "text/html"}


def start(port: int | None = None, **overrides: object) -> LiveServer:
    settings = make_settings(trivia_api_url=local_trivia_upstream(), **overrides)
    return LiveServer(create_asgi(settings), port or free_port()).start()


@pytest.fixture(scope="module")
def behind_proxy(migrated_database: Settings) -> Iterator[LiveServer]:
    """The app behind a proxy on 127.0.0.1, with a low throttle and a 90 s message life."""
    server = start(
        trusted_proxies=("127.0.0.1",), login_attempts_per_minute=3, board_message_ttl_seconds=90
    )
    yield server
    server.stop()


def token_in(page: httpx.Response) -> str:
    match = CSRF_INPUT.search(page.text)
    assert match, page.text[:500]
    return match.group(1)


async def guess(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    token = await csrf_token(client, "/board/login")
    return await client.post(
        "/board/login",
        data={"username": OWNER["username"], "password": "a wrong guess", "_csrf_token": token},
        headers={**HTML, **headers},
    )


# --- forwarded headers and the throttle ------------------------------------------------------


async def test_rotating_forwarded_headers_from_an_untrusted_peer_do_not_escape_the_throttle(
    client: httpx.AsyncClient,
) -> None:
    await register_owner(client)
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as guesser:
        statuses = [
            (
                await guess(
                    guesser,
                    {
                        "X-Forwarded-For": f"203.0.113.{i}",
                        "Forwarded": f"for=198.51.100.{i}",
                        "X-Real-IP": f"192.0.2.{i}",
                    },
                )
            ).status_code
            for i in range(12)
        ]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]


async def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled_and_told_when(
    behind_proxy: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=behind_proxy.url, timeout=30) as owner:
        await register_owner(owner)
    async with httpx.AsyncClient(base_url=behind_proxy.url, timeout=30) as guesser:
        # LOGIN_ATTEMPTS_PER_MINUTE=3 for this server: the fourth attempt is refused.
        # A client-written entry at the left of the chain does not make a new client.
        chains = ["203.0.113.7", "10.9.9.9, 203.0.113.7", "203.0.113.7", "1.1.1.1, 203.0.113.7"]
        responses = [await guess(guesser, {"X-Forwarded-For": chain}) for chain in chains]
        assert [r.status_code for r in responses] == [401, 401, 401, 429]
        refused = responses[-1]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["content-type"].startswith("text/html")
        assert f"try again in {refused.headers['Retry-After']} seconds" in refused.text
        # Another client behind the same proxy has its own budget, in either header.
        other = await guess(guesser, {"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 401
        rfc = [await guess(guesser, {"Forwarded": 'for="198.51.100.9"'}) for _ in range(4)]
        assert [r.status_code for r in rfc] == [401, 401, 401, 429]


# --- cookies over plain http -----------------------------------------------------------------


def production(public_base_url: str, port: int) -> LiveServer:
    return start(
        port=port,
        env="production",
        public_base_url=public_base_url,
        secret_key=secrets.token_urlsafe(48),
        admin_api_key=secrets.token_urlsafe(32),
    )


def set_cookie(response: httpx.Response, name: str) -> str:
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}=")]
    return cookie


async def test_production_over_plain_http_registers_the_owner(
    migrated_database: Settings,
) -> None:
    """Issue 14 item 1: APP_ENV=production behind http://… (the kind ingress) made the
    cookies Secure, the browser never sent them back and registration answered 403."""
    port = free_port()
    server = production(f"http://127.0.0.1:{port}", port)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as browser:
            form = await browser.get("/board/register")
            assert "secure" not in set_cookie(form, "quintet_csrf").lower()
            response = await browser.post(
                "/board/register", data={**OWNER, "_csrf_token": token_in(form)}
            )
            assert response.status_code == 303, response.text[:300]
            assert "secure" not in set_cookie(response, "quintet_session").lower()
            assert (await browser.get("/board/messages")).status_code == 200
    finally:
        server.stop()


async def test_with_an_https_public_url_the_cookies_are_secure(
    migrated_database: Settings,
) -> None:
    server = production("https://board.example", free_port())
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as browser:
            form = await browser.get("/board/register")
            csrf = set_cookie(form, "quintet_csrf")
            assert "; secure" in csrf.lower()
            # httpx keeps Secure cookies off plain http, as a browser would: send it by hand.
            response = await browser.post(
                "/board/register",
                data={**OWNER, "_csrf_token": token_in(form)},
                headers={"Cookie": csrf.split(";", 1)[0]},
            )
            assert response.status_code == 303
            assert "; secure" in set_cookie(response, "quintet_session").lower()
    finally:
        server.stop()


def test_cookie_secure_follows_the_public_url_unless_set() -> None:
    assert Settings(env="production").secure_cookies
    assert not Settings(
        env="production", public_base_url="http://quintet.localtest.me"
    ).secure_cookies
    assert Settings(public_base_url="https://quintet.example").secure_cookies
    assert not Settings().secure_cookies
    assert not Settings(env="production", cookie_secure=False).secure_cookies
    assert Settings(public_base_url="http://x", cookie_secure=True).secure_cookies


def test_trusted_proxies_and_cookie_secure_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")
    monkeypatch.setenv("COOKIE_SECURE", "false")
    settings = Settings.from_env()
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1", "::1")
    assert settings.cookie_secure is False
    monkeypatch.setenv("TRUSTED_PROXIES", "nginx")
    with pytest.raises(ConfigurationError, match="TRUSTED_PROXIES"):
        Settings.from_env()


# --- messages ----------------------------------------------------------------------------------


async def test_a_message_of_1000_characters_with_crlf_line_breaks_is_accepted(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    # What a browser sends for 100 lines in a textarea with maxlength=1000.
    text = "\r\n".join(["x" * 9] * 100) + "y"  # 1000 characters once a break counts as one
    assert (await post_message(client, text)).status_code == 303
    (key,) = await redis_client.keys("board:message:*")
    stored = await redis_client.get(key)
    assert stored
    assert "\\r" not in stored  # JSON would write a CR as \r
    listing = await client.get("/board/messages")
    assert "x" * 9 + "\n" + "x" * 9 in listing.text
    longer = await post_message(client, text + "z")
    assert longer.status_code == 422
    assert "1001 characters" in longer.text


async def test_the_confirmation_and_home_say_the_configured_lifetime(
    behind_proxy: LiveServer, redis_client: Redis
) -> None:
    async with httpx.AsyncClient(base_url=behind_proxy.url, timeout=30) as owner:
        await register_owner(owner)
        assert (await post_message(owner, "ninety seconds")).status_code == 303
        listing = await owner.get("/board/messages")
        assert "Message posted; it expires in 90 seconds." in listing.text
        assert "5 minutes" not in listing.text
        (key,) = await redis_client.keys("board:message:*")
        assert 85 <= await redis_client.ttl(key) <= 90
        assert "vanish after 90 seconds" in (await owner.get("/")).text


# --- sessions ----------------------------------------------------------------------------------


async def test_anonymous_views_store_no_session_and_the_login_form_still_works(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as owner:
        await register_owner(owner)
    before = await redis_client.keys("quintet:session*")
    assert len(before) == 1  # the owner's, from the registration
    for number in range(60):
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as visitor:
            page = await visitor.get("/" if number % 2 else "/board/login")
            assert page.status_code == 200
            assert "quintet_session" not in page.headers.get("set-cookie", "")
    assert await redis_client.keys("quintet:session*") == before
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as visitor:
        assert (await login(visitor)).status_code == 303
        assert (await visitor.get("/board/messages")).status_code == 200
    assert len(await redis_client.keys("quintet:session*")) == 2


async def test_error_pages_and_the_home_card_know_the_logged_in_owner(
    client: httpx.AsyncClient,
) -> None:
    await register_owner(client)
    home = await client.get("/")
    assert 'href="/board/login"' not in home.text
    assert "Logged in as the owner" in home.text
    unknown_page = await client.get("/no/such/page", headers=HTML)
    assert unknown_page.status_code == 404
    token = await csrf_token(client, "/board/messages")
    unknown_message = await client.post(
        f"/board/messages/{'0' * 32}/delete", data={"_csrf_token": token}, headers=HTML
    )
    assert unknown_message.status_code == 404
    closed = await client.get("/board/register")
    for response in (unknown_page, unknown_message, closed):
        assert "Board log in" not in response.text
        assert "Board log out" in response.text
        assert 'href="/board/login"' not in response.text


async def test_a_csrf_refusal_says_what_happened_and_keeps_the_text(
    client: httpx.AsyncClient,
) -> None:
    await register_owner(client)
    refused = await client.post(
        "/board/messages/new",
        data={"text": "typed with care", "_csrf_token": "stale"},
        headers=HTML,
    )
    assert refused.status_code == 403
    assert "CSRF" not in refused.text
    assert "Nothing was changed" in refused.text
    assert re.search(r"<textarea[^>]*>typed with care</textarea>", refused.text)
    again = await client.post(
        "/board/messages/new", data={"text": "typed with care", "_csrf_token": token_in(refused)}
    )
    assert again.status_code == 303
    assert "typed with care" in (await client.get("/board/messages")).text


async def test_a_login_refused_for_lost_cookies_keeps_the_username_and_sets_a_new_token(
    client: httpx.AsyncClient,
) -> None:
    await register_owner(client)
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as visitor:
        refused = await visitor.post(
            "/board/login",
            data={"username": "owner", "password": OWNER["password"], "_csrf_token": "gone"},
            headers=HTML,
        )
        assert refused.status_code == 403
        assert 'value="owner"' in refused.text
        assert visitor.cookies.get("quintet_csrf")  # the fresh token's cookie came with it
        again = await visitor.post(
            "/board/login",
            data={
                "username": "owner",
                "password": OWNER["password"],
                "_csrf_token": token_in(refused),
            },
        )
        assert again.status_code == 303


async def test_a_csrf_pair_from_another_browser_is_refused_with_the_owner_s_session(
    client: httpx.AsyncClient,
) -> None:
    """The attacker holds a valid cookie-and-token pair of his own and plants the cookie in
    the owner's browser: with the owner's session the pair is not the session's, refused."""
    await register_owner(client)
    session = client.cookies.get("quintet_session")
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as attacker:
        attacker_token = await csrf_token(attacker, "/board/login")
        attacker_cookie = attacker.cookies.get("quintet_csrf")
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as victim:
        forged = await victim.post(
            "/board/messages/new",
            data={"text": "forged", "_csrf_token": attacker_token},
            headers={"Cookie": f"quintet_session={session}; quintet_csrf={attacker_cookie}"},
        )
    assert forged.status_code == 403
    listing = await client.get("/board/messages")
    assert listing.status_code == 200
    assert "forged" not in listing.text


async def test_posting_after_the_session_ended_keeps_the_text_through_the_login(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await register_owner(client)
    token = await csrf_token(client, "/board/messages/new")
    for key in await redis_client.keys("quintet:session*"):
        await redis_client.delete(key)  # it expired, or the owner logged out in another tab
    ended = await client.post(
        "/board/messages/new",
        data={"text": "line one\r\nline two", "_csrf_token": token},
        headers=HTML,
    )
    assert ended.status_code == 401
    assert "Your session had ended" in ended.text
    assert re.search(
        r'<textarea[^>]*name="draft"[^>]*>line one\r?\nline two</textarea>', ended.text
    )
    relogin = await client.post(
        "/board/login",
        data={
            "username": OWNER["username"],
            "password": OWNER["password"],
            "next": "/board/messages/new",
            "draft": "line one\r\nline two",
            "_csrf_token": token_in(ended),
        },
    )
    assert relogin.status_code == 303
    assert relogin.headers["location"] == "/board/messages/new"
    form = await client.get("/board/messages/new")
    assert re.search(r'<textarea[^>]*name="text"[^>]*>line one\r?\nline two</textarea>', form.text)
    assert "back in the form" in form.text
    # Shown once: the draft is not kept in the session after that.
    assert "line one" not in (await client.get("/board/messages/new")).text
    posted = await post_form(client, "/board/messages/new", {"text": "line one\nline two"})
    assert posted.status_code == 303
