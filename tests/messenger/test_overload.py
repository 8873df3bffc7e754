"""Under overload a message is late or refused, never stored and left unannounced.

Main stored the message, then waited up to ANNOUNCE_WAIT_SECONDS for room in the chat's
announcement queue and dropped the ``message:new`` (an error in the log only): the sender
had a 201, the members never heard of it. Now a send into a chat whose announcements are
queued to the limit is refused before anything is stored (503 with Retry-After, the same
problem in the Socket.IO acknowledgement), and once the queue has room it goes through.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from app.lib.announcer import Announcer
from tests.messenger.api import send_text
from tests.messenger.sockets import SocketUser, alice_and_bob_connected_in_a_group
from tests.support import READY_SECONDS, LiveServer, litestar_app


class StuckAnnouncer:
    """A one-worker announcer on the server's loop whose worker is stuck on a first job and
    whose queue (one place) is full: what a chat's announcements look like under overload."""

    def __init__(self, live_server: LiveServer) -> None:
        self.state = litestar_app(live_server).state
        self.original: Announcer = self.state.announcer
        self.loop = self.original.tasks[0].get_loop()
        self.gate: asyncio.Event | None = None
        self.announcer: Announcer | None = None

    def _on_server(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(READY_SECONDS)

    async def _jam(self, key: str) -> None:
        self.gate = asyncio.Event()
        gate = self.gate
        self.announcer = Announcer(workers=1, queue_size=1, wait_seconds=30)
        self.announcer.start()

        async def stuck() -> None:
            await gate.wait()

        await self.announcer.submit(key, stuck)
        await asyncio.sleep(0)  # the worker takes it
        await self.announcer.submit(key, stuck)  # and this one fills the queue
        self.state.announcer = self.announcer

    async def _release(self) -> None:
        assert self.gate is not None
        assert self.announcer is not None
        self.gate.set()
        await self.announcer.stop(READY_SECONDS)
        self.state.announcer = self.original

    def jam(self, key: str) -> None:
        self._on_server(self._jam(key))

    def release(self) -> None:
        self._on_server(self._release())


async def history_texts(client: httpx.AsyncClient, reader: Any, chat_id: str) -> list[str]:
    response = await client.get(f"/api/v1/chats/{chat_id}/messages", headers=reader.headers)
    assert response.status_code == 200, response.text
    return [item["text"] for item in response.json()["items"]]


async def test_a_send_into_a_chat_whose_announcements_are_behind_is_refused_not_lost(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, chat, a, b = await alice_and_bob_connected_in_a_group(client, live_server.url)
    sockets += [a, b]
    first = await send_text(client, alice, chat["id"], "before the jam")
    await b.wait_for("message:new", READY_SECONDS, text="before the jam")

    stuck = StuckAnnouncer(live_server)
    stuck.jam(chat["id"])
    try:
        rest = await client.post(
            f"/api/v1/chats/{chat['id']}/messages",
            headers=alice.headers,
            json={"type": "text", "text": "over REST"},
        )
        ack = await a.client.call(
            "message:send", {"chat_id": chat["id"], "text": "over the socket"}, timeout=10
        )
        reply = await a.client.call(
            "message:send",
            {"chat_id": chat["id"], "text": "a reply", "reply_to_id": first["id"]},
            timeout=10,
        )
    finally:
        stuck.release()

    # The sender is told, and may retry: nothing was stored that nobody would hear of.
    assert rest.status_code == 503, rest.text
    assert rest.headers["retry-after"] == "1"
    assert ack["error"]["status"] == 503
    assert ack["error"]["retry_after"] == 1
    assert reply["error"]["status"] == 503
    stored = await history_texts(client, bob, chat["id"])
    assert "before the jam" in stored
    assert not {"over REST", "over the socket", "a reply"} & set(stored)

    # With room again, the retry goes through and is heard.
    again = await a.client.call(
        "message:send", {"chat_id": chat["id"], "text": "over the socket"}, timeout=10
    )
    assert again["text"] == "over the socket"
    await b.wait_for("message:new", READY_SECONDS, text="over the socket")
