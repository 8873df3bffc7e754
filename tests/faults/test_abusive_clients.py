"""Abusive clients: oversized bodies, bodies trickled byte by byte and malformed Socket.IO
frames are refused, and the server keeps serving everyone else."""

from __future__ import annotations

import asyncio
import contextlib
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
BODY_TIMEOUT = 1.0  # REQUEST_BODY_TIMEOUT_SECONDS for this server (min rate: 500 bytes/s)
ENGINEIO_MAX_BYTES = 1_000_000  # python-engineio's max_http_buffer_size (the app's default)


@pytest.fixture(scope="module")
def small_limit_server(migrated_database: Settings) -> Iterator[LiveServer]:
    settings = make_settings(max_upload_bytes=LIMIT, request_body_timeout_seconds=BODY_TIMEOUT)
    server = LiveServer(create_asgi(settings), free_port()).start()
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


async def test_a_body_trickled_byte_by_byte_is_cut_off_with_408_and_holds_up_nobody(
    small_limit_server: LiveServer, http: httpx.AsyncClient
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", small_limit_server.port)
    body = b'{"phone": "+79161234567", "password": "correct horse", "name": "Slow"}'
    writer.write(
        b"POST /api/v1/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    started = time.monotonic()

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):  # the server hangs up on us
            for byte in body:  # 20 bytes/s: about 3.5 s for the whole body
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)

    slow = asyncio.create_task(trickle())
    try:
        # While the slow body is in progress, others are served at their usual speed.
        for _ in range(10):
            before = time.monotonic()
            assert (await http.get("/health/live")).status_code == 200
            assert time.monotonic() - before < 1.0
        answer = await asyncio.wait_for(reader.read(4096), 10)
    finally:
        slow.cancel()
        writer.close()

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", answer
    assert b"application/problem+json" in rest
    assert b"arrived too slowly" in rest
    # Cut off at the deadline (1 s plus a second per 500 bytes), not when the body ended.
    assert time.monotonic() - started < 3.0
    await assert_healthy(http)


async def test_a_large_body_at_a_decent_rate_is_not_cut_off(
    small_limit_server: LiveServer, http: httpx.AsyncClient
) -> None:
    # 100 KB in 2 s (50 KB/s), twice the base deadline: the rate keeps buying time.
    padding = b"x" * 100_000
    body = b'{"phone": "+79161234567", "password": "correct horse", "name": "' + padding + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 5_000):
            yield body[start : start + 5_000]
            await asyncio.sleep(0.1)

    response = await http.post(
        "/api/v1/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    # The body arrived whole: the API judged its content (a 100 KB name is refused).
    assert response.status_code == 422, response.text


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
