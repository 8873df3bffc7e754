"""Outages of PostgreSQL and Redis: clean failures while they last, recovery after."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from app.asgi import create_asgi
from app.lib.db import upgrade_database
from tests.faults.conftest import PrivatePostgres, PrivateRedis
from tests.support import LiveServer, free_port, make_settings, post_form


async def _ready_status(http: httpx.AsyncClient) -> int:
    return (await http.get("/health/ready")).status_code


async def _eventually(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.2)


async def test_redis_restart_turns_health_503_and_back_and_the_board_recovers(
    private_redis: PrivateRedis, migrated_database: object
) -> None:
    settings = make_settings(redis_url=private_redis.url)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            password = "outage password"
            await post_form(
                http,
                "/board/register",
                {"username": "owner", "password": password, "password_confirm": password},
            )
            assert (
                await post_form(http, "/board/messages/new", {"text": "before"})
            ).status_code == 303

            private_redis.stop()
            assert await _ready_status(http) == 503
            page = await http.get("/board/messages", headers={"accept": "text/html"})
            assert page.status_code == 503
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["retry-after"] == "5"
            # A page a person can read, saying it is temporary, not a traceback.
            assert "Service Unavailable" in page.text
            assert "unavailable; try again shortly" in page.text
            assert "Traceback" not in page.text
            api = await http.get("/board/messages")
            assert api.status_code == 503

            private_redis.start()
            await _eventually(lambda: _wait_for(http, 200))
            # Redis kept nothing on disk: the session is gone, so log in again.
            login = await post_form(
                http, "/board/login", {"username": "owner", "password": password}
            )
            assert login.status_code == 303
            assert (
                await post_form(http, "/board/messages/new", {"text": "after"})
            ).status_code == 303
            assert "after" in (await http.get("/board/messages")).text
    finally:
        server.stop()


async def _wait_for(http: httpx.AsyncClient, status: int) -> bool:
    try:
        return await _ready_status(http) == status
    except httpx.TransportError:
        return False


async def test_postgres_restart_fails_requests_cleanly_and_recovers_without_a_stuck_pool(
    private_postgres: PrivatePostgres, migrated_database: object
) -> None:
    settings = make_settings(database_url=private_postgres.url)
    await asyncio.to_thread(upgrade_database, settings)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            assert (await http.get("/board/register")).status_code == 200

            private_postgres.stop()
            assert await _ready_status(http) == 503
            during = await asyncio.gather(*(http.get("/board/register") for _ in range(10)))
            assert {response.status_code for response in during} == {503}

            private_postgres.start()
            await _eventually(lambda: _wait_for(http, 200))
            after = await asyncio.gather(*(http.get("/board/register") for _ in range(20)))
            assert {response.status_code for response in after} == {200}
    finally:
        server.stop()


async def test_a_terminated_postgres_backend_is_replaced_and_the_next_requests_succeed(
    private_postgres: PrivatePostgres, migrated_database: object
) -> None:
    """The pool does not ping a connection before lending it: one whose backend was killed
    (an administrator, a failover, idle_session_timeout) must be swapped for a new one
    rather than failing the request that draws it."""
    settings = make_settings(database_url=private_postgres.url)
    await asyncio.to_thread(upgrade_database, settings)
    server = LiveServer(create_asgi(settings), free_port()).start()
    dsn = private_postgres.url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            # Several connections in the pool: concurrent requests each hold one.
            warm = await asyncio.gather(*(http.get("/board/register") for _ in range(5)))
            assert {response.status_code for response in warm} == {200}
            assert await _ready_status(http) == 200

            admin = await asyncpg.connect(dsn)
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                )
            finally:
                await admin.close()
            assert killed >= 1  # the pooled connections were there, and are gone now

            assert await _ready_status(http) == 200
            after = await asyncio.gather(*(http.get("/board/register") for _ in range(5)))
            assert {response.status_code for response in after} == {200}
            # Signing in reads the account through the ORM session, in a transaction.
            password = "terminated backend"
            registered = await post_form(
                http,
                "/board/register",
                {"username": "survivor", "password": password, "password_confirm": password},
            )
            assert registered.status_code == 303
    finally:
        server.stop()
