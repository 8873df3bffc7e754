"""Sessions: two tabs refreshing at once, logout that ends live access, the session list."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import socketio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from tests.accounts.api import Account, register
from tests.messenger.sockets import connect
from tests.support import LiveServer

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def me_status(client: httpx.AsyncClient, access_token: str) -> int:
    return (await client.get("/api/v1/users/me", headers=bearer(access_token))).status_code


async def age_used_tokens(settings: Settings, user_id: str, seconds: int) -> None:
    """Pretend the user's used refresh tokens were rotated ``seconds`` ago."""
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE refresh_token SET used_at = used_at - make_interval(secs => :s) "
                "WHERE user_id = :id AND used_at IS NOT NULL"
            ),
            {"s": seconds, "id": uuid.UUID(user_id)},
        )
    await engine.dispose()


async def login(client: httpx.AsyncClient, account: Account, agent: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login",
        json={"phone": account.phone, "password": account.password},
        headers={"User-Agent": agent},
    )
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def test_two_tabs_refreshing_with_one_token_both_stay_signed_in(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    first, second = await asyncio.gather(
        refresh(client, account.refresh_token), refresh(client, account.refresh_token)
    )
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    pairs = [first.json(), second.json()]
    assert pairs[0]["refresh_token"] != pairs[1]["refresh_token"]
    for pair in pairs:
        assert await me_status(client, pair["access_token"]) == 200
    # Both successors go on working: neither tab was logged out by the other.
    for pair in pairs:
        again = await refresh(client, pair["refresh_token"])
        assert again.status_code == 200, again.text
        assert await me_status(client, again.json()["access_token"]) == 200


async def test_a_reuse_after_the_grace_window_revokes_the_session_and_its_access_tokens(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    account = await register(client)
    newest = (await refresh(client, account.refresh_token)).json()
    await age_used_tokens(migrated_database, account.id, 60)
    reuse = await refresh(client, account.refresh_token)
    assert reuse.status_code == 401
    assert "already used" in reuse.json()["detail"]
    assert (await refresh(client, newest["refresh_token"])).status_code == 401
    assert await me_status(client, newest["access_token"]) == 401


async def test_logout_refuses_the_sessions_access_token_at_once(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    other = await login(client, account, FIREFOX)
    assert await me_status(client, account.access_token) == 200
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": account.refresh_token})
    assert out.status_code == 204
    refused = await client.get("/api/v1/users/me", headers=account.headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "signed out" in refused.json()["detail"]
    # The other login is untouched.
    assert await me_status(client, other["access_token"]) == 200


async def test_the_session_list_names_each_device_and_marks_the_current_one(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    laptop = await login(client, account, FIREFOX)
    await login(client, account, ANDROID_CHROME)
    response = await client.get("/api/v1/auth/sessions", headers=bearer(laptop["access_token"]))
    assert response.status_code == 200, response.text
    sessions = response.json()
    assert len(sessions) == 3  # sign-up, laptop, phone
    devices = {item["device"] for item in sessions}
    assert {"Firefox on Windows", "Chrome on Android"} <= devices
    current = [item for item in sessions if item["current"]]
    assert [item["device"] for item in current] == ["Firefox on Windows"]
    assert all(item["created_at"] and item["last_seen_at"] for item in sessions)


async def test_revoking_one_session_ends_its_tokens_and_keeps_the_others(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    phone = await login(client, account, ANDROID_CHROME)
    listed = (await client.get("/api/v1/auth/sessions", headers=account.headers)).json()
    (target,) = [item for item in listed if item["device"] == "Chrome on Android"]
    gone = await client.delete(f"/api/v1/auth/sessions/{target['id']}", headers=account.headers)
    assert gone.status_code == 204
    assert await me_status(client, phone["access_token"]) == 401
    assert (await refresh(client, phone["refresh_token"])).status_code == 401
    assert await me_status(client, account.access_token) == 200
    again = await client.delete(f"/api/v1/auth/sessions/{target['id']}", headers=account.headers)
    assert again.status_code == 404
    listed = (await client.get("/api/v1/auth/sessions", headers=account.headers)).json()
    assert len(listed) == 1
    assert target["id"] not in {item["id"] for item in listed}


async def test_someone_elses_session_cannot_be_revoked(client: httpx.AsyncClient) -> None:
    alice = await register(client, "Alice")
    bob = await register(client, "Bob")
    bobs = (await client.get("/api/v1/auth/sessions", headers=bob.headers)).json()
    response = await client.delete(f"/api/v1/auth/sessions/{bobs[0]['id']}", headers=alice.headers)
    assert response.status_code == 404
    assert await me_status(client, bob.access_token) == 200


async def test_signing_out_everywhere_ends_every_session_and_closes_sockets(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    account = await register(client)
    other = await login(client, account, FIREFOX)
    socket = await connect(live_server.url, other["access_token"])
    try:
        response = await client.delete("/api/v1/auth/sessions", headers=account.headers)
        assert response.status_code == 204
        await socket.wait_for("session:expired", timeout=20)
        deadline = asyncio.get_running_loop().time() + 20
        while socket.client.connected and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert not socket.client.connected
    finally:
        await socket.close()
    for token in (account.access_token, other["access_token"]):
        assert await me_status(client, token) == 401
    for token in (account.refresh_token, other["refresh_token"]):
        assert (await refresh(client, token)).status_code == 401


async def test_logging_out_closes_the_sockets_of_that_session_only(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    """The Socket.IO handshake records each connection under its token's session, so the
    logout closes that session's connection and leaves the other session's open; the
    signed-out token then opens no new connection."""
    account = await register(client)
    other = await login(client, account, FIREFOX)
    leaving = await connect(live_server.url, account.access_token)
    staying = await connect(live_server.url, other["access_token"])
    try:
        out = await client.post(
            "/api/v1/auth/logout", json={"refresh_token": account.refresh_token}
        )
        assert out.status_code == 204
        await leaving.wait_for("session:expired", timeout=20)
        deadline = asyncio.get_running_loop().time() + 20
        while leaving.client.connected and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert not leaving.client.connected
        assert staying.client.connected
        assert staying.named("session:expired") == []
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect(live_server.url, account.access_token)
    finally:
        await leaving.close()
        await staying.close()
