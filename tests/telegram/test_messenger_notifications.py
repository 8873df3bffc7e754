"""The whole path: a messenger user binds Telegram through the API and the bot, then messages
sent to them while offline reach the (fake) Bot API as one debounced notification."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from tests.accounts.api import Account, register
from tests.messenger.sockets import connect
from tests.support import LiveServer
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.test_binding import send_command, token_of


async def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "it never happened"
        await asyncio.sleep(0.1)


async def bind_telegram(http: httpx.AsyncClient, app: LiveServer, user: Account, chat: int) -> None:
    link = await http.post("/api/v1/users/me/telegram", headers=user.headers)
    assert link.status_code == 201, link.text
    assert link.json()["expires_in"] > 0
    assert (
        await send_command(app, chat, f"/start {token_of(link.json()['link'])}")
    ).status_code == 200
    status = await http.get("/api/v1/users/me/telegram", headers=user.headers)
    assert status.json()["bound"] is True


async def direct_chat(http: httpx.AsyncClient, sender: Account, recipient: Account) -> str:
    chat = await http.post(
        "/api/v1/chats", json={"type": "direct", "member_id": recipient.id}, headers=sender.headers
    )
    assert chat.status_code in (200, 201), chat.text
    return str(chat.json()["id"])


def texts_to(bot_api: FakeBotAPI, chat: int) -> list[str]:
    return [m["text"] for m in bot_api.delivered() if int(m["chat_id"]) == chat]


async def send_messages(http: httpx.AsyncClient, sender: Account, chat_id: str, count: int) -> None:
    for n in range(count):
        sent = await http.post(
            f"/api/v1/chats/{chat_id}/messages",
            json={"type": "text", "text": f"message {n}"},
            headers=sender.headers,
        )
        assert sent.status_code == 201, sent.text


async def test_offline_member_gets_one_notification_for_a_burst_of_twenty(
    telegram_app: LiveServer, bot_api: FakeBotAPI
) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url, timeout=20) as http:
        alice = await register(http, name="Alice")
        bob = await register(http, name="Bob")
        await bind_telegram(http, telegram_app, bob, 8101)
        chat_id = await direct_chat(http, alice, bob)
        bot_api.reset()

        await send_messages(http, alice, chat_id, 20)

        await eventually(lambda: len(texts_to(bot_api, 8101)) >= 1)
        await asyncio.sleep(1.5)  # a second notification would have arrived by now
    (text,) = texts_to(bot_api, 8101)
    assert "20 new messages" in text
    assert "Alice" in text


async def test_online_member_and_the_sender_get_no_notification(
    telegram_app: LiveServer, bot_api: FakeBotAPI
) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url, timeout=20) as http:
        alice = await register(http, name="Alice")
        bob = await register(http, name="Bob")
        await bind_telegram(http, telegram_app, alice, 8201)
        await bind_telegram(http, telegram_app, bob, 8202)
        chat_id = await direct_chat(http, alice, bob)
        bob_online = await connect(telegram_app.url, bob.access_token)
        try:
            bot_api.reset()
            await send_messages(http, alice, chat_id, 3)
            await bob_online.wait_for("message:new", chat_id=chat_id)
        finally:
            await bob_online.close()
        # Offline now (once the server has seen the disconnect): this one is notified, and
        # proves the path works. A notification for the three Bob saw live would have been
        # sent before it (its batch was older).
        profile = f"/api/v1/users/{bob.id}"
        for _ in range(200):
            if not (await http.get(profile, headers=alice.headers)).json()["online"]:
                break
            await asyncio.sleep(0.1)
        sent = await http.post(
            f"/api/v1/chats/{chat_id}/messages",
            json={"type": "text", "text": "after you left"},
            headers=alice.headers,
        )
        assert sent.status_code == 201, sent.text
        await eventually(lambda: bool(texts_to(bot_api, 8202)))
    (text,) = texts_to(bot_api, 8202)
    assert text.endswith("after you left"), text
    assert texts_to(bot_api, 8201) == []


async def test_binding_api_answers_a_link_and_unbinds(
    telegram_app: LiveServer, bot_api: FakeBotAPI
) -> None:
    async with httpx.AsyncClient(base_url=telegram_app.url, timeout=20) as http:
        carol = await register(http, name="Carol")
        assert (await http.get("/api/v1/users/me/telegram", headers=carol.headers)).json()[
            "bound"
        ] is False
        await bind_telegram(http, telegram_app, carol, 8301)
        deleted = await http.delete("/api/v1/users/me/telegram", headers=carol.headers)
        assert deleted.status_code == 204
        status = await http.get("/api/v1/users/me/telegram", headers=carol.headers)
    assert status.json()["bound"] is False


async def test_binding_link_is_refused_when_the_server_has_no_bot(
    client: httpx.AsyncClient,
) -> None:
    dave = await register(client, name="Dave")
    response = await client.post("/api/v1/users/me/telegram", headers=dave.headers)
    assert response.status_code == 409
    assert "TELEGRAM_BOT_TOKEN" in response.json()["detail"]
