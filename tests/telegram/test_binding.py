"""Binding a Telegram chat: deep links, the bot's /start and /stop through the webhook, the
webhook's secret check, and the binding API's refusal of anonymous callers."""

from __future__ import annotations

import asyncio
from uuid import UUID

import httpx
from redis.asyncio import Redis

from app.asgi import create_asgi
from app.config import Settings
from app.domain.telegram.bot import (
    BOUND_REPLY,
    INVALID_TOKEN_REPLY,
    NOT_BOUND_REPLY,
    STOPPED_REPLY,
    WELCOME_REPLY,
    invalid_token_reply,
)
from app.domain.telegram.services import TelegramService
from tests.support import LiveServer, free_port
from tests.telegram.conftest import WEBHOOK_SECRET, UserFactory, telegram_settings
from tests.telegram.fake_bot_api import BOT_USERNAME, FakeBotAPI, command_update

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_update_ids = iter(range(1, 1_000_000))


def token_of(link: str) -> str:
    prefix = f"https://t.me/{BOT_USERNAME}?start="
    assert link.startswith(prefix), link
    return link[len(prefix) :]


async def link_token(service: TelegramService, user_id: UUID) -> str:
    """The token of a fresh deep link for ``user_id``."""
    return token_of((await service.create_link(user_id)).url)


async def send_command(
    app: LiveServer, chat_id: int, text: str, secret: str | None = WEBHOOK_SECRET
) -> httpx.Response:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    async with httpx.AsyncClient(base_url=app.url, timeout=20) as http:
        return await http.post(
            "/api/v1/telegram/webhook",
            json=command_update(next(_update_ids), chat_id, text),
            headers=headers,
        )


def replies_to(bot_api: FakeBotAPI, chat_id: int) -> list[str]:
    return [m["text"] for m in bot_api.delivered() if int(m["chat_id"]) == chat_id]


async def test_create_link_gives_a_deep_link_to_the_bot(
    service: TelegramService, make_user: UserFactory
) -> None:
    link = await service.create_link(await make_user())

    token = token_of(link.url)
    assert len(token) >= 20
    assert link.expires_in == 900


async def test_link_token_is_stored_hashed_with_an_expiry(
    service: TelegramService,
    redis: Redis,
    make_user: UserFactory,
) -> None:
    link = await service.create_link(await make_user())
    token = token_of(link.url)

    keys = [key.decode() async for key in redis.scan_iter("telegram:link:*")]
    assert keys
    assert all(token not in key for key in keys)
    assert 0 < await redis.ttl(keys[0]) <= 900


async def test_start_with_a_fresh_token_binds_the_chat(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    make_user: UserFactory,
) -> None:
    user_id = await make_user()
    token = await link_token(service, user_id)

    response = await send_command(telegram_app, 5001, f"/start {token}")

    assert response.status_code == 200
    assert replies_to(bot_api, 5001) == [BOUND_REPLY]
    assert await service.chat_id_for(user_id) == 5001


async def test_a_used_token_is_refused(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    make_user: UserFactory,
) -> None:
    user_id = await make_user()
    token = await link_token(service, user_id)
    await send_command(telegram_app, 5002, f"/start {token}")

    await send_command(telegram_app, 5003, f"/start {token}")

    assert replies_to(bot_api, 5003) == [INVALID_TOKEN_REPLY]
    assert await service.chat_id_for(user_id) == 5002


async def test_an_expired_token_is_refused(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    redis: Redis,
    make_user: UserFactory,
) -> None:
    settings = telegram_settings(bot_api.url, telegram_link_ttl_seconds=1)
    short_lived = TelegramService(service.session, redis, settings)
    user_id = await make_user()
    token = await link_token(short_lived, user_id)
    await asyncio.sleep(2.1)

    await send_command(telegram_app, 5004, f"/start {token}")

    assert replies_to(bot_api, 5004) == [INVALID_TOKEN_REPLY]
    assert await service.chat_id_for(user_id) is None


async def test_an_unknown_or_malformed_token_is_refused(
    telegram_app: LiveServer, bot_api: FakeBotAPI
) -> None:
    await send_command(telegram_app, 5005, "/start " + "A" * 32)
    await send_command(telegram_app, 5005, "/start bad!token")

    assert replies_to(bot_api, 5005) == [INVALID_TOKEN_REPLY, INVALID_TOKEN_REPLY]


