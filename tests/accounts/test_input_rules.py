"""Account input rules users expect: national phone formats, no blank names, no weak
passwords, errors in our own words, and search by phone that respects privacy."""

from __future__ import annotations

import time

import httpx

from app.asgi import create_asgi
from app.config import Settings
from tests.accounts.api import new_phone, register
from tests.messenger.api import direct_chat
from tests.support import LiveServer, free_port, make_settings

GOOD_PASSWORD = "correct horse battery"


async def register_raw(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    body = {"phone": new_phone(), "password": GOOD_PASSWORD, "name": "Alice"} | fields
    return await client.post("/api/v1/auth/register", json=body)


async def test_national_russian_phone_formats_register_sign_in_and_are_found(
    client: httpx.AsyncClient,
) -> None:
    searcher = await register(client, "Searcher")
    for national, e164 in (("89161234501", "+79161234501"), ("8 916 123 45 67", "+79161234567")):
        response = await register_raw(client, phone=national, name=f"Owner of {national}")
        assert response.status_code == 201, response.text
        assert response.json()["user"]["phone"] == e164
        found = await client.get(
            "/api/v1/users", params={"search": national}, headers=searcher.headers
        )
        assert [user["id"] for user in found.json()] == [response.json()["user"]["id"]]
        login = await client.post(
            "/api/v1/auth/login", json={"phone": national, "password": GOOD_PASSWORD}
        )
        assert login.status_code == 200, login.text
    taken = await register_raw(client, phone="+7 916 123-45-01")
    assert taken.status_code == 409


async def test_a_blank_name_is_refused_at_sign_up(client: httpx.AsyncClient) -> None:
    for name in ("   ", "\t\n"):
        response = await register_raw(client, name=name)
        assert response.status_code == 422, name
        assert response.json()["errors"][0]["field"] == "name"
    padded = await register_raw(client, name="  Alice  ")
    assert padded.json()["user"]["name"] == "Alice"


async def test_short_and_common_passwords_are_refused(client: httpx.AsyncClient) -> None:
    short = await register_raw(client, password="abc12345!")  # 9 characters
    assert short.status_code == 422
    for common in ("password123", "qwertyuiop", "1234567890", "Iloveyou12"):
        response = await register_raw(client, password=common)
        assert response.status_code == 422, common
        assert "common" in response.json()["detail"]
        assert response.json()["errors"][0]["field"] == "password"
    assert (await register_raw(client, password="violet lantern 42")).status_code == 201


async def test_phone_errors_are_in_our_words_not_the_librarys(client: httpx.AsyncClient) -> None:
    for phone in ("not a phone", "+++", "abc"):
        response = await register_raw(client, phone=phone)
        assert response.status_code == 422, phone
        text = response.text
        assert "string supplied" not in text
        assert "(1)" not in text
        assert "phone" in response.json()["detail"].lower()


async def test_wrong_passwords_from_many_addresses_do_not_lock_the_owner_out(
    migrated_database: Settings,
) -> None:
    # The attackers' addresses arrive through a proxy the app trusts (as behind nginx).
    server = LiveServer(
        create_asgi(make_settings(trusted_proxies=("127.0.0.1",))), free_port()
    ).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            await attack_then_sign_in(client)
    finally:
        server.stop()


async def attack_then_sign_in(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    statuses = []
    for attempt in range(12):
        response = await client.post(
            "/api/v1/auth/login",
            json={"phone": owner.phone, "password": "wrong password"},
            headers={"X-Forwarded-For": f"203.0.113.{attempt + 1}"},
        )
        statuses.append(response.status_code)
    assert statuses == [401] * 12  # slowed, never refused: no lock-out
    started = time.monotonic()
    mine = await client.post(
        "/api/v1/auth/login", json={"phone": owner.phone, "password": owner.password}
    )
    elapsed = time.monotonic() - started
    assert mine.status_code == 200, mine.text
    # The phone's twelve failures cost the next attempt a growing delay (2 s after 12).
    assert elapsed >= 1.5
    # A successful sign-in clears the delay.
    started = time.monotonic()
    again = await client.post(
        "/api/v1/auth/login", json={"phone": owner.phone, "password": owner.password}
    )
    assert again.status_code == 200
    assert time.monotonic() - started < 1.5


async def test_who_may_find_me_by_phone_is_honoured(client: httpx.AsyncClient) -> None:
    alice = await register(client, "Alice")
    bob = await register(client, "Bob")

    async def alice_finds_bob() -> bool:
        found = await client.get(
            "/api/v1/users", params={"search": bob.phone}, headers=alice.headers
        )
        assert found.status_code == 200, found.text
        return bob.id in [user["id"] for user in found.json()]

    assert await alice_finds_bob()
    for setting, expected in (("nobody", False), ("contacts", False)):
        changed = await client.patch(
            "/api/v1/users/me", headers=bob.headers, json={"phone_discovery": setting}
        )
        assert changed.json()["phone_discovery"] == setting
        assert await alice_finds_bob() is expected
    await direct_chat(client, alice, bob)
    assert await alice_finds_bob()  # now a contact
    # Searching by name is not affected by the phone setting.
    by_name = await client.get("/api/v1/users", params={"search": "Bob"}, headers=alice.headers)
    assert bob.id in [user["id"] for user in by_name.json()]
    bad = await client.patch("/api/v1/users/me", headers=bob.headers, json={"phone_discovery": "x"})
    assert bad.status_code == 422


async def test_searches_by_phone_number_are_rate_limited(migrated_database: Settings) -> None:
    server = LiveServer(create_asgi(make_settings(phone_lookups_per_hour=3)), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            alice = await register(http, "Alice")
            statuses = []
            for _ in range(5):
                response = await http.get(
                    "/api/v1/users", params={"search": new_phone()}, headers=alice.headers
                )
                statuses.append(response.status_code)
            by_name = await http.get(
                "/api/v1/users", params={"search": "Ali"}, headers=alice.headers
            )
    finally:
        server.stop()
    assert statuses == [200, 200, 200, 429, 429]
    assert int(response.headers["retry-after"]) > 0
    assert by_name.status_code == 200  # name searches are not counted
