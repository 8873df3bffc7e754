"""The send path's cost: a plain text message is one statement, and one process alone
(``SOCKETIO_SINGLE_PROCESS``) delivers without the Redis pub/sub relay."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from app.config import Settings
from app.lib.realtime import redis_channel
from tests.accounts.api import register
from tests.messenger.api import group_chat, send_text
from tests.messenger.processes import ApiProcess
from tests.messenger.sockets import alice_and_bob_connected_in_a_group, connect
from tests.messenger.test_realtime import announced
from tests.support import READY_SECONDS, LiveServer


async def test_a_text_message_over_the_socket_is_stored_in_one_statement(
    client: httpx.AsyncClient, live_server: LiveServer, statements: list[str]
) -> None:
    alice, bob, chat, a, b = await alice_and_bob_connected_in_a_group(client, live_server.url)
    try:
        await announced(live_server)
        statements.clear()
        ack = await a.client.call(
            "message:send", {"chat_id": chat["id"], "text": "one trip", "client_id": "c-1"}
        )
        await b.wait_for("message:new", READY_SECONDS, text="one trip")
        await announced(live_server)
        sent = list(statements)
        again = await a.client.call(
            "message:send", {"chat_id": chat["id"], "text": "one trip", "client_id": "c-1"}
        )
    finally:
        await a.close()
        await b.close()
    assert ack["text"] == "one trip"
    assert ack["seq"] >= 1
    # Main: SELECT user, SELECT chat and member, SELECT by client id, UPDATE chat, INSERT,
    # UPDATE member, SELECT members: 7 statements (each its own round trip), plus BEGIN and
    # COMMIT. Now the one statement does all of it, in autocommit.
    assert len(sent) == 1, sent
    # The retry with the same client id answers the stored message, stored once.
    assert again["id"] == ack["id"]
    history = await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=bob.headers)
    assert [m["text"] for m in history.json()["items"]].count("one trip") == 1
    # Bob's chat list: Alice's own message is read by her, unread for Bob.
    chats = {c["id"]: c for c in (await client.get("/api/v1/chats", headers=bob.headers)).json()}
    assert chats[chat["id"]]["unread_count"] == 1
    mine = {c["id"]: c for c in (await client.get("/api/v1/chats", headers=alice.headers)).json()}
    assert mine[chat["id"]]["unread_count"] == 0


async def relay_listeners(redis: Redis, settings: Settings) -> int:
    channel = redis_channel(settings.redis_url or "")
    return int(dict(await redis.pubsub_numsub(channel))[channel])


async def test_one_process_alone_delivers_without_the_redis_relay(
    migrated_database: Settings, redis_client: Redis
) -> None:
    before = await relay_listeners(redis_client, migrated_database)  # other servers' listeners
    process = ApiProcess(migrated_database, env={"SOCKETIO_SINGLE_PROCESS": "true"})
    try:
        process.wait_ready()
        async with httpx.AsyncClient(base_url=process.url, timeout=READY_SECONDS) as http:
            alice = await register(http)
            bob = await register(http, name="Bob")
            chat = await group_chat(http, alice, [bob])
            b = await connect(process.url, bob.access_token)
            try:
                # The process listens on no relay channel: it emits to its own sockets.
                assert await relay_listeners(redis_client, migrated_database) == before
                await send_text(http, alice, chat["id"], "straight to the socket")
                message = await b.wait_for(
                    "message:new", READY_SECONDS, text="straight to the socket"
                )
            finally:
                await b.close()
    finally:
        process.stop()
    assert message["sender_id"] == alice.id
