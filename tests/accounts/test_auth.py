"""Registration, sign-in, token rotation and bearer authentication through the real server."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt

from app.config import Settings
from tests.accounts.api import new_phone, register
from tests.accounts.test_sessions import age_used_tokens


async def test_register_answers_tokens_and_the_user_with_a_normalised_phone(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"phone": "+7 (916) 555-01-01", "password": "correct horse battery", "name": "Alice"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    assert body["access_token"]
    assert body["refresh_token"]
    assert body["user"]["phone"] == "+79165550101"
    assert body["user"]["name"] == "Alice"
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]


async def test_register_refuses_an_invalid_phone_number(client: httpx.AsyncClient) -> None:
    for phone in ("12345", "+7 000", "not a phone"):
        response = await client.post(
            "/api/v1/auth/register",
            json={"phone": phone, "password": "correct horse battery", "name": "A"},
        )
        assert response.status_code == 422, phone
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_register_refuses_a_short_password_and_an_empty_name(
    client: httpx.AsyncClient,
) -> None:
    short = await client.post(
        "/api/v1/auth/register", json={"phone": new_phone(), "password": "short", "name": "A"}
    )
    assert short.status_code == 422
    nameless = await client.post(
        "/api/v1/auth/register",
        json={"phone": new_phone(), "password": "correct horse battery", "name": ""},
    )
    assert nameless.status_code == 422


async def test_register_twice_with_one_phone_is_a_conflict(client: httpx.AsyncClient) -> None:
    account = await register(client)
    again = await client.post(
        "/api/v1/auth/register",
        json={"phone": account.phone, "password": "another password", "name": "B"},
    )
    assert again.status_code == 409


async def test_login_with_the_right_password_answers_tokens(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await client.post(
        "/api/v1/auth/login", json={"phone": account.phone, "password": account.password}
    )
    assert response.status_code == 200
    assert response.json()["user"]["id"] == account.id


async def test_login_with_a_wrong_password_or_unknown_phone_is_401(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    wrong = await client.post(
        "/api/v1/auth/login", json={"phone": account.phone, "password": "wrong password"}
    )
    assert wrong.status_code == 401
    unknown = await client.post(
        "/api/v1/auth/login", json={"phone": new_phone(), "password": account.password}
    )
    assert unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_login_attempts_are_rate_limited_per_phone(client: httpx.AsyncClient) -> None:
    account = await register(client)
    statuses = []
    for _ in range(12):
        response = await client.post(
            "/api/v1/auth/login", json={"phone": account.phone, "password": "wrong password"}
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[-1] == 429
    assert int(response.headers["retry-after"]) > 0


async def test_registrations_are_rate_limited_per_address(client: httpx.AsyncClient) -> None:
    statuses = []
    for _ in range(21):
        response = await client.post(
            "/api/v1/auth/register",
            json={"phone": new_phone(), "password": "correct horse battery", "name": "Spam"},
        )
        statuses.append(response.status_code)
    assert statuses[:20] == [201] * 20
    assert statuses[20] == 429
    assert "retry-after" in response.headers


async def test_refresh_rotates_the_refresh_token(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["refresh_token"] != account.refresh_token
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {rotated['access_token']}"}
    )
    assert me.status_code == 200
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert again.status_code == 200


async def test_reusing_a_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    account = await register(client)
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    newest = first.json()["refresh_token"]
    # Past REFRESH_REUSE_GRACE_SECONDS (tests/accounts/test_sessions.py covers the window).
    await age_used_tokens(migrated_database, account.id, 60)
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert reuse.status_code == 401
    assert "already used" in reuse.json()["detail"]
    # The legitimate holder's newest token is revoked too: the thief's copy is worthless.
    revoked = await client.post("/api/v1/auth/refresh", json={"refresh_token": newest})
    assert revoked.status_code == 401


async def test_refresh_with_an_unknown_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert response.status_code == 401


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient) -> None:
    account = await register(client)
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": account.refresh_token})
    assert out.status_code == 204
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert response.status_code == 401


async def test_logout_of_another_login_keeps_this_one(client: httpx.AsyncClient) -> None:
    account = await register(client)
    second = await client.post(
        "/api/v1/auth/login", json={"phone": account.phone, "password": account.password}
    )
    await client.post("/api/v1/auth/logout", json={"refresh_token": account.refresh_token})
    still = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]}
    )
    assert still.status_code == 200


async def test_missing_or_malformed_authorization_is_401_problem(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/api/v1/users/me")
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.headers["www-authenticate"] == "Bearer"
    basic = await client.get("/api/v1/users/me", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    garbage = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer garbage"})
    assert garbage.status_code == 401


def _claims(account_id: str, **overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": account_id,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "x",
    }
    claims.update(overrides)
    return claims


async def test_an_expired_access_token_is_401(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    account = await register(client)
    past = datetime.now(UTC) - timedelta(minutes=10)
    token = jwt.encode(
        _claims(account.id, iat=past, exp=past + timedelta(minutes=1)),
        migrated_database.secret_key,
        algorithm="HS256",
    )
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_a_token_signed_with_another_key_is_401(client: httpx.AsyncClient) -> None:
    account = await register(client)
    token = jwt.encode(_claims(account.id), "another-key-of-sufficient-length-123456", "HS256")
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_a_tampered_token_is_401(client: httpx.AsyncClient) -> None:
    victim = await register(client, name="Victim")
    attacker = await register(client, name="Attacker")
    header, payload, signature = attacker.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = victim.id
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {header}.{forged}.{signature}"}
    )
    assert response.status_code == 401


async def test_an_alg_none_token_is_401(client: httpx.AsyncClient) -> None:
    account = await register(client)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = {
        k: (int(v.timestamp()) if isinstance(v, datetime) else v)
        for k, v in _claims(account.id).items()
    }
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    response = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {header}.{payload}."}
    )
    assert response.status_code == 401


async def test_a_token_without_required_claims_is_401(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    account = await register(client)
    token = jwt.encode(
        {"sub": account.id, "exp": int(time.time()) + 60}, migrated_database.secret_key, "HS256"
    )
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_a_token_of_a_user_that_does_not_exist_is_401(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    token = jwt.encode(
        _claims("0190a000-0000-7000-8000-000000000000"), migrated_database.secret_key, "HS256"
    )
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_openapi_documents_bearer_auth_on_user_routes(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    me = schema["paths"]["/api/v1/users/me"]["get"]
    assert me["security"] == [{"BearerToken": []}]
    assert "/api/v1/auth/register" in schema["paths"]
    assert "/api/v1/chats/{chat_id}/messages" in schema["paths"]
