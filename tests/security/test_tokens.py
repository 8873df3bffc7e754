"""Forged, expired and orphaned access tokens are refused everywhere a token is accepted:
with 401 problem details on every bearer-protected operation of the schema, and with a
refused connection on Socket.IO.

tests/accounts/test_auth.py checks most of these forgeries against one route
(``/api/v1/users/me``); here each one is tried on every bearer operation the schema lists, so
a route documented as bearer but marked public fails, and on the Socket.IO handshake, which
takes the token from its own ``auth`` payload.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
import socketio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from tests.accounts.api import Account, register
from tests.messenger.api import direct_chat
from tests.messenger.sockets import connect
from tests.security.schema import Operation, fetch_operations, is_problem
from tests.support import LiveServer


def _claims(subject: str, **overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": subject,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: dict[str, object]) -> str:
    plain = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in data.items()}
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).rstrip(b"=").decode()


async def _delete_account(settings: Settings, account_id: str) -> None:
    """Accounts have no deletion route; an operator's DELETE is what removes one."""
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM user_account WHERE id = :id"), {"id": uuid.UUID(account_id)}
        )
    await engine.dispose()


SIGN_OUT_EVERYWHERE = "DELETE /api/v1/auth/sessions"

Forgery = Callable[[httpx.AsyncClient, Settings], Awaitable[str]]


async def alg_none(client: httpx.AsyncClient, settings: Settings) -> str:
    account = await register(client)
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(account.id))}."


async def alg_hs512_with_the_right_key(client: httpx.AsyncClient, settings: Settings) -> str:
    # The algorithm is pinned to HS256: another one is refused even with the right key.
    account = await register(client)
    return jwt.encode(_claims(account.id), settings.secret_key, algorithm="HS512")


async def wrong_key(client: httpx.AsyncClient, settings: Settings) -> str:
    account = await register(client)
    return jwt.encode(_claims(account.id), "another-key-of-sufficient-length-123456", "HS256")


async def expired(client: httpx.AsyncClient, settings: Settings) -> str:
    account = await register(client)
    past = datetime.now(UTC) - timedelta(minutes=10)
    return jwt.encode(
        _claims(account.id, iat=past, exp=past + timedelta(minutes=1)),
        settings.secret_key,
        "HS256",
    )


async def malformed(client: httpx.AsyncClient, settings: Settings) -> str:
    return "eyJhbGciOiJIUzI1NiJ9.not base64!.sig"


async def truncated_signature(client: httpx.AsyncClient, settings: Settings) -> str:
    account = await register(client)
    return account.access_token[:-6]


async def subject_swapped(client: httpx.AsyncClient, settings: Settings) -> str:
    victim = await register(client, name="Victim")
    attacker = await register(client, name="Attacker")
    header, _, signature = attacker.access_token.split(".")
    return f"{header}.{_b64(_claims(victim.id))}.{signature}"


async def refresh_token_as_access(client: httpx.AsyncClient, settings: Settings) -> str:
    return (await register(client)).refresh_token


async def wrong_type_claim(client: httpx.AsyncClient, settings: Settings) -> str:
    account = await register(client)
    return jwt.encode(_claims(account.id, typ="refresh"), settings.secret_key, "HS256")


async def missing_jti(client: httpx.AsyncClient, settings: Settings) -> str:
    account = await register(client)
    claims = _claims(account.id)
    del claims["jti"]
    return jwt.encode(claims, settings.secret_key, "HS256")


async def subject_not_a_uuid(client: httpx.AsyncClient, settings: Settings) -> str:
    return jwt.encode(_claims("admin"), settings.secret_key, "HS256")


async def deleted_account(client: httpx.AsyncClient, settings: Settings) -> str:
    account = await register(client)
    await _delete_account(settings, account.id)
    return account.access_token


FORGERIES: dict[str, Forgery] = {
    f.__name__: f
    for f in (
        alg_none,
        alg_hs512_with_the_right_key,
        wrong_key,
        expired,
        malformed,
        truncated_signature,
        subject_swapped,
        refresh_token_as_access,
        wrong_type_claim,
        missing_jti,
        subject_not_a_uuid,
        deleted_account,
    )
}


def _concrete_path(operation: Operation) -> str:
    path = operation.path
    for name in operation.path_params:
        path = path.replace("{" + name + "}", "50" if name == "size" else str(uuid.uuid4()))
    return path


async def _call(client: httpx.AsyncClient, operation: Operation, token: str) -> httpx.Response:
    unsafe = operation.method != "GET"
    return await client.request(
        operation.method,
        _concrete_path(operation),
        headers={"Authorization": f"Bearer {token}"},
        json={} if unsafe else None,
    )


async def _bearer_operations(client: httpx.AsyncClient) -> list[Operation]:
    found = [op for op in await fetch_operations(client) if "BearerToken" in op.security]
    assert len(found) >= 25, [op.name for op in found]  # the schema still documents bearer auth
    return found


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_every_bearer_operation_refuses_the_token_with_401_problem(
    client: httpx.AsyncClient, migrated_database: Settings, forgery: str
) -> None:
    token = await FORGERIES[forgery](client, migrated_database)
    accepted = []
    for operation in await _bearer_operations(client):
        response = await _call(client, operation, token)
        if not is_problem(response, 401):
            accepted.append(f"{operation.name}: {response.status_code} {response.text[:120]}")
    assert accepted == []


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_socketio_refuses_the_connection(
    client: httpx.AsyncClient, live_server: LiveServer, migrated_database: Settings, forgery: str
) -> None:
    token = await FORGERIES[forgery](client, migrated_database)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(live_server.url, token)


async def test_a_valid_token_passes_authentication_on_every_bearer_operation(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    """The control for the two tests above: the refusals come from the forgery. Signing out
    everywhere ends the token's session, so it is called last."""
    account = await register(client)
    refused = []
    operations = sorted(
        await _bearer_operations(client), key=lambda op: op.name == SIGN_OUT_EVERYWHERE
    )
    assert operations[-1].name == SIGN_OUT_EVERYWHERE
    for operation in operations:
        response = await _call(client, operation, account.access_token)
        if response.status_code == 401:
            refused.append(f"{operation.name}: {response.text[:120]}")
    assert refused == []
    fresh = await client.post(
        "/api/v1/auth/login", json={"phone": account.phone, "password": account.password}
    )
    user = await connect(live_server.url, fresh.json()["access_token"])
    assert user.client.connected
    await user.close()


async def test_another_users_valid_token_does_not_open_a_chat(client: httpx.AsyncClient) -> None:
    """A genuine token of user B on user A's chat: 404, as for a chat that does not exist
    (tests/security/test_object_access.py tries this on every object route)."""
    alice: Account = await register(client, name="Alice")
    bob = await register(client, name="Bob")
    mallory = await register(client, name="Mallory")
    chat = await direct_chat(client, alice, bob)
    response = await client.get(f"/api/v1/chats/{chat['id']}", headers=mallory.headers)
    assert is_problem(response, 404)
    assert "Bob" not in response.text
