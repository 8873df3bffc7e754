"""The session revocation check during a Redis outage."""

from __future__ import annotations

import httpx

from app.asgi import create_asgi
from tests.accounts.api import register
from tests.faults.conftest import PrivateRedis
from tests.support import LiveServer, free_port, make_settings


async def test_signed_in_requests_keep_working_while_redis_is_down(
    private_redis: PrivateRedis, migrated_database: object
) -> None:
    """Revoked sessions live in Redis; without it a signed, unexpired token is accepted for
    the rest of its short life instead of every signed-in request failing."""
    server = LiveServer(
        create_asgi(make_settings(redis_url=private_redis.url)), free_port()
    ).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            alice = await register(http)
            private_redis.stop()
            try:
                me = await http.get("/api/v1/users/me", headers=alice.headers)
                assert me.status_code == 200, me.text
            finally:
                private_redis.start()
            # Back up, revocation works again.
            out = await http.post(
                "/api/v1/auth/logout", json={"refresh_token": alice.refresh_token}
            )
            assert out.status_code == 204
            assert (await http.get("/api/v1/users/me", headers=alice.headers)).status_code == 401
    finally:
        server.stop()
