"""The application's lifespan creates its long-lived resources and leaves nothing behind.

The embedded default (SQLite file, in-process Redis stand-in and worker) is started and
stopped in this process, as ``make run`` and Ctrl+C do.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from app.asgi import create_app
from app.config import Settings
from app.domain.telegram.plugin import create_notifier
from app.domain.telegram.services import TelegramNotifier
from app.lib.db import create_sqlalchemy_config
from app.lib.images import THREAD_NAME_PREFIX, ImagePool, run_image_work
from app.lib.notifications import LoggingNotifier
from app.lib.realtime import Realtime
from app.lib.redis import create_redis
from app.lib.worker import create_worker

# Without work to finish, the worker stops as soon as its slots' dequeues return.
PROMPT_STOP_SECONDS = 3.0


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _embedded_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'quintet.db'}")


async def test_stopping_the_embedded_app_waits_for_no_task_and_leaves_none(
    tmp_path: Path,
) -> None:
    app = create_app(_embedded_settings(tmp_path))
    records = _Records()
    saq_logger = logging.getLogger("saq")
    saq_logger.addHandler(records)
    before = asyncio.all_tasks()
    try:
        async with app.lifespan():
            worker: Any = next(iter(app.plugins.get("SAQPlugin").get_workers().values()))
            while not worker.tasks:  # the in-process worker is running its upkeep and slots
                await asyncio.sleep(0.05)
            stopping = time.monotonic()
        stopped_after = time.monotonic() - stopping
    finally:
        saq_logger.removeHandler(records)

    assert not [m for m in records.messages if "did not finish" in m], records.messages
    left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    assert [t for t in left if not t.done()] == []
    assert stopped_after < PROMPT_STOP_SECONDS


async def test_the_lifespan_makes_the_trivia_client_and_image_pool_and_closes_them(
    tmp_path: Path,
) -> None:
    app = create_app(_embedded_settings(tmp_path))
    async with app.lifespan():
        importer = app.state.trivia_importer
        image_pool = next(m for m in app._lifespan_managers if _is_image_pool(m))
        executor = cast(Any, image_pool).__self__.executor
        assert not importer.http.is_closed
        assert (await run_image_work(threading.current_thread)).name.startswith(THREAD_NAME_PREFIX)
    assert importer.http.is_closed
    assert "trivia_importer" not in app.state
    assert executor._shutdown
    # This pool's threads (the suite's live servers have pools of their own).
    assert not [t for t in executor._threads if t.is_alive()]


def _is_image_pool(manager: object) -> bool:
    return isinstance(getattr(manager, "__self__", None), ImagePool)


def test_realtime_is_constructed_with_its_account_check(tmp_path: Path) -> None:
    settings = _embedded_settings(tmp_path)

    async def nobody_exists(_: UUID) -> bool:
        return False

    realtime = Realtime(settings, create_redis(settings), account_exists=nobody_exists)
    assert realtime.account_exists is nobody_exists
    app = create_app(settings)
    assert app.state.realtime.account_exists is not None


def test_the_notifier_is_chosen_once_when_the_app_is_made(tmp_path: Path) -> None:
    settings = _embedded_settings(tmp_path)
    queue = create_worker(settings, create_redis(settings), create_sqlalchemy_config(settings), [])
    assert isinstance(
        create_notifier(settings, create_redis(settings), queue.queue), LoggingNotifier
    )
    with_bot = replace(settings, telegram_bot_token="123:abc")
    assert isinstance(
        create_notifier(with_bot, create_redis(with_bot), queue.queue), TelegramNotifier
    )
    assert isinstance(create_app(with_bot).state.notifier, TelegramNotifier)
