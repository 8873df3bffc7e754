"""Abusive clients: oversized bodies, bodies trickled byte by byte and malformed Socket.IO
frames are refused, and the server keeps serving everyone else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import websockets

from app.asgi import create_asgi
from app.config import Settings
from tests.accounts.api import register
from tests.messenger.sockets import connect
from tests.support import LiveServer, free_port, make_settings

LIMIT = 256 * 1024  # MAX_UPLOAD_BYTES for this server: quick to exceed
ENGINEIO_MAX_BYTES = 1_000_000  # python-engineio's max_http_buffer_size (the app's default)


@pytest.fixture(scope="module")
def small_limit_server(migrated_database: Settings) -> Iterator[LiveServer]:
    server = LiveServer(create_asgi(make_settings(max_upload_bytes=LIMIT)), free_port()).start()
    yield server
    server.stop()


@pytest.fixture
async def http(small_limit_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=small_limit_server.url, timeout=10) as client:
        yield client


async def assert_healthy(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health/ready")).status_code == 200
    assert (await http.get("/api/v1/achievements")).status_code == 200


def oversized_json() -> bytes:
    return b'{"phone": "+79161234567", "name": "' + b"x" * (LIMIT + 1) + b'"}'


async def test_an_oversized_json_body_is_refused_with_413_problem(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/api/v1/auth/register",
        content=oversized_json(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 413
    await assert_healthy(http)


async def test_an_oversized_chunked_body_without_length_is_refused_too(
    http: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        body = oversized_json()
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    response = await http.post(
        "/api/v1/auth/register",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    await assert_healthy(http)


async def test_a_body_trickled_byte_by_byte_does_not_hold_up_other_clients(
    small_limit_server: LiveServer, http: httpx.AsyncClient
) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", small_limit_server.port)
    body = b'{"phone": "+79161234567", "password": "correct horse", "name": "Slow"}'
    writer.write(
        b"POST /api/v1/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )

    async def trickle() -> None:
        for byte in body[:-1]:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    slow = asyncio.create_task(trickle())
    try:
        # While the slow body is in progress, others are served at their usual speed.
        await asyncio.sleep(0.3)
        for _ in range(20):
            started = time.monotonic()
            assert (await http.get("/health/live")).status_code == 200
            assert time.monotonic() - started < 1.0
        assert not slow.done(), "the trickle should still be going"
    finally:
        slow.cancel()
        writer.close()
    await assert_healthy(http)


async def engineio_socket(server: LiveServer) -> websockets.ClientConnection:
    """A raw WebSocket speaking Engine.IO 4 by hand, past its open packet."""
    ws = await websockets.connect(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
        max_size=None,
        open_timeout=10,
    )
    opening = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(opening, str)
    assert opening.startswith("0{")  # Engine.IO "open"
    return ws


async def closed_by_server(ws: websockets.ClientConnection, timeout: float = 5) -> bool:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed:
        return True
    except TimeoutError:
        return False


async def bystander_is_served(server: LiveServer, http: httpx.AsyncClient) -> None:
    account = await register(http, name="Bystander")
    bystander = await connect(server.url, account.access_token)
    try:
        ack = await bystander.client.call("read", {"chat_id": "not-a-uuid"}, timeout=5)
        assert ack["error"]["status"] == 422  # served, with a problem, not a crash
    finally:
        await bystander.close()


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param("\x00\xffgarbage", id="garbage"),
        pytest.param("4" + "x" * (ENGINEIO_MAX_BYTES + 10), id="beyond-max-size"),
    ],
)
async def test_a_garbage_or_oversized_engineio_frame_closes_that_connection(
    small_limit_server: LiveServer, http: httpx.AsyncClient, frame: str | bytes
) -> None:
    ws = await engineio_socket(small_limit_server)
    await ws.send(frame)
    assert await closed_by_server(ws), "the server kept talking to a broken client"
    await bystander_is_served(small_limit_server, http)
    await assert_healthy(http)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param("42[not json", id="invalid-json-event"),
        pytest.param("40{broken", id="invalid-json-connect"),
        pytest.param(b"\x04\x00binary-noise", id="binary-noise"),
    ],
)
async def test_a_malformed_socketio_packet_is_dropped_without_harm(
    small_limit_server: LiveServer, http: httpx.AsyncClient, frame: str | bytes
) -> None:
    """python-socketio drops a packet it cannot decode (it logs it) and keeps the Engine.IO
    connection: nothing is answered, nothing is run, and nobody else notices."""
    ws = await engineio_socket(small_limit_server)
    try:
        await ws.send(frame)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 1)
    finally:
        await ws.close()
    await bystander_is_served(small_limit_server, http)
    await assert_healthy(http)
