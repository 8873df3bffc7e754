"""Wires Telegram into the application: the notifier, the webhook's bot and the CLI group.

* ``state.notifier`` becomes the debounced :class:`TelegramNotifier` when TELEGRAM_BOT_TOKEN
  is set; otherwise it stays (or becomes) the :class:`LoggingNotifier`.
* ``litestar --app app.asgi:create_app telegram poll`` runs the bot by long polling;
  ``telegram set-webhook URL`` / ``telegram delete-webhook`` switch Telegram to the webhook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from litestar.plugins import CLIPluginProtocol, InitPluginProtocol

from app.config import Settings
from app.domain.telegram.services import TelegramNotifier
from app.lib.notifications import LoggingNotifier

if TYPE_CHECKING:
    import click
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from redis.asyncio import Redis
    from saq.queue.base import Queue


class TelegramPlugin(InitPluginProtocol, CLIPluginProtocol):
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        db_config: SQLAlchemyAsyncConfig,
        queue: Callable[[], Queue],
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.db_config = db_config
        self.queue = queue

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if not self.settings.telegram_enabled:
            app_config.state.setdefault("notifier", LoggingNotifier())
            return app_config
        app_config.state["notifier"] = TelegramNotifier(self.redis, self.queue(), self.settings)
        if self.settings.telegram_webhook_secret:
            # aiogram takes a while to import: only processes that use the bot load it.
            from app.domain.telegram.bot import create_bot, create_dispatcher

            bot = create_bot(self.settings)
            app_config.state["telegram_bot"] = bot
            app_config.state["telegram_dispatcher"] = create_dispatcher()

            async def close_bot_session() -> None:
                await bot.session.close()

            app_config.on_shutdown.append(close_bot_session)
        return app_config

    def on_cli_init(self, cli: click.Group) -> None:
        import click
        from litestar.cli._utils import LitestarGroup

        plugin = self

        @click.group(cls=LitestarGroup, name="telegram")
        def telegram_group() -> None:
            """The Telegram bot: long polling and webhook registration."""

        @telegram_group.command(name="poll")  # type: ignore[untyped-decorator]  # LitestarGroup
        def poll(app: Litestar) -> None:  # noqa: ARG001 - Litestar's CLI passes the app
            """Run the bot by long polling (/start <token> binds, /stop unbinds)."""
            from app.domain.telegram.bot import run_polling

            plugin.require_token()
            session_maker = plugin.db_config.create_session_maker()
            asyncio.run(run_polling(plugin.settings, plugin.redis, session_maker))

        @telegram_group.command(name="set-webhook")  # type: ignore[untyped-decorator]  # LitestarGroup
        @click.argument("url")
        def set_webhook(app: Litestar, url: str) -> None:  # noqa: ARG001 - Litestar's CLI passes the app
            """Have Telegram push updates to URL (…/api/v1/telegram/webhook) with the secret."""
            plugin.require_token()
            if not plugin.settings.telegram_webhook_secret:
                raise click.ClickException("Set TELEGRAM_WEBHOOK_SECRET first.")
            asyncio.run(plugin.set_webhook(url))
            click.echo(f"Webhook set to {url}")

        @telegram_group.command(name="delete-webhook")  # type: ignore[untyped-decorator]  # LitestarGroup
        def delete_webhook(app: Litestar) -> None:  # noqa: ARG001 - Litestar's CLI passes the app
            """Stop webhook delivery (polling needs this; `poll` also does it)."""
            plugin.require_token()
            asyncio.run(plugin.set_webhook(None))
            click.echo("Webhook deleted")

        cli.add_command(telegram_group)

    def require_token(self) -> None:
        import click

        if not self.settings.telegram_enabled:
            raise click.ClickException("Set TELEGRAM_BOT_TOKEN (from @BotFather) first.")

    async def set_webhook(self, url: str | None) -> None:
        from app.domain.telegram.bot import create_bot

        bot = create_bot(self.settings)
        try:
            if url is None:
                await bot.delete_webhook()
            else:
                await bot.set_webhook(url, secret_token=self.settings.telegram_webhook_secret)
        finally:
            await bot.session.close()
