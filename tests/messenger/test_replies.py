"""Replies (a quoted preview), forwards and delivered/read ticks, through REST and real
Socket.IO clients on a real server."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx

from tests.accounts.api import Account, register
from tests.messenger.api import (
    alice_and_bob_in_a_direct_chat,
    direct_chat,
    group_chat,
    send_text,
)
from tests.messenger.sockets import SocketUser, connect, connect_accounts
from tests.support import LiveServer

# How the authentication loads the account of the token (one row by primary key).
ACCOUNT_BY_ID = re.compile(r"FROM user_account\s+WHERE user_account\.id = [^\s]+\s*$")


async def history(client: httpx.AsyncClient, account: Account, chat_id: str) -> list[Any]:
    response = await client.get(f"/api/v1/chats/{chat_id}/messages", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


async def forward(
    client: httpx.AsyncClient, account: Account, chat_id: str, message_id: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/chats/{chat_id}/messages",
        headers=account.headers,
        json={"forward_from_id": message_id},
    )


# --- replies ---------------------------------------------------------------------------------


async def test_reply_shows_the_quoted_preview_live_and_in_history(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    long_text = "Shall we meet at the station? " * 10
    original = await send_text(client, alice, chat["id"], long_text)
    a, b = await connect_accounts(live_server.url, sockets, alice, bob)

    ack = await b.client.call(
        "message:send",
        {"chat_id": chat["id"], "text": "Yes, at noon", "reply_to_id": original["id"]},
        timeout=10,
    )
    quote = ack["reply_to"]
    assert quote["id"] == original["id"]
    assert quote["sender_id"] == alice.id
    assert quote["sender_name"] == "Alice"
    assert quote["type"] == "text"
    assert quote["deleted"] is False
    assert quote["text"].startswith("Shall we meet at the station?")
    assert len(quote["text"]) <= 120
    assert quote["text"].endswith("…")

    received = await a.wait_for("message:new", id=ack["id"])
    assert received["reply_to"] == quote
    items = await history(client, alice, chat["id"])
    assert items[0]["id"] == ack["id"]
    assert items[0]["reply_to"] == quote
    assert items[1]["reply_to"] is None


async def test_a_reply_to_a_deleted_message_shows_a_deleted_quote_without_text(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    original = await send_text(client, alice, chat["id"], "a secret")
    reply = await client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        headers=bob.headers,
        json={"text": "what secret?", "reply_to_id": original["id"]},
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["reply_to"]["text"] == "a secret"
    deleted = await client.delete(f"/api/v1/messages/{original['id']}", headers=alice.headers)
    assert deleted.status_code == 204

    quote = (await history(client, bob, chat["id"]))[0]["reply_to"]
    assert quote["id"] == original["id"]
    assert quote["deleted"] is True
    assert quote["text"] is None


async def test_a_reply_to_a_message_of_another_chat_is_refused(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    carol = await register(client, name="Carol")
    elsewhere = await direct_chat(client, alice, carol)
    other = await send_text(client, alice, elsewhere["id"], "for Carol only")

    response = await client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        headers=alice.headers,
        json={"text": "see this", "reply_to_id": other["id"]},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert problem["errors"][0]["field"] == "reply_to_id"
    assert problem["errors"][0]["message"] == "not a message of this chat"

    a = await connect(live_server.url, alice.access_token)
    sockets.append(a)
    ack = await a.client.call(
        "message:send",
        {"chat_id": chat["id"], "text": "see this", "reply_to_id": other["id"]},
        timeout=10,
    )
    assert ack["error"]["status"] == 422
    assert ack["error"]["errors"][0]["field"] == "reply_to_id"
    assert await history(client, bob, chat["id"]) == []


async def test_history_loads_quotes_and_forwards_in_a_fixed_number_of_queries(
    client: httpx.AsyncClient, statements: list[str]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    photo = await client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        headers=alice.headers,
        json={
            "type": "file",
            "attachment": {"data": base64.b64encode(b"x").decode(), "name": "a.txt"},
        },
    )
    assert photo.status_code == 201, photo.text
    texts = [await send_text(client, alice, chat["id"], f"text {i}") for i in range(10)]

    async def reply(to: dict[str, Any]) -> None:
        response = await client.post(
            f"/api/v1/chats/{chat['id']}/messages",
            headers=bob.headers,
            json={"text": "re", "reply_to_id": to["id"]},
        )
        assert response.status_code == 201, response.text

    async def history_statements() -> int:
        """The history's own statements: the authentication's read of the account comes
        and goes with AUTH_USER_CACHE_SECONDS, whatever the number of quotes."""
        statements.clear()
        items = await history(client, bob, chat["id"])
        assert any(item["reply_to"] for item in items)
        assert any(item["forwarded_from"] for item in items)
        return len([s for s in statements if not ACCOUNT_BY_ID.search(s)])

    await reply(photo.json())
    assert (await forward(client, bob, chat["id"], texts[0]["id"])).status_code == 201
    few = await history_statements()
    for message in texts:
        await reply(message)
        assert (await forward(client, bob, chat["id"], message["id"])).status_code == 201
    many = await history_statements()
    print(f"history with 2 and with 22 quotes or forwards: {few} and {many} SQL statements")
    assert many == few


# --- forwards --------------------------------------------------------------------------------


async def test_a_forward_names_the_original_author_and_shares_the_attachment(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    carol = await register(client, name="Carol")
    bob_and_carol = await direct_chat(client, bob, carol)
    file_message = await client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        headers=alice.headers,
        json={
            "type": "file",
            "text": "the plan",
            "attachment": {
                "data": base64.b64encode(b"step one\n").decode(),
                "name": "plan.txt",
                "content_type": "text/plain",
            },
        },
    )
    assert file_message.status_code == 201, file_message.text
    original = file_message.json()

    response = await forward(client, bob, bob_and_carol["id"], original["id"])
    assert response.status_code == 201, response.text
    forwarded = response.json()
    assert forwarded["forwarded_from"] == {"user_id": alice.id, "name": "Alice"}
    assert forwarded["sender_id"] == bob.id
    assert forwarded["type"] == "file"
    assert forwarded["text"] == "the plan"
    # The same stored file, not a copy of its bytes.
    assert forwarded["attachment"]["id"] == original["attachment"]["id"]

    # Carol sees it, and a forward of the forward still names Alice.
    seen = (await history(client, carol, bob_and_carol["id"]))[0]
    assert seen["forwarded_from"]["name"] == "Alice"
    again = await forward(client, carol, bob_and_carol["id"], forwarded["id"])
    assert again.json()["forwarded_from"] == {"user_id": alice.id, "name": "Alice"}
    # A forward keeps the original's words: Bob cannot edit them.
    edited = await client.patch(
        f"/api/v1/messages/{forwarded['id']}", headers=bob.headers, json={"text": "my plan"}
    )
    assert edited.status_code == 409, edited.text

    # Alice deleting her message leaves the forwarded file readable for Carol.
    assert (
        await client.delete(f"/api/v1/messages/{original['id']}", headers=alice.headers)
    ).status_code == 204
    download = await client.get(forwarded["attachment"]["url"], headers=carol.headers)
    assert download.status_code == 200
    assert download.content == b"step one\n"


async def test_forwarding_needs_access_to_the_source_and_a_live_message(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    carol = await register(client, name="Carol")
    carol_and_bob = await direct_chat(client, carol, bob)
    secret = await send_text(client, alice, chat["id"], "between Alice and Bob")

    outsider = await forward(client, carol, carol_and_bob["id"], secret["id"])
    assert outsider.status_code == 404, outsider.text
    assert outsider.json()["status"] == 404

    c, b = await connect_accounts(live_server.url, sockets, carol, bob)
    ack = await c.client.call(
        "message:send",
        {"chat_id": carol_and_bob["id"], "forward_from_id": secret["id"]},
        timeout=10,
    )
    assert ack["error"]["status"] == 404
    assert await history(client, bob, carol_and_bob["id"]) == []

    # Bob can read it, so Bob can forward it, over Socket.IO too.
    ack = await b.client.call(
        "message:send",
        {"chat_id": carol_and_bob["id"], "forward_from_id": secret["id"]},
        timeout=10,
    )
    assert ack["forwarded_from"] == {"user_id": alice.id, "name": "Alice"}
    received = await c.wait_for("message:new", id=ack["id"])
    assert received["text"] == "between Alice and Bob"

    assert (
        await client.delete(f"/api/v1/messages/{secret['id']}", headers=alice.headers)
    ).status_code == 204
    gone = await forward(client, bob, carol_and_bob["id"], secret["id"])
    assert gone.status_code == 409, gone.text


async def test_a_forward_into_a_direct_chat_with_a_blocker_is_refused(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    carol = await register(client, name="Carol")
    bob_and_carol = await direct_chat(client, bob, carol)
    message = await send_text(client, alice, chat["id"], "pass it on")
    blocked = await client.put(f"/api/v1/users/{bob.id}/block", headers=carol.headers)
    assert blocked.status_code in (200, 204), blocked.text

    response = await forward(client, bob, bob_and_carol["id"], message["id"])
    assert response.status_code == 403, response.text
    assert await history(client, carol, bob_and_carol["id"]) == []


# --- ticks -----------------------------------------------------------------------------------


async def chat_of(client: httpx.AsyncClient, account: Account, chat_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/chats/{chat_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_the_sender_sees_delivered_then_read_live_and_in_the_chat_view(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    a, b = await connect_accounts(live_server.url, sockets, alice, bob)
    sent = await a.client.call(
        "message:send", {"chat_id": chat["id"], "text": "did you get this?"}, timeout=10
    )
    view = await chat_of(client, alice, chat["id"])
    # Sent: Bob's client has not acknowledged it yet.
    assert view["peer_delivered_seq"] < sent["seq"]
    assert view["peer_read_seq"] < sent["seq"]

    # Bob's client receives it and acknowledges: Alice hears "delivered".
    new = await b.wait_for("message:new", id=sent["id"])
    ack = await b.client.call(
        "message:delivered", {"chat_id": chat["id"], "message_id": new["id"]}, timeout=10
    )
    assert ack == {"chat_id": chat["id"], "user_id": bob.id, "seq": sent["seq"]}
    delivered = await a.wait_for("message:delivered", chat_id=chat["id"], user_id=bob.id)
    assert delivered["seq"] == sent["seq"]
    view = await chat_of(client, alice, chat["id"])
    assert view["peer_delivered_seq"] == sent["seq"]
    assert view["peer_read_seq"] < sent["seq"]

    # Bob opens the chat and reads it: Alice hears "read" with the seq it reached.
    await b.client.call("read", {"chat_id": chat["id"]}, timeout=10)
    read = await a.wait_for("read", chat_id=chat["id"], user_id=bob.id)
    assert read["seq"] == sent["seq"]
    view = await chat_of(client, alice, chat["id"])
    assert view["peer_read_seq"] == sent["seq"]
    assert view["peer_delivered_seq"] == sent["seq"]
    # Bob's own view has Alice's markers (her own message counts as read by her).
    assert (await chat_of(client, bob, chat["id"]))["peer_read_seq"] == sent["seq"]


async def test_delivered_over_rest_never_moves_back_and_is_announced_once(
    client: httpx.AsyncClient, live_server: LiveServer, sockets: list[SocketUser]
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    first = await send_text(client, alice, chat["id"], "one")
    second = await send_text(client, alice, chat["id"], "two")
    a = await connect(live_server.url, alice.access_token)
    sockets.append(a)

    url = f"/api/v1/chats/{chat['id']}/delivered"
    newest = await client.post(url, headers=bob.headers)
    assert newest.status_code == 200, newest.text
    assert newest.json()["seq"] == second["seq"]
    older = await client.post(url, headers=bob.headers, json={"message_id": first["id"]})
    assert older.json()["seq"] == second["seq"]
    # A third acknowledgement proves the server answered the second before Alice counts.
    third = await send_text(client, alice, chat["id"], "three")
    await client.post(url, headers=bob.headers, json={"message_id": third["id"]})
    await a.wait_for("message:delivered", seq=third["seq"])
    assert [e["seq"] for e in a.named("message:delivered")] == [second["seq"], third["seq"]]

    outsider = await register(client, name="Eve")
    refused = await client.post(url, headers=outsider.headers)
    assert refused.status_code == 404


async def test_the_docs_describe_replies_forwards_and_ticks(client: httpx.AsyncClient) -> None:
    asyncapi = (await client.get("/docs/asyncapi.json")).json()
    messages = asyncapi["components"]["messages"]
    assert messages["server_message_delivered"]["payload"]["$ref"].endswith("/DeliveredOut")
    assert messages["client_message_delivered"]["payload"]["$ref"].endswith("/ChatEvent")
    schemas = asyncapi["components"]["schemas"]
    assert {"reply_to", "forwarded_from"} <= set(schemas["MessageOut"]["properties"])
    assert {"reply_to_id", "forward_from_id"} <= set(schemas["SendEvent"]["properties"])
    assert "seq" in schemas["Read"]["required"]
    assert {"peer_delivered_seq", "peer_read_seq"} <= set(schemas["ChatOut"]["properties"])
    openapi = (await client.get("/docs/openapi.json")).json()
    assert "post" in openapi["paths"]["/api/v1/chats/{chat_id}/delivered"]
    new_message = openapi["components"]["schemas"]["NewMessage"]["properties"]
    assert {"reply_to_id", "forward_from_id"} <= set(new_message)


async def test_a_group_has_no_ticks_but_keeps_each_delivered_marker(
    client: httpx.AsyncClient,
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    team = await group_chat(client, alice, [bob])
    sent = await send_text(client, alice, team["id"], "hello team")
    delivered = await client.post(f"/api/v1/chats/{team['id']}/delivered", headers=bob.headers)
    assert delivered.json()["seq"] == sent["seq"]
    view = await chat_of(client, alice, team["id"])
    assert view["peer_delivered_seq"] is None
    assert view["peer_read_seq"] is None
