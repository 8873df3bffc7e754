"""Message search in one chat and across my chats: full text, newest first, paginated,
never another user's chats, never deleted messages."""

from __future__ import annotations

import httpx

from tests.accounts.api import register
from tests.messenger.api import alice_and_bob_in_a_direct_chat, group_chat, send_text


async def test_search_finds_words_in_my_chats_only_newest_first_and_pages(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, direct = await alice_and_bob_in_a_direct_chat(client)
    carol = await register(client, name="Carol")
    eve = await register(client, name="Eve")
    group = await group_chat(client, alice, [carol], title="Trip")
    older = await send_text(client, bob, direct["id"], "Pizza tonight at eight?")
    await send_text(client, alice, direct["id"], "Sure, see you")
    newer = await send_text(client, carol, group["id"], "pizza or sushi for the trip")
    gone = await send_text(client, alice, group["id"], "pizza is my secret")
    assert (
        await client.delete(f"/api/v1/messages/{gone['id']}", headers=alice.headers)
    ).status_code == 204
    theirs = await alice_and_bob_in_a_direct_chat(client)  # strangers talking about pizza
    await send_text(client, theirs[0], theirs[2]["id"], "pizza for strangers")

    everywhere = await client.get(
        "/api/v1/messages/search", params={"q": "PIZZA"}, headers=alice.headers
    )
    assert everywhere.status_code == 200, everywhere.text
    assert [m["id"] for m in everywhere.json()["items"]] == [newer["id"], older["id"]]

    in_direct = await client.get(
        f"/api/v1/chats/{direct['id']}/messages/search",
        params={"q": "pizza eight"},
        headers=bob.headers,
    )
    assert [m["id"] for m in in_direct.json()["items"]] == [older["id"]]

    first = await client.get(
        "/api/v1/messages/search", params={"q": "pizza", "limit": 1}, headers=alice.headers
    )
    assert [m["id"] for m in first.json()["items"]] == [newer["id"]]
    second = await client.get(
        "/api/v1/messages/search",
        params={"q": "pizza", "limit": 1, "before": first.json()["next_cursor"]},
        headers=alice.headers,
    )
    assert [m["id"] for m in second.json()["items"]] == [older["id"]]
    assert second.json()["next_cursor"] is None

    # Outside your chats: nothing found, and a chat you are not in is 404.
    assert (
        await client.get("/api/v1/messages/search", params={"q": "pizza"}, headers=eve.headers)
    ).json()["items"] == []
    foreign = await client.get(
        f"/api/v1/chats/{direct['id']}/messages/search", params={"q": "pizza"}, headers=eve.headers
    )
    assert foreign.status_code == 404
    blank = await client.get("/api/v1/messages/search", params={"q": "   "}, headers=alice.headers)
    assert blank.status_code == 422
