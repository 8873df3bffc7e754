"""The Telegram bot (aiogram 3): ``/start <token>`` binds the chat, ``/stop`` unbinds it.

The same dispatcher serves long polling (``litestar telegram poll``) and the webhook route.
Handlers get a :class:`TelegramService` as ``telegram_service``: the webhook passes one
built on the request's session, polling gets one per update from the middleware below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiogram import BaseMiddleware, Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message, TelegramObject
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.telegram.services import InvalidLinkTokenError, TelegramService
from app.lib.web import describe_duration

logger = structlog.get_logger("app.telegram.bot")

BOUND_REPLY = (
    "Done: this chat is now linked to your Quintet account. I will tell you here about "
    "new messages while you are offline. Send /stop to unlink."
)


def invalid_token_reply(link_ttl_seconds: int) -> str:
    """What /start with a spent link answers: how long a new link lasts is the setting's."""
    return (
        "This link is invalid, has expired or was already used. Open Quintet, press "
        "\u201cBind Telegram\u201d again and follow the new link within "
        f"{describe_duration(link_ttl_seconds)}."
    )


# The reply with the default TELEGRAM_LINK_TTL_SECONDS.
INVALID_TOKEN_REPLY = invalid_token_reply(Settings.telegram_link_ttl_seconds)
WELCOME_REPLY = (
    "Hi! I send Quintet notifications. To link this chat, open Quintet, press "
    "\u201cBind Telegram\u201d and follow the link."
)
STOPPED_REPLY = "Unlinked: you will get no more notifications here."
NOT_BOUND_REPLY = "This chat is not linked to any Quintet account."


def create_bot(settings: Settings) -> Bot:
    """A Bot for TELEGRAM_BOT_TOKEN, talking to TELEGRAM_API_URL when one is set (a local Bot
    API server, or the tests' fake) and to api.telegram.org otherwise."""
    if not settings.telegram_bot_token:
        raise RuntimeError("TELEGRAM_BOT_TOKEN is not set")
    session = (
        AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
        if settings.telegram_api_url
        else AiohttpSession()
    )
    return Bot(settings.telegram_bot_token, session=session)


def create_router() -> Router:
    # A router can belong to one dispatcher only, so each dispatcher gets a new one.
    router = Router(name="telegram-binding")

    @router.message(CommandStart(deep_link=True))
    async def start_with_token(
        message: Message, command: CommandObject, telegram_service: TelegramService
    ) -> None:
        try:
            await telegram_service.bind(command.args or "", message.chat.id)
        except InvalidLinkTokenError:
            ttl = telegram_service.settings.telegram_link_ttl_seconds
            await message.answer(invalid_token_reply(ttl))
            return
        await message.answer(BOUND_REPLY)

    @router.message(CommandStart())
    async def start_without_token(message: Message) -> None:
        await message.answer(WELCOME_REPLY)

    @router.message(Command("stop"))
    async def stop(message: Message, telegram_service: TelegramService) -> None:
        removed = await telegram_service.unbind_chat(message.chat.id)
        await message.answer(STOPPED_REPLY if removed else NOT_BOUND_REPLY)

    return router


class TelegramServiceMiddleware(BaseMiddleware):
    """Opens a database session per update for the handlers (polling mode)."""

    def __init__(
        self, session_maker: Callable[[], AsyncSession], redis: Redis, settings: Settings
    ) -> None:
        self.session_maker = session_maker
        self.redis = redis
        self.settings = settings

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if "telegram_service" in data:
            return await handler(event, data)
        async with self.session_maker() as session:
            data["telegram_service"] = TelegramService(session, self.redis, self.settings)
            return await handler(event, data)


def create_dispatcher(
    session_maker: Callable[[], AsyncSession] | None = None,
    redis: Redis | None = None,
    settings: Settings | None = None,
) -> Dispatcher:
    """The dispatcher; with a session maker it builds its own services (polling), without
    one the caller passes ``telegram_service`` to ``feed_update`` (webhook)."""
    dispatcher = Dispatcher()
    dispatcher.include_router(create_router())
    if session_maker is not None and redis is not None and settings is not None:
        dispatcher.update.outer_middleware(
            TelegramServiceMiddleware(session_maker, redis, settings)
        )
    return dispatcher


async def run_polling(
    settings: Settings, redis: Redis, session_maker: Callable[[], AsyncSession]
) -> None:
    """Long-poll the Bot API until SIGINT/SIGTERM (the ``telegram poll`` command)."""
    bot = create_bot(settings)
    dispatcher = create_dispatcher(session_maker, redis, settings)
    # getUpdates is refused while a webhook is set; polling means we do not want one.
    await bot.delete_webhook(drop_pending_updates=False)
    logger.info("telegram_polling_started", api=settings.telegram_api_url or "api.telegram.org")
    await dispatcher.start_polling(bot, polling_timeout=25, handle_signals=True)
