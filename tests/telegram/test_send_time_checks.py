"""The notification job checks at send time what still holds: deleted messages, messages
the recipient has read meanwhile, and a recipient who came back online are not notified;
the count is what is still unread; a direct chat's text names the sender once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from saq.queue.base import Queue

from app.config import Settings
from tests.accounts.api import Account, register
from tests.messenger.api import group_chat
from tests.messenger.sockets import connect
from tests.support import LiveServer, free_port
from tests.telegram.conftest import stop_fully, telegram_settings
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.test_messenger_notifications import bind_telegram, direct_chat, texts_to

# Long enough for the test to delete, read or connect before the job runs, on a busy machine.
DELAY_SECONDS = 6.0


@pytest.fixture(scope="module")
def settings_tg(migrated_database: Settings, bot_api: FakeBotAPI) -> Settings:
    return telegram_settings(bot_api.url, telegram_notify_delay_seconds=DELAY_SECONDS)


@pytest.fixture(scope="module")
def telegram_app(settings_tg: Settings) -> Iterator[LiveServer]:
    from app.asgi import create_asgi

    server = LiveServer(create_asgi(settings_tg), free_port()).start()
    yield server
    stop_fully(server)


async def scheduled(queue: Queue, recipient: Account, chat_id: str, batch: int = 1) -> None:
    """Wait until the batch's job exists: the send's announcement (off the request path)
    found the recipient offline and scheduled the notification."""
    key = f"telegram-notify:{recipient.id}:{chat_id}:{batch}"
    deadline = asyncio.get_running_loop().time() + 60
    while await queue.job(key) is None:
        assert asyncio.get_running_loop().time() < deadline, f"job {key} never scheduled"
        await asyncio.sleep(0.1)


async def outcome(queue: Queue, recipient: Account, chat_id: str, batch: int = 1) -> Any:
    """What the batch's job answered, once it has run."""
    key = f"telegram-notify:{recipient.id}:{chat_id}:{batch}"
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        job = await queue.job(key)
        if job is not None and job.status.value == "complete":
            return job.result
        assert asyncio.get_running_loop().time() < deadline, f"job {key}: {job}"
        await asyncio.sleep(0.3)


async def send(http: httpx.AsyncClient, sender: Account, chat_id: str, text: str) -> str:
    sent = await http.post(
        f"/api/v1/chats/{chat_id}/messages", headers=sender.headers, json={"text": text}
    )
    assert sent.status_code == 201, sent.text
    return str(sent.json()["id"])


async def ann_and_bound_bob(
    http: httpx.AsyncClient, server: LiveServer, bot_api: FakeBotAPI, telegram_id: int
) -> tuple[Account, Account, str]:
    """Ann, Bob bound to the Telegram chat ``telegram_id`` (the bot's "linked" answer already
    cleared), and the direct chat Ann opened with Bob."""
    ann = await register(http, name="Ann")
    bob = await register(http, name="Bob")
    await bind_telegram(http, server, bob, telegram_id)
    bot_api.reset()
    return ann, bob, await direct_chat(http, ann, bob)


async def test_a_message_deleted_within_the_window_is_not_notified(
    telegram_app: LiveServer, bot_api: FakeBotAPI, queue: Queue
) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url, timeout=60) as http:
        ann, bob, chat_id = await ann_and_bound_bob(http, telegram_app, bot_api, 9101)
        message_id = await send(http, ann, chat_id, "oops, wrong chat: my password")
        deleted = await http.delete(f"/api/v1/messages/{message_id}", headers=ann.headers)
        assert deleted.status_code == 204
        assert await outcome(queue, bob, chat_id) == "nothing_unread"
    assert texts_to(bot_api, 9101) == []


async def test_the_count_is_what_is_still_unread_and_a_deleted_text_never_leaks(
    telegram_app: LiveServer, bot_api: FakeBotAPI, queue: Queue
) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url, timeout=60) as http:
        ann, bob, chat_id = await ann_and_bound_bob(http, telegram_app, bot_api, 9201)
        first = await send(http, ann, chat_id, "one")
        await send(http, ann, chat_id, "two")
        await send(http, ann, chat_id, "three")
        last = await send(http, ann, chat_id, "four, regretted")
        # Bob reads the first on another device; Ann deletes the last.
        read = await http.post(
            f"/api/v1/chats/{chat_id}/read", headers=bob.headers, json={"message_id": first}
        )
        assert read.status_code == 200
        assert (
            await http.delete(f"/api/v1/messages/{last}", headers=ann.headers)
        ).status_code == 204
        assert await outcome(queue, bob, chat_id) == "sent"
    assert texts_to(bot_api, 9201) == ["2 new messages from Ann: three"]


async def test_a_chat_read_within_the_window_is_not_notified(
    telegram_app: LiveServer, bot_api: FakeBotAPI, queue: Queue
) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url, timeout=60) as http:
        ann, bob, chat_id = await ann_and_bound_bob(http, telegram_app, bot_api, 9301)
        await send(http, ann, chat_id, "are you there?")
        assert (
            await http.post(f"/api/v1/chats/{chat_id}/read", headers=bob.headers)
        ).status_code == 200
        assert await outcome(queue, bob, chat_id) == "nothing_unread"
    assert texts_to(bot_api, 9301) == []


async def test_a_recipient_back_online_within_the_window_is_not_notified(
    telegram_app: LiveServer, bot_api: FakeBotAPI, queue: Queue
) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url, timeout=60) as http:
        ann, bob, chat_id = await ann_and_bound_bob(http, telegram_app, bot_api, 9401)
        await send(http, ann, chat_id, "ping")
        # Back online after the notification was scheduled (connecting before the send's
        # announcement ran would mean he was never offline for it).
        await scheduled(queue, bob, chat_id)
        bob_socket = await connect(telegram_app.url, bob.access_token)
        try:
            assert await outcome(queue, bob, chat_id) == "online"
        finally:
            await bob_socket.close()
    assert texts_to(bot_api, 9401) == []


async def test_group_notifications_name_the_group_and_every_sender(
    telegram_app: LiveServer, bot_api: FakeBotAPI, queue: Queue
) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url, timeout=60) as http:
        ann = await register(http, name="Ann")
        cid = await register(http, name="Cid")
        bob = await register(http, name="Bob")
        await bind_telegram(http, telegram_app, bob, 9501)
        bot_api.reset()  # the bot\'s "linked" answer
        group = await group_chat(http, ann, [bob, cid], title="Team")
        await send(http, ann, group["id"], "hello team")
        await send(http, cid, group["id"], "hi all")
        assert await outcome(queue, bob, group["id"]) == "sent"
    assert texts_to(bot_api, 9501) == ["2 new messages from Cid and 1 other in Team: hi all"]
