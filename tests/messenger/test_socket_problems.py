"""Every Socket.IO call is answered: with the stored object, or with the problem body REST
answers (``{"error": {type, title, status, detail, instance}}``); the logs never carry the
message text."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.accounts.api import register
from tests.messenger.api import alice_and_bob_in_a_direct_chat
from tests.messenger.sockets import SocketUser, connect, connect_accounts
from tests.support import LiveServer

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


async def history_texts(
    client: httpx.AsyncClient, headers: dict[str, str], chat_id: str
) -> list[str]:
    response = await client.get(f"/api/v1/chats/{chat_id}/messages", headers=headers)
    assert response.status_code == 200, response.text
    return [m["text"] for m in response.json()["items"]]


async def test_a_nul_character_over_socketio_is_answered_with_a_422_problem_and_not_logged(
    client: httpx.AsyncClient,
    live_server: LiveServer,
    sockets: list[SocketUser],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    a = await connect(live_server.url, alice.access_token)
    sockets.append(a)
    secret = "top secret words\x00 after a NUL"
    ack = await a.client.call("message:send", {"chat_id": chat["id"], "text": secret}, timeout=30)
    problem = ack["error"]
    assert set(problem) >= PROBLEM_KEYS
    assert problem["status"] == 422
    assert problem["type"] == "about:blank"
    assert "NUL" in problem["detail"]
    assert problem["instance"] == "/socket.io/message:send"
    # Nothing was stored, the connection still works, and no log line holds the text.
    assert await history_texts(client, bob.headers, chat["id"]) == []
    fine = await a.client.call("message:send", {"chat_id": chat["id"], "text": "ok"}, timeout=30)
    assert fine["text"] == "ok"
    assert "socket_event_refused" in caplog.text  # the refusal was logged, without the text
    assert "top secret words" not in caplog.text
    assert "Task exception was never retrieved" not in caplog.text


async def test_a_nul_character_over_rest_is_a_422_problem(client: httpx.AsyncClient) -> None:
    alice, _, chat = await alice_and_bob_in_a_direct_chat(client)
    sent = await client.post(
        f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers, json={"text": "a\x00b"}
    )
    assert sent.status_code == 422
    assert "NUL" in sent.json()["detail"]
    group = await client.post(
        "/api/v1/chats", headers=alice.headers, json={"type": "group", "title": "T\x00"}
    )
    assert group.status_code == 422


async def test_every_client_event_answers_its_acknowledgement(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, _bob, chat = await alice_and_bob_in_a_direct_chat(client)
    carol = await register(client, name="Carol")
    a, c = await connect_accounts(live_server.url, sockets, alice, carol)
    typing = await a.client.call("typing", {"chat_id": chat["id"]}, timeout=30)
    assert typing == {"chat_id": chat["id"]}
    # Outside your chats: 404, for typing as for the other events.
    for event, payload in [
        ("typing", {"chat_id": chat["id"]}),
        ("read", {"chat_id": chat["id"]}),
        ("message:send", {"chat_id": chat["id"], "text": "intrude"}),
    ]:
        ack = await c.client.call(event, payload, timeout=30)
        assert ack["error"]["status"] == 404, (event, ack)
        assert set(ack["error"]) >= PROBLEM_KEYS
    # Bad payloads of every shape: 422, never silence.
    bad_payloads: list[tuple[str, Any]] = [
        ("typing", None),
        ("typing", "nope"),
        ("read", {"chat_id": 5}),
        ("message:send", ["a", "list"]),
        ("message:send", {"chat_id": chat["id"], "text": "x", "unknown": 1}),
    ]
    for event, payload in bad_payloads:
        ack = await a.client.call(event, payload, timeout=30)
        assert ack["error"]["status"] == 422, (event, payload, ack)
        assert ack["error"]["title"]
    read = await a.client.call("read", {"chat_id": chat["id"]}, timeout=30)
    assert read["chat_id"] == chat["id"]


async def test_leading_indentation_of_a_message_is_kept(client: httpx.AsyncClient) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    code = "    def f():\n        return 1"
    sent = await client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        headers=alice.headers,
        json={"text": "\n" + code + "  \n"},
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["text"] == code
    assert await history_texts(client, bob.headers, chat["id"]) == [code]
