"""The request body deadline: its ASGI receive wrapper driven by a fake client that sends
its body on a schedule, then the middleware inside a Litestar app.

The margins are a few tenths of a second either side of each deadline, so that a loaded
machine's late wake-ups do not decide the result."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.testing import AsyncTestClient
from litestar.types import HTTPDisconnectEvent, HTTPRequestEvent, Receive, ReceiveMessage

from app.lib.bodies import BodyDeadlineMiddleware
from app.lib.errors import RequestTimeoutError


def client_sending(*steps: tuple[float, ReceiveMessage]) -> Receive:
    """A receive callable: each message after its delay, then waiting for ever."""
    pending = list(steps)

    async def receive() -> ReceiveMessage:
        if not pending:
            await asyncio.Event().wait()
        delay, message = pending.pop(0)
        await asyncio.sleep(delay)
        return message

    return receive


def chunk(size: int, *, more: bool = True) -> HTTPRequestEvent:
    return {"type": "http.request", "body": b"x" * size, "more_body": more}


def timed(receive: Receive, base: float, rate: int) -> Receive:
    middleware = BodyDeadlineMiddleware(base_seconds=base, min_rate=rate)
    return middleware.deadline_receive(receive)


async def test_a_prompt_body_passes_through_unchanged() -> None:
    messages = [chunk(3), chunk(2, more=False)]
    receive = timed(client_sending(*((0.0, m) for m in messages)), base=0.5, rate=500)
    assert [await receive(), await receive()] == messages


async def test_a_body_that_does_not_start_within_the_base_is_cut_off_with_408() -> None:
    receive = timed(client_sending((0.8, chunk(10, more=False))), base=0.3, rate=500)
    with pytest.raises(RequestTimeoutError) as late:
        await receive()
    assert late.value.status_code == 408


async def test_bytes_received_buy_time_beyond_the_base() -> None:
    # 500 bytes at 1,000 bytes a second buy half a second: the next part may come at 0.75 s
    # although the base alone ends at 0.5 s.
    receive = timed(
        client_sending((0.0, chunk(500)), (0.75, chunk(1, more=False))), base=0.5, rate=1000
    )
    await receive()
    assert await receive() == chunk(1, more=False)


async def test_a_trickle_slower_than_the_minimum_rate_is_cut_off() -> None:
    # 10 bytes buy 0.01 s: the deadline stays at about 0.51 s, the next part comes at 1 s.
    receive = timed(
        client_sending((0.0, chunk(10)), (1.0, chunk(1, more=False))), base=0.5, rate=1000
    )
    await receive()
    with pytest.raises(RequestTimeoutError):
        await receive()


async def test_the_clock_starts_when_the_application_first_asks_for_the_body() -> None:
    receive = timed(client_sending((0.0, chunk(1, more=False))), base=0.3, rate=500)
    await asyncio.sleep(0.6)  # the application took its time before reading
    assert await receive() == chunk(1, more=False)


@pytest.mark.parametrize("end", [chunk(4, more=False), {"type": "http.disconnect"}])
async def test_after_the_body_waiting_for_the_disconnect_has_no_deadline(
    end: ReceiveMessage,
) -> None:
    disconnect: HTTPDisconnectEvent = {"type": "http.disconnect"}
    receive = timed(client_sending((0.0, end), (0.6, disconnect)), base=0.3, rate=500)
    await receive()
    assert await receive() == disconnect


@post("/echo", status_code=200)
async def echo(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"bytes": len(await request.body())}


async def test_inside_litestar_a_prompt_body_reaches_the_handler() -> None:
    app = Litestar([echo], middleware=[BodyDeadlineMiddleware(base_seconds=0.5, min_rate=500)])
    async with AsyncTestClient(app) as client:
        response = await client.post("/echo", content=b"y" * 5000)
    assert response.status_code == 200
    assert response.json() == {"bytes": 5000}
