"""Worker tasks of the Telegram domain: sending the debounced new-message notifications."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog
from redis.exceptions import ResponseError

from app.config import Settings
from app.domain.telegram.services import (
    INFLIGHT_KEY,
    PENDING_KEY,
    PENDING_TTL_SECONDS,
    TelegramService,
    compose_notification,
)
from app.lib.realtime import Presence
from app.lib.redis import as_text
from app.lib.worker import WorkerTasks

if TYPE_CHECKING:
    from aiogram import Bot

logger = structlog.get_logger("app.telegram.tasks")

# Waiting longer than this for Telegram's flood control inside one attempt would hold a worker
# slot too long; the job fails the attempt and SAQ retries it later instead.
MAX_INLINE_RETRY_AFTER_SECONDS = 60


async def send_message_notification(
    ctx: dict[str, Any], *, recipient_id: str, chat_id: str, batch: int
) -> str:
    """Send one Telegram message summing up a batch of new messages for one user in one chat.

    The batch's counter moves from its "pending" Redis key to an "in flight" key of its own
    first, so messages arriving meanwhile open the next batch, and a retried attempt sends
    the same summary again.

    At send time the batch is checked against what holds now: nothing is sent to a user
    who is online again (``online``), and the count, senders and preview come from the
    batch's messages that are neither deleted nor read (``nothing_unread`` when none are).

    Returns what happened: ``sent``, ``unbound``, ``logged`` (no bot token), ``blocked``
    (the user blocked the bot; the binding is dropped), ``online``, ``nothing_unread`` or
    ``empty``.
    """
    settings: Settings = ctx["settings"]
    redis = ctx["redis"]
    names = {"user": recipient_id, "chat": chat_id}
    inflight = INFLIGHT_KEY.format(batch=batch, **names)
    if not await redis.exists(inflight):
        try:
            await redis.rename(PENDING_KEY.format(**names), inflight)
        except ResponseError:  # no such key: expired, or already taken by this batch
            return "empty"
        await redis.expire(inflight, PENDING_TTL_SECONDS)
    summary = {as_text(k): as_text(v) for k, v in (await redis.hgetall(inflight)).items()}

    async with ctx["db_session_maker"]() as session:
        service = TelegramService(session, redis, settings)
        telegram_chat_id = await service.chat_id_for(UUID(recipient_id))
        if telegram_chat_id is None:
            await redis.delete(inflight)
            return "unbound"
        message_ids = [UUID(key[4:]) for key in summary if key.startswith("msg:")]
        if message_ids:
            presence = Presence(redis, "", settings.presence_ttl_seconds)
            if await presence.online([UUID(recipient_id)]):
                await redis.delete(inflight)
                logger.info(
                    "telegram_notification_skipped", recipient_id=recipient_id, reason="online"
                )
                return "online"
            current = await service.still_unread(UUID(recipient_id), UUID(chat_id), message_ids)
            if current is None:
                await redis.delete(inflight)
                logger.info(
                    "telegram_notification_skipped",
                    recipient_id=recipient_id,
                    reason="nothing_unread",
                )
                return "nothing_unread"
            summary = {
                key: value
                for key, value in summary.items()
                if not key.startswith(("from:", "msg:"))
            } | current
        text = compose_notification(summary)
        bot: Bot | None = ctx.get("telegram_bot")
        if bot is None:
            # Never the message text in the log: who and how many only.
            logger.info(
                "telegram_notification_logged",
                recipient_id=recipient_id,
                count=summary.get("count"),
            )
            await redis.delete(inflight)
            return "logged"
        from aiogram.exceptions import TelegramForbiddenError

        try:
            await send_with_retries(
                bot,
                telegram_chat_id,
                text,
                attempts=settings.telegram_send_attempts,
                base_delay=settings.telegram_retry_base_seconds,
            )
        except TelegramForbiddenError:
            # Blocked by the user or the chat is gone: sending again can never succeed.
            await service.unbind(UUID(recipient_id))
            await redis.delete(inflight)
            logger.info("telegram_binding_dropped", recipient_id=recipient_id)
            return "blocked"
    await redis.delete(inflight)
    logger.info("telegram_notification_sent", recipient_id=recipient_id, count=summary.get("count"))
    return "sent"


async def send_with_retries(
    bot: Bot, chat_id: int, text: str, *, attempts: int, base_delay: float
) -> None:
    """``sendMessage`` with exponential backoff on network and server errors and Telegram's
    own ``retry_after`` on 429; the last failure propagates (SAQ then retries the job)."""
    from aiogram.exceptions import (
        TelegramEntityTooLarge,
        TelegramNetworkError,
        TelegramRetryAfter,
        TelegramServerError,
    )

    for attempt in range(1, attempts + 1):
        try:
            await bot.send_message(chat_id=chat_id, text=text)
            return
        except TelegramRetryAfter as exc:
            if attempt == attempts or exc.retry_after > MAX_INLINE_RETRY_AFTER_SECONDS:
                raise
            logger.info("telegram_flood_wait", retry_after=exc.retry_after, attempt=attempt)
            await asyncio.sleep(exc.retry_after)
        except TelegramEntityTooLarge:
            raise
        except (TelegramNetworkError, TelegramServerError) as exc:
            if attempt == attempts:
                raise
            delay = base_delay * 2 ** (attempt - 1)
            logger.info("telegram_send_retry", error=str(exc), delay=delay, attempt=attempt)
            await asyncio.sleep(delay)


async def start_telegram_bot(ctx: dict[str, Any]) -> None:
    """Worker start-up: one Bot (one HTTP session) for every job, when a token is set.

    aiogram is imported only then: its import takes seconds of CPU, and the in-process
    worker starts on the web process's event loop, which it would block that long.
    """
    settings: Settings = ctx["settings"]
    ctx["telegram_bot"] = None
    if settings.telegram_enabled:
        from app.domain.telegram.bot import create_bot

        ctx["telegram_bot"] = create_bot(settings)


async def stop_telegram_bot(ctx: dict[str, Any]) -> None:
    bot: Bot | None = ctx.get("telegram_bot")
    if bot is not None:
        await bot.session.close()


telegram_worker_tasks = WorkerTasks(
    functions=[send_message_notification],
    startup=[start_telegram_bot],
    shutdown=[stop_telegram_bot],
)
