"""Presence when many connections come and go at once: a group's members all leaving at the
same moment (a replica's clients reconnecting elsewhere, a network blip, a benchmark
stopping) must not take the database pool. Each member going offline tells their
contacts, which reads the contacts from the database; those reads run in the announcer's
few workers, so every contact still hears every ``presence`` offline while the rest of the
application keeps its connections."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import event

from app.config import Settings
from app.lib.auth import issue_access_token
from tests.accounts.api import register
from tests.messenger.api import big_silent_group
from tests.messenger.sockets import SocketUser, connect
from tests.support import LiveServer, litestar_app

MEMBERS = 40


class CheckedOut:
    """The most database connections the live server held at once while counting."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def checkout(self, *_: Any) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def checkin(self, *_: Any) -> None:
        self.now = max(self.now - 1, 0)


async def test_a_whole_group_going_offline_at_once_is_announced_by_the_announcers_workers(
    client: httpx.AsyncClient,
    live_server: LiveServer,
    migrated_database: Settings,
    sockets: list[SocketUser],
) -> None:
    owner = await register(client, name="Owner")
    members, _ = await big_silent_group(client, migrated_database, owner, MEMBERS, "Everyone")
    watcher = await connect(live_server.url, owner.access_token)
    sockets.append(watcher)
    settings = migrated_database
    leaving = await asyncio.gather(
        *(
            connect(
                live_server.url,
                issue_access_token(settings.secret_key, member.id, 600).token,
            )
            for member in members
        )
    )
    sockets.extend(leaving)
    await watcher.wait_for_count("presence", MEMBERS, timeout=30)  # all online
    onlines = len(watcher.named("presence"))

    pool = litestar_app(live_server).state.db_config.get_engine().sync_engine.pool
    checked_out = CheckedOut()
    event.listen(pool, "checkout", checked_out.checkout)
    event.listen(pool, "checkin", checked_out.checkin)
    try:
        await asyncio.gather(*(socket.close() for socket in leaving))
        offline = await watcher.wait_for_count("presence", onlines + MEMBERS, timeout=60)
    finally:
        event.remove(pool, "checkout", checked_out.checkout)
        event.remove(pool, "checkin", checked_out.checkin)

    gone = {item["user_id"] for item in offline[onlines:] if item["online"] is False}
    assert gone == {str(member.id) for member in members}
    # main: one session per disconnect, all at once (a 5,000-client benchmark stopping
    # exhausted the pool and logged thousands of presence_listener_failed).
    assert checked_out.peak <= settings.announce_workers, checked_out.peak
