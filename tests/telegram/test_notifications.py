"""Offline notifications: the notifier enqueues, the SAQ worker (inside the test application)
sends through aiogram to the fake Bot API, debounced, retried and rate-limit aware."""

from __future__ import annotations

import asyncio
import itertools
import time
from uuid import UUID

from app.domain.telegram.services import TelegramNotifier, TelegramService, compose_notification
from app.lib.ids import new_uuid7
from app.lib.notifications import OfflineNotice
from tests.support import LiveServer
from tests.telegram.conftest import create_account
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.test_binding import send_command, token_of


async def bind(app: LiveServer, service: TelegramService, chat_id: int) -> UUID:
    user_id = await create_account(app.url)
    response = await send_command(
        app, chat_id, f"/start {token_of((await service.create_link(user_id)).url)}"
    )
    assert response.status_code == 200
    assert await service.chat_id_for(user_id) == chat_id
    return user_id


async def notify(
    notifier: TelegramNotifier,
    recipient: UUID,
    chat: UUID,
    text: str,
    sender: str = "Ann",
    title: str = "Team",
) -> None:
    await notifier.notify_new_message(
        OfflineNotice(
            recipient_id=recipient,
            chat_id=chat,
            chat_title=title,
            sender_name=sender,
            text_preview=text,
        )
    )


def notifications_to(bot_api: FakeBotAPI, chat_id: int) -> list[str]:
    return [m["text"] for m in bot_api.delivered() if int(m["chat_id"]) == chat_id]


async def test_a_burst_of_20_messages_gives_one_notification_with_the_count(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    notifier: TelegramNotifier,
) -> None:
    user_id = await bind(telegram_app, service, 6001)
    bot_api.reset()
    chat_id = new_uuid7()

    for n in range(1, 21):
        await notify(notifier, user_id, chat_id, f"message number {n}")
    await bot_api.wait_for_delivered(1)
    await asyncio.sleep(2.5)  # any second notification would have been sent by now

    assert notifications_to(bot_api, 6001) == [
        "20 new messages from Ann in Team: message number 20"
    ]


async def test_messages_after_a_notification_open_a_new_batch(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    notifier: TelegramNotifier,
) -> None:
    user_id = await bind(telegram_app, service, 6002)
    bot_api.reset()
    chat_id = new_uuid7()

    await notify(notifier, user_id, chat_id, "first")
    await bot_api.wait_for_delivered(1)
    await notify(notifier, user_id, chat_id, "second")
    await notify(notifier, user_id, chat_id, "third", sender="Bob")
    await bot_api.wait_for_delivered(2)

    assert notifications_to(bot_api, 6002) == [
        "New message from Ann in Team: first",
        "2 new messages from Bob and 1 other in Team: third",
    ]


async def test_each_chat_is_debounced_separately(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    notifier: TelegramNotifier,
) -> None:
    user_id = await bind(telegram_app, service, 6003)
    bot_api.reset()

    await notify(notifier, user_id, new_uuid7(), "hello", title="Team")
    await notify(notifier, user_id, new_uuid7(), "hi", sender="Bob", title="Bob")
    await bot_api.wait_for_delivered(2)

    assert sorted(notifications_to(bot_api, 6003)) == [
        "New message from Ann in Team: hello",
        "New message from Bob in Bob: hi",
    ]


async def test_an_unbound_user_gets_no_notification(
    telegram_app: LiveServer, bot_api: FakeBotAPI, notifier: TelegramNotifier
) -> None:
    for _ in range(3):
        await notify(notifier, new_uuid7(), new_uuid7(), "nobody will read this")
    await asyncio.sleep(3.5)  # debounce (1 s) + scheduler tick (1 s) + slack

    assert bot_api.attempts() == []


async def test_telegram_429_retry_after_is_honoured_then_delivered_once(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    notifier: TelegramNotifier,
) -> None:
    user_id = await bind(telegram_app, service, 6004)
    bot_api.reset()
    bot_api.fail_next("sendMessage", 1, "429", retry_after=2)

    await notify(notifier, user_id, new_uuid7(), "slow down")
    await bot_api.wait_for_delivered(1)

    attempts = bot_api.attempts()
    assert [a.outcome for a in attempts] == ["429", "ok"]
    assert attempts[1].at - attempts[0].at >= 2.0
    assert notifications_to(bot_api, 6004) == ["New message from Ann in Team: slow down"]


async def test_network_errors_are_retried_with_growing_delays(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    notifier: TelegramNotifier,
) -> None:
    user_id = await bind(telegram_app, service, 6005)
    bot_api.reset()
    bot_api.fail_next("sendMessage", 2, "disconnect")
    bot_api.fail_next("sendMessage", 1, "500")

    await notify(notifier, user_id, new_uuid7(), "eventually")
    await bot_api.wait_for_delivered(1)

    attempts = bot_api.attempts()
    assert [a.outcome for a in attempts] == ["disconnect", "disconnect", "500", "ok"]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    # base 0.2 s, doubled each time: 0.2, 0.4, 0.8
    assert gaps[0] >= 0.2
    assert gaps[1] >= 0.4
    assert gaps[2] >= 0.8
    assert notifications_to(bot_api, 6005) == ["New message from Ann in Team: eventually"]


async def test_a_user_who_blocked_the_bot_is_unbound(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    notifier: TelegramNotifier,
) -> None:
    user_id = await bind(telegram_app, service, 6006)
    bot_api.reset()
    bot_api.fail_next("sendMessage", 1, "403")

    await notify(notifier, user_id, new_uuid7(), "are you there?")
    deadline = time.monotonic() + 15
    while await service.chat_id_for(user_id) is not None:
        assert time.monotonic() < deadline, "the binding was not dropped"
        await asyncio.sleep(0.1)
        await service.session.rollback()  # see the worker's commit

    assert [a.outcome for a in bot_api.attempts()] == ["403"]


def test_notification_text_shortens_long_previews() -> None:
    text = compose_notification(
        {
            "count": "1",
            "sender": "Ann",
            "chat_title": "Team",
            "preview": "word " * 100,
            "from:Ann": "1",
        }
    )

    assert text.startswith("New message from Ann in Team: word word")
    assert text.endswith("…")
    assert len(text) < 200
