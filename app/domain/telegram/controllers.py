"""HTTP side of Telegram: the user's binding link, and the bot's optional webhook."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from pydantic import ValidationError

from app.domain.accounts.authentication import BEARER_SECURITY
from app.domain.telegram.schemas import TelegramBindingStatus, TelegramLink
from app.domain.telegram.services import TelegramService
from app.lib.auth import PUBLIC_ROUTE
from app.lib.dependencies import DbSessionDep, RedisDep, SettingsDep
from app.lib.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
TelegramServiceDep = NamedDependency[TelegramService]


def provide_telegram_service(
    db_session: DbSessionDep, redis: RedisDep, settings: SettingsDep
) -> TelegramService:
    return TelegramService(db_session, redis, settings)


def current_user_id(request: Request[Any, Any, Any]) -> UUID:
    """The logged-in user, set on the request by the accounts domain's authentication."""
    user = request.scope.get("user")
    if user is None:
        raise UnauthorizedError("Log in first: send your access token as a Bearer token.")
    return UUID(str(user.id))


class TelegramBindingController(Controller):
    """Link the current user's account to a Telegram chat, or unlink it."""

    path = "/api/v1/users/me/telegram"
    tags = ["telegram"]
    security = BEARER_SECURITY
    dependencies = {"telegram": Provide(provide_telegram_service, sync_to_thread=False)}

    @get("/", summary="Whether notifications go to Telegram")
    async def get_binding(
        self, request: Request[Any, Any, Any], telegram: TelegramServiceDep
    ) -> TelegramBindingStatus:
        """Whether my account is bound to a Telegram chat, and since when."""
        binding = await telegram.get_binding(current_user_id(request))
        if binding is None:
            return TelegramBindingStatus(bound=False)
        return TelegramBindingStatus(bound=True, bound_at=binding.bound_at)

    @post(
        "/",
        status_code=201,
        summary="Create a link that binds a Telegram chat",
        description="Answers a deep link `https://t.me/<bot>?start=<token>` with a single-use "
        "token; opening it in Telegram and pressing Start binds that chat. Creating a new "
        "link cancels the previous unused one. 409 when the server has no Telegram bot.",
    )
    async def create_link(
        self, request: Request[Any, Any, Any], telegram: TelegramServiceDep, settings: SettingsDep
    ) -> TelegramLink:
        user_id = current_user_id(request)
        if not settings.telegram_enabled:
            raise ConflictError("This server has no Telegram bot (TELEGRAM_BOT_TOKEN is not set).")
        link = await telegram.create_link(user_id)
        return TelegramLink(link=link.url, expires_in=link.expires_in)

    @delete("/", status_code=204, summary="Stop Telegram notifications")
    async def unbind(self, request: Request[Any, Any, Any], telegram: TelegramServiceDep) -> None:
        """Unbinds my Telegram chat: no more notifications there until I bind again."""
        await telegram.unbind(current_user_id(request))


class TelegramWebhookController(Controller):
    """Updates pushed by Telegram (``setWebhook`` with a secret token) instead of polling."""

    path = "/api/v1/telegram/webhook"
    opt = PUBLIC_ROUTE
    tags = ["telegram"]

    @post(
        "/",
        status_code=200,
        summary="Telegram Bot API webhook",
        description=f"Only Telegram calls this: the `{SECRET_HEADER}` header must carry "
        "TELEGRAM_WEBHOOK_SECRET (403 otherwise). 404 when no secret is configured.",
    )
    async def receive_update(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[dict[str, Any]],
        db_session: DbSessionDep,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> None:
        secret = settings.telegram_webhook_secret
        bot: Bot | None = request.app.state.get("telegram_bot")
        dispatcher: Dispatcher | None = request.app.state.get("telegram_dispatcher")
        if not secret or bot is None or dispatcher is None:
            raise NotFoundError("The Telegram webhook is not enabled on this server.")
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise ForbiddenError("Wrong or missing Telegram secret token.")
        from aiogram.types import Update  # aiogram loads only where Telegram is enabled

        try:
            update = Update.model_validate(data, context={"bot": bot})
        except ValidationError as exc:
            raise InvalidInputError("Not a Telegram update.") from exc
        await dispatcher.feed_update(
            bot, update, telegram_service=TelegramService(db_session, redis, settings)
        )
