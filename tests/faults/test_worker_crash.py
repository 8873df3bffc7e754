"""The SAQ worker process killed (SIGKILL) in the middle of a Telegram notification: the
job is swept and retried by the next worker, and the user is notified exactly once."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from aiohttp import web
from redis.asyncio import Redis

from app.asgi import create_asgi
from app.config import Settings
from app.domain.telegram.services import INFLIGHT_KEY, TelegramService
from app.lib.db import create_sqlalchemy_config
from tests.accounts.api import register
from tests.faults.conftest import PrivateRedis
from tests.messenger.api import direct_chat, send_text
from tests.support import READY_SECONDS, LiveServer, free_port, make_settings
from tests.telegram.fake_bot_api import BOT_TOKEN, BOT_USERNAME, Call, FakeBotAPI
from tests.telegram.processes import AppProcess, litestar_process, process_env

HEARTBEAT_SECONDS = 2
TELEGRAM_CHAT = 7301


class HoldingBotAPI(FakeBotAPI):
    """The fake Bot API, except that the first ``sendMessage`` never gets an answer: the
    request is in flight, the message not delivered, when the worker dies."""

    def __init__(self) -> None:
        super().__init__()
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["method"] == "sendMessage" and not self.held.is_set():
            self.held.set()
            self.calls.append(Call("sendMessage", await self._params(request), 0.0, "held"))
            await self.release.wait()
            return web.Response(status=500)
        return await super()._handle(request)


def worker_process(settings: Settings, log: Path) -> AbstractAsyncContextManager[AppProcess]:
    """``litestar workers run`` as production runs it, in its own OS process."""
    env = process_env(
        settings,
        settings.telegram_api_url or "",
        WORKER_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
    )
    return litestar_process(["workers", "run"], env, log)


def read(log: Path) -> str:
    return log.read_text(errors="replace")


def worker_id(log: Path) -> str:
    """SAQ's id of the worker writing this log (once it has started)."""
    match = re.search(r"Worker starting.*?worker_id=([0-9a-f-]+)", read(log))
    return match.group(1) if match else f"not started yet: {log.name}"


async def job_worker(redis: Redis) -> str:
    """The id of the worker that last took the (only) notification job."""
    (key,) = await redis.keys("saq:job:default:telegram-notify:*")
    return str(json.loads(await redis.get(key) or "{}")["worker_id"])


async def wait_for(condition, timeout: float, describe) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(describe())
        await asyncio.sleep(0.1)


@pytest.mark.timeout(READY_SECONDS + 120)
async def test_a_worker_killed_mid_notification_is_retried_and_notifies_once(
    private_redis: PrivateRedis, migrated_database: Settings, tmp_path: Path
) -> None:
    bot_api = await HoldingBotAPI().start()
    settings = make_settings(
        redis_url=private_redis.url,
        telegram_bot_token=BOT_TOKEN,
        telegram_api_url=bot_api.url,
        telegram_bot_username=BOT_USERNAME,
        telegram_notify_delay_seconds=0.5,
        telegram_job_retry_delay_seconds=0.5,
        worker_heartbeat_seconds=HEARTBEAT_SECONDS,
        worker_in_process=False,
    )
    server = LiveServer(create_asgi(settings), free_port()).start()
    redis = Redis.from_url(private_redis.url)
    db_config = create_sqlalchemy_config(settings, pooled=False)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            alice = await register(http, name="Alice")
            bob = await register(http, name="Bob")
            async with db_config.get_session() as session:
                service = TelegramService(session, redis, settings)
                link = (await service.create_link(UUID(alice.id))).url
                await service.bind(link.rsplit("=", 1)[1], TELEGRAM_CHAT)
            chat_id = (await direct_chat(http, bob, alice))["id"]
            # Alice has no live connection: the message becomes a notification job.
            await send_text(http, bob, chat_id, "are you there?")

        # Two workers, as production runs several: the one that takes the job is killed
        # in the middle of it, the other one must notice and run it again.
        logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
        async with (
            worker_process(settings, logs[0]) as first,
            worker_process(settings, logs[1]) as second,
        ):
            await wait_for(
                bot_api.held.is_set,
                READY_SECONDS,
                lambda: "no worker sent; they said:\n" + "\n".join(map(read, logs)),
            )
            running = await job_worker(redis)
            assert running in (worker_id(logs[0]), worker_id(logs[1]))
            doomed, survivor = (first, second) if running == worker_id(logs[0]) else (second, first)
            doomed.process.kill()  # SIGKILL: no clean-up, no "retry" written by the dying worker
            await doomed.process.wait()
            assert doomed.process.returncode == -signal.SIGKILL
            assert bot_api.delivered() == []

            await wait_for(
                lambda: bool(bot_api.delivered()),
                30,
                lambda: (
                    "the job was never retried; the workers said:\n" + "\n".join(map(read, logs))
                ),
            )
            await asyncio.sleep(HEARTBEAT_SECONDS + 1)  # room for a wrong second delivery
            assert survivor.process.returncode is None
            assert await job_worker(redis) != running

        delivered = [m["text"] for m in bot_api.delivered()]
        assert delivered == ["New message from Bob: are you there?"]
        assert [c.outcome for c in bot_api.attempts()] == ["held", "ok"]
        # The batch is done: its in-flight counter is gone.
        assert await redis.keys(INFLIGHT_KEY.format(user=alice.id, chat="*", batch="*")) == []
    finally:
        bot_api.release.set()
        await redis.aclose()
        await db_config.get_engine().dispose()
        server.stop()
        await bot_api.stop()
