"""A chat's view counts as unread only what its last message covers.

The announcement of a chat (``chat:new``) is read off the request path in a few autocommit
statements, so a message can be stored between them: its view then read the chat before the
message and the unread count after it. The page, which counts the message again when its
``message:new`` arrives (the view does not show it), showed "2" for one message. Here the
message is stored exactly there, every time.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.domain.messenger.views import ChatViews
from tests.accounts.api import register
from tests.messenger.api import direct_chat, send_text
from tests.messenger.sockets import SocketUser, connect
from tests.support import LiveServer

EVENT_SECONDS = 20  # the announcements run after the commit: slow on a loaded machine


async def test_a_message_stored_while_chat_new_is_read_is_counted_once(
    client: httpx.AsyncClient,
    live_server: LiveServer,
    sockets: list[SocketUser],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    b = await connect(live_server.url, bob.access_token)
    sockets.append(b)
    read_chat = ChatViews.chat_views
    sent: list[dict[str, Any]] = []

    async def chat_then_a_message(self: ChatViews, *args: Any, **kwargs: Any) -> Any:
        views = await read_chat(self, *args, **kwargs)
        if kwargs.get("hide_blockers") is False and not sent:  # the members' views
            async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
                sent.append(await send_text(http, alice, str(views[0].id), "Hi, it is Alice"))
        return views

    monkeypatch.setattr(ChatViews, "chat_views", chat_then_a_message)
    chat = await direct_chat(client, alice, bob)

    new = await b.wait_for("chat:new", timeout=EVENT_SECONDS, id=chat["id"])
    message = await b.wait_for("message:new", timeout=EVENT_SECONDS, id=sent[0]["id"])
    # The view read the chat before the message: it neither shows nor counts it, and the
    # message it announces next is the one unread message (the page adds it to the view).
    assert new["last_message"] is None
    assert new["unread_count"] == 0
    assert message["seq"] == 1
    listed = (await client.get("/api/v1/chats", headers=bob.headers)).json()
    assert [(c["id"], c["unread_count"]) for c in listed] == [(chat["id"], 1)]