async def test_a_new_link_cancels_the_previous_one(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    make_user: UserFactory,
) -> None:
    user_id = await make_user()
    old = await link_token(service, user_id)
    new = await link_token(service, user_id)

    await send_command(telegram_app, 5006, f"/start {old}")
    await send_command(telegram_app, 5006, f"/start {new}")

    assert replies_to(bot_api, 5006) == [INVALID_TOKEN_REPLY, BOUND_REPLY]


async def test_binding_again_moves_the_user_to_the_new_chat(
    telegram_app: LiveServer,
    service: TelegramService,
    make_user: UserFactory,
) -> None:
    user_id = await make_user()
    await send_command(telegram_app, 5007, f"/start {await link_token(service, user_id)}")
    await send_command(telegram_app, 5008, f"/start {await link_token(service, user_id)}")

    assert await service.chat_id_for(user_id) == 5008


async def test_start_without_a_token_explains_how_to_bind(
    telegram_app: LiveServer, bot_api: FakeBotAPI
) -> None:
    await send_command(telegram_app, 5009, "/start")

    assert replies_to(bot_api, 5009) == [WELCOME_REPLY]


async def test_stop_unbinds_the_chat(
    telegram_app: LiveServer,
    bot_api: FakeBotAPI,
    service: TelegramService,
    make_user: UserFactory,
) -> None:
    user_id = await make_user()
    await send_command(telegram_app, 5010, f"/start {await link_token(service, user_id)}")

    await send_command(telegram_app, 5010, "/stop")
    await send_command(telegram_app, 5010, "/stop")

    assert replies_to(bot_api, 5010) == [BOUND_REPLY, STOPPED_REPLY, NOT_BOUND_REPLY]
    assert await service.chat_id_for(user_id) is None


async def test_unbind_removes_the_binding(
    telegram_app: LiveServer,
    service: TelegramService,
    make_user: UserFactory,
) -> None:
    user_id = await make_user()
    await send_command(telegram_app, 5011, f"/start {await link_token(service, user_id)}")

    assert await service.unbind(user_id) is True
    assert await service.chat_id_for(user_id) is None
    assert await service.unbind(user_id) is False


async def test_webhook_with_a_wrong_secret_is_forbidden(
    telegram_app: LiveServer, bot_api: FakeBotAPI
) -> None:
    response = await send_command(telegram_app, 5012, "/start", secret="guess")

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 403
    assert replies_to(bot_api, 5012) == []


async def test_webhook_without_the_secret_header_is_forbidden(telegram_app: LiveServer) -> None:
    response = await send_command(telegram_app, 5013, "/start", secret=None)

    assert response.status_code == 403


async def test_webhook_rejects_a_body_that_is_not_an_update(telegram_app: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url) as http:
        response = await http.post(
            "/api/v1/telegram/webhook",
            json={"message": "hello"},
            headers={SECRET_HEADER: WEBHOOK_SECRET},
        )

    assert response.status_code == 422


async def test_webhook_is_not_found_when_no_secret_is_configured(
    migrated_database: Settings, bot_api: FakeBotAPI
) -> None:
    settings = telegram_settings(bot_api.url, telegram_webhook_secret=None, worker_in_process=False)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        response = await send_command(server, 5014, "/start", secret="anything")
    finally:
        server.stop()

    assert response.status_code == 404


async def test_binding_api_refuses_anonymous_callers(telegram_app: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url) as http:
        created = await http.post("/api/v1/users/me/telegram")
        deleted = await http.delete("/api/v1/users/me/telegram")

    assert created.status_code == 401
    assert deleted.status_code == 401
    assert created.headers["content-type"].startswith("application/problem+json")


async def test_binding_api_is_documented_with_bearer_auth(telegram_app: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url) as http:
        schema = (await http.get("/docs/openapi.json")).json()

    operations = schema["paths"]["/api/v1/users/me/telegram"]
    assert {"get", "post", "delete"} <= set(operations)
    assert operations["post"]["security"] == [{"BearerToken": []}]
    assert "/api/v1/telegram/webhook" in schema["paths"]


async def test_the_refusal_names_how_long_a_new_link_lasts_as_configured(
    migrated_database: Settings, bot_api: FakeBotAPI
) -> None:
    settings = telegram_settings(
        bot_api.url, telegram_link_ttl_seconds=120, worker_in_process=False
    )
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        await send_command(server, 5015, "/start " + "B" * 32)
    finally:
        server.stop()

    # main: "within 15 minutes" whatever TELEGRAM_LINK_TTL_SECONDS says.
    assert replies_to(bot_api, 5015) == [invalid_token_reply(120)]
    assert replies_to(bot_api, 5015)[0].endswith("follow the new link within 2 minutes.")
