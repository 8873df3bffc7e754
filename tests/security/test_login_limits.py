"""Login rate limits against the ways around them.

The limits themselves are tested where they live: the board's per-address limit in
tests/board/test_board.py (``test_login_attempts_are_rate_limited``), the messenger's
per-(phone, address) limit in tests/accounts/test_auth.py
(``test_login_attempts_are_rate_limited_per_phone``) and its growing per-phone delay, which
never locks the owner out, in tests/accounts/test_input_rules.py.
Here: a guesser who starts a fresh browser session for every board attempt, one who spells
the same phone number differently every time, and one who tries many phone numbers from one
address (the messenger's per-address limit, which nothing else tests).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import httpx
import pytest

from app.asgi import create_asgi
from app.config import Settings
from tests.accounts.api import new_phone, register
from tests.support import LiveServer, free_port, make_settings, post_form

ATTEMPTS_PER_MINUTE = 10  # the default of both logins


async def board_guesses_from_fresh_sessions(client: httpx.AsyncClient) -> list[int]:
    async with httpx.AsyncClient(base_url=str(client.base_url)) as owner:
        await post_form(
            owner,
            "/board/register",
            {
                "username": "owner",
                "password": "correct horse battery",
                "password_confirm": "correct horse battery",
            },
        )
    statuses = []
    for attempt in range(ATTEMPTS_PER_MINUTE + 2):
        async with httpx.AsyncClient(base_url=str(client.base_url)) as fresh:
            response = await post_form(
                fresh, "/board/login", {"username": "owner", "password": f"guess {attempt}"}
            )
            statuses.append(response.status_code)
    return statuses


def spellings(e164: str) -> list[str]:
    """The same Russian mobile number written the ways phonenumbers accepts."""
    digits = e164[2:]  # after +7
    return [
        e164,
        f"+7 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}",
        f"+7 ({digits[:3]}) {digits[3:]}",
        f"+7-{digits}",
        f"  {e164}  ",
    ]


async def messenger_guesses_with_respelled_phones(client: httpx.AsyncClient) -> list[int]:
    account = await register(client)
    statuses = []
    for phone in itertools.islice(itertools.cycle(spellings(account.phone)), 12):
        response = await client.post(
            "/api/v1/auth/login", json={"phone": phone, "password": "wrong password"}
        )
        statuses.append(response.status_code)
    return statuses


@pytest.mark.parametrize(
    "guesser", [board_guesses_from_fresh_sessions, messenger_guesses_with_respelled_phones]
)
async def test_the_login_limit_holds_against_a_disguised_guesser(
    client: httpx.AsyncClient, guesser: Callable[[httpx.AsyncClient], Awaitable[list[int]]]
) -> None:
    statuses = await guesser(client)
    assert statuses[:ATTEMPTS_PER_MINUTE] == [401] * ATTEMPTS_PER_MINUTE
    assert statuses[ATTEMPTS_PER_MINUTE:] == [429] * (len(statuses) - ATTEMPTS_PER_MINUTE)


async def test_messenger_logins_across_many_phones_are_limited_per_address(
    migrated_database: Settings,
) -> None:
    """Credential stuffing: each phone tried once, all from one address. The per-address
    limit is five times the per-phone one; a server with a per-phone limit of 2 keeps the
    test short."""
    settings = make_settings(login_attempts_per_minute=2)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            statuses = []
            for _ in range(12):
                response = await http.post(
                    "/api/v1/auth/login", json={"phone": new_phone(), "password": "guess"}
                )
                statuses.append(response.status_code)
    finally:
        server.stop()
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    assert int(response.headers["retry-after"]) > 0
