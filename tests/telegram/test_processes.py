"""The production processes as separate OS processes: the SAQ worker
(``litestar workers run``) and the bot's long polling (``litestar telegram poll``), both
talking to the fake Bot API; plus the embedded default (SQLite, fakeredis, worker inside the
web process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from app.asgi import create_asgi
from app.config import Settings
from app.domain.telegram.bot import BOUND_REPLY, STOPPED_REPLY
from app.domain.telegram.services import TelegramNotifier, TelegramService
from app.domain.telegram.tasks import telegram_worker_tasks
from app.lib.db import create_sqlalchemy_config
from app.lib.ids import new_uuid7
from app.lib.notifications import OfflineNotice
from app.lib.redis import create_redis
from app.lib.saq_patches import EmbeddedRedisQueue
from app.lib.worker import create_worker
from tests.support import READY_SECONDS, LiveServer, free_port
from tests.telegram.conftest import UserFactory, create_account, telegram_settings
from tests.telegram.fake_bot_api import FakeBotAPI, command_update
from tests.telegram.processes import litestar_process, process_env
from tests.telegram.test_binding import send_command, token_of
from tests.telegram.test_notifications import notifications_to

# Importing aiogram and the app in a fresh interpreter is slow on a busy machine.
PROCESS_TIMEOUT = READY_SECONDS


async def wait_until(
    predicate: Callable[[], Any], timeout: float, describe: Callable[[], str]
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        describe()  # raises at once when the process died
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(describe())
        await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(PROCESS_TIMEOUT + 60)
async def test_the_worker_process_sends_a_queued_notification(
    settings_tg: Settings,
    bot_api: FakeBotAPI,
    service: TelegramService,
    notifier: TelegramNotifier,
    tmp_path: Path,
    make_user: UserFactory,
) -> None:
    user_id = await make_user()
    await service.bind(token_of((await service.create_link(user_id)).url), 7001)
    for n in range(5):
        await notify_once(notifier, user_id, f"queued {n}")

    async with litestar_process(
        ["workers", "run"], process_env(settings_tg, bot_api.url), tmp_path / "worker.log"
    ) as process:

        async def delivered() -> bool:
            return bool(bot_api.delivered())

        await wait_until(
            delivered, PROCESS_TIMEOUT, lambda: "no sendMessage; worker said:\n" + process.output()
        )
        await asyncio.sleep(2)

    assert notifications_to(bot_api, 7001) == ["5 new messages from Ann in Team: queued 4"]


@pytest.mark.slow
@pytest.mark.timeout(PROCESS_TIMEOUT + 60)
async def test_the_polling_bot_process_binds_and_unbinds(
    settings_tg: Settings,
    bot_api: FakeBotAPI,
    service: TelegramService,
    tmp_path: Path,
    make_user: UserFactory,
) -> None:
    user_id = await make_user()
    token = token_of((await service.create_link(user_id)).url)
    bot_api.push_update(command_update(1, 7002, f"/start {token}"))

    async with litestar_process(
        ["telegram", "poll"], process_env(settings_tg, bot_api.url), tmp_path / "bot.log"
    ) as process:

        async def replied(count: int) -> Callable[[], Any]:
            async def check() -> bool:
                return len(notifications_to(bot_api, 7002)) >= count

            return check

        await wait_until(
            await replied(1), PROCESS_TIMEOUT, lambda: "no reply; bot said:\n" + process.output()
        )
        await service.session.rollback()
        assert await service.chat_id_for(user_id) == 7002

        bot_api.push_update(command_update(2, 7002, "/stop"))
        await wait_until(await replied(2), 30, lambda: "no reply to /stop:\n" + process.output())

    await service.session.rollback()
    assert await service.chat_id_for(user_id) is None
    assert notifications_to(bot_api, 7002) == [BOUND_REPLY, STOPPED_REPLY]
    # polling is refused while a webhook is set, so the bot removes it first
    assert "deleteWebhook" in [c.method for c in bot_api.calls]


async def test_embedded_default_runs_the_worker_in_the_web_process_on_fakeredis(
    bot_api: FakeBotAPI, tmp_path: Path
) -> None:
    settings = telegram_settings(
        bot_api.url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'embedded.db'}",
        redis_url=None,
        worker_in_process=None,
    )
    assert settings.embedded
    assert settings.run_worker_in_process
    app = LiveServer(create_asgi(settings), free_port()).start()
    redis = create_redis(settings)  # the same in-process stand-in the server uses
    db_config = create_sqlalchemy_config(settings, pooled=False)
    plugin = create_worker(settings, redis, db_config, [telegram_worker_tasks])
    assert isinstance(plugin.queue, EmbeddedRedisQueue)
    await plugin.queue.connect()
    try:
        async with db_config.get_session() as session:
            service = TelegramService(session, redis, settings)
            user_id = await create_account(app.url)
            await send_command(
                app, 7003, f"/start {token_of((await service.create_link(user_id)).url)}"
            )
            assert await service.chat_id_for(user_id) == 7003

            notifier = TelegramNotifier(redis, plugin.queue, settings)
            for n in range(3):
                await notify_once(notifier, user_id, f"embedded {n}")
            await bot_api.wait_for_delivered(2)  # the bind reply, then the notification
    finally:
        await plugin.queue.disconnect()
        await db_config.get_engine().dispose()
        app.stop()

    assert notifications_to(bot_api, 7003)[1:] == ["3 new messages from Ann in Team: embedded 2"]


CHAT = new_uuid7()


async def notify_once(notifier: TelegramNotifier, user_id: UUID, text: str) -> None:
    await notifier.notify_new_message(
        OfflineNotice(
            recipient_id=user_id,
            chat_id=CHAT,
            chat_title="Team",
            sender_name="Ann",
            text_preview=text,
        )
    )
