"""A real python-socketio client that records what the server sends it."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio

from tests.accounts.api import Account, register
from tests.messenger.api import group_chat


@dataclass
class SocketUser:
    client: socketio.AsyncClient
    events: list[tuple[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, event: str, timeout: float = 5, **match: Any) -> Any:
        """The first ``event`` whose payload has the given items, waiting if needed."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for name, data in self.events:
                if name == event and all(
                    isinstance(data, dict) and data.get(k) == v for k, v in match.items()
                ):
                    return data
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no {event} {match} within {timeout}s; got {self.events}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)

    async def wait_for_count(self, event: str, count: int, timeout: float = 5) -> list[Any]:
        """The first ``count`` events named ``event``, waiting until that many arrived."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found := self.named(event)) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"{len(found)} {event} of {count} within {timeout}s")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return found[:count]

    def named(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()


async def connect(url: str, token: str | None, transports: list[str] | None = None) -> SocketUser:
    client = socketio.AsyncClient(reconnection=False)
    user = SocketUser(client)

    async def record(event: str, data: Any = None) -> None:
        user.events.append((event, data))
        user.arrived.set()

    client.on("*", record)
    await client.connect(
        url,
        auth={"token": token} if token is not None else None,
        transports=transports or ["websocket"],
        wait_timeout=10,
    )
    return user


async def connect_accounts(
    url: str, sockets: list[SocketUser], *accounts: Account
) -> list[SocketUser]:
    """A socket for each account, in order, added to ``sockets`` (the fixture closes them)."""
    connected = [await connect(url, account.access_token) for account in accounts]
    sockets.extend(connected)
    return connected


async def alice_and_bob_connected_in_a_group(
    client: httpx.AsyncClient, url: str
) -> tuple[Account, Account, dict[str, Any], SocketUser, SocketUser]:
    """Alice's group with Bob, and a socket for each of them (the caller closes them)."""
    alice = await register(client)
    bob = await register(client, name="Bob")
    chat = await group_chat(client, alice, [bob])
    a = await connect(url, alice.access_token)
    b = await connect(url, bob.access_token)
    return alice, bob, chat, a, b
