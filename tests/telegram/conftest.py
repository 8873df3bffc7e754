"""Fixtures for the Telegram tests: the fake Bot API server, an application wired to it
(worker running inside the web process) and the domain's services in the test's loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from redis.asyncio import Redis
from saq.queue.base import Queue

from app.asgi import create_asgi
from app.config import Settings
from app.domain.telegram.services import TelegramNotifier, TelegramService
from app.domain.telegram.tasks import telegram_worker_tasks
from app.lib.db import create_sqlalchemy_config
from app.lib.worker import create_worker
from tests.accounts.api import register
from tests.support import LiveServer, free_port, make_settings
from tests.telegram.fake_bot_api import BOT_TOKEN, BOT_USERNAME, FakeBotAPI

WEBHOOK_SECRET = "webhook-secret-for-tests"


@pytest.fixture(scope="module")
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    server = await FakeBotAPI().start()
    yield server
    await server.stop()


@pytest.fixture(autouse=True)
def _fresh_bot_api(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "bot_api" in request.fixturenames:
        request.getfixturevalue("bot_api").reset()


def telegram_settings(bot_api_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": BOT_TOKEN,
        "telegram_api_url": bot_api_url,
        "telegram_bot_username": BOT_USERNAME,
        "telegram_webhook_secret": WEBHOOK_SECRET,
        "telegram_notify_delay_seconds": 1.0,
        "telegram_retry_base_seconds": 0.2,
        "worker_in_process": True,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture(scope="module")
def settings_tg(migrated_database: Settings, bot_api: FakeBotAPI) -> Settings:
    return telegram_settings(bot_api.url)


@pytest.fixture(scope="module")
def telegram_app(settings_tg: Settings) -> Iterator[LiveServer]:
    """The application with Telegram configured; its SAQ worker runs in the same process."""
    server = LiveServer(create_asgi(settings_tg), free_port()).start()
    yield server
    stop_fully(server)


def stop_fully(server: LiveServer) -> None:
    """Stop the server and wait until its thread is gone: its in-process worker must not
    outlive the module and take (then drop) jobs meant for the next module's worker."""
    server.stop()
    if server.thread is not None:
        server.thread.join(timeout=120)
        assert not server.thread.is_alive(), "the test server did not stop"


@pytest.fixture
async def redis(settings_tg: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings_tg.redis_url or "")
    yield client
    await client.aclose()


@pytest.fixture
async def service(settings_tg: Settings, redis: Redis) -> AsyncIterator[TelegramService]:
    config = create_sqlalchemy_config(settings_tg, pooled=False)
    async with config.get_session() as session:
        yield TelegramService(session, redis, settings_tg)
    await config.get_engine().dispose()


@pytest.fixture
async def queue(settings_tg: Settings, redis: Redis) -> AsyncIterator[Queue]:
    """The queue exactly as the web process builds it (to enqueue from the test)."""
    plugin = create_worker(
        settings_tg,
        redis,
        create_sqlalchemy_config(settings_tg, pooled=False),
        [telegram_worker_tasks],
    )
    await plugin.queue.connect()
    yield plugin.queue
    await plugin.queue.disconnect()


@pytest.fixture
def notifier(settings_tg: Settings, redis: Redis, queue: Queue) -> TelegramNotifier:
    return TelegramNotifier(redis, queue, settings_tg)


UserFactory = Callable[[], Awaitable[UUID]]


async def create_account(base_url: str) -> UUID:
    """A real messenger account (bindings reference user_account), made through the API."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        return UUID((await register(http, name="Telegram user")).id)


@pytest.fixture
def make_user(telegram_app: LiveServer) -> UserFactory:
    return lambda: create_account(telegram_app.url)
