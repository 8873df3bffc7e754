"""Messages: types, history with cursors, edits, tombstones, likes and attachments."""

from __future__ import annotations

import base64
import io
from datetime import datetime

import httpx
from PIL import Image

from tests.accounts.api import data_url, image_bytes, register
from tests.messenger.api import (
    alice_and_bob_in_a_direct_chat,
    alice_bob_and_carol_in_a_group,
    direct_chat,
    group_chat,
    send_text,
)


async def test_sent_message_has_the_documented_shape(client: httpx.AsyncClient) -> None:
    alice, _bob, chat = await alice_and_bob_in_a_direct_chat(client)
    message = await send_text(client, alice, chat["id"], "Hello, Bob")
    assert set(message) == {
        "id",
        "chat_id",
        "sender_id",
        "type",
        "text",
        "attachment",
        "likes",
        "liked_by_me",
        "created_at",
        "edited_at",
        "deleted",
        "seq",
        "client_id",
        "reply_to",
        "forwarded_from",
    }
    assert message["chat_id"] == chat["id"]
    assert message["sender_id"] == alice.id
    assert message["type"] == "text"
    assert message["text"] == "Hello, Bob"
    assert message["likes"] == 0
    assert message["deleted"] is False
    assert datetime.fromisoformat(message["created_at"]).tzinfo is not None


async def test_text_message_needs_text(client: httpx.AsyncClient) -> None:
    alice, _bob, chat = await alice_and_bob_in_a_direct_chat(client)
    url = f"/api/v1/chats/{chat['id']}/messages"
    for body in (
        {"type": "text"},
        {"type": "text", "text": "   "},
        {"type": "image"},
        {"type": "system", "text": "x"},
    ):
        response = await client.post(url, headers=alice.headers, json=body)
        assert response.status_code in (400, 422), body


async def test_history_pages_newest_first_with_a_cursor(client: httpx.AsyncClient) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    sent = [await send_text(client, alice, chat["id"], f"m{i}") for i in range(7)]
    url = f"/api/v1/chats/{chat['id']}/messages"
    first = (await client.get(url, headers=bob.headers, params={"limit": 3})).json()
    assert [m["text"] for m in first["items"]] == ["m6", "m5", "m4"]
    assert first["next_cursor"] == sent[4]["id"]
    second = (
        await client.get(
            url, headers=bob.headers, params={"limit": 3, "before": first["next_cursor"]}
        )
    ).json()
    assert [m["text"] for m in second["items"]] == ["m3", "m2", "m1"]
    third = (
        await client.get(
            url, headers=bob.headers, params={"limit": 3, "before": second["next_cursor"]}
        )
    ).json()
    assert [m["text"] for m in third["items"]] == ["m0"]
    assert third["next_cursor"] is None


async def test_history_after_a_cursor_catches_up_oldest_first(client: httpx.AsyncClient) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    sent = [await send_text(client, alice, chat["id"], f"m{i}") for i in range(5)]
    page = (
        await client.get(
            f"/api/v1/chats/{chat['id']}/messages",
            headers=bob.headers,
            params={"after": sent[1]["id"], "limit": 2},
        )
    ).json()
    assert [m["text"] for m in page["items"]] == ["m2", "m3"]
    assert page["next_cursor"] == sent[3]["id"]


async def test_history_refuses_bad_parameters(client: httpx.AsyncClient) -> None:
    alice, _bob, chat = await alice_and_bob_in_a_direct_chat(client)
    url = f"/api/v1/chats/{chat['id']}/messages"
    for params in ({"limit": 0}, {"limit": 101}, {"before": "nope"}):
        assert (await client.get(url, headers=alice.headers, params=params)).status_code == 422, (
            params
        )
    message = await send_text(client, alice, chat["id"], "x")
    both = await client.get(
        url, headers=alice.headers, params={"before": message["id"], "after": message["id"]}
    )
    assert both.status_code == 422


async def test_author_edits_a_message(client: httpx.AsyncClient) -> None:
    alice, _bob, chat = await alice_and_bob_in_a_direct_chat(client)
    message = await send_text(client, alice, chat["id"], "helo")
    edited = await client.patch(
        f"/api/v1/messages/{message['id']}", headers=alice.headers, json={"text": "hello"}
    )
    assert edited.status_code == 200
    assert edited.json()["text"] == "hello"
    assert edited.json()["edited_at"] is not None


async def test_only_the_author_edits_or_deletes(client: httpx.AsyncClient) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    message = await send_text(client, alice, chat["id"], "mine")
    edit = await client.patch(
        f"/api/v1/messages/{message['id']}", headers=bob.headers, json={"text": "yours"}
    )
    assert edit.status_code == 403
    remove = await client.delete(f"/api/v1/messages/{message['id']}", headers=bob.headers)
    assert remove.status_code == 403


async def test_system_messages_cannot_be_edited(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    chat = await group_chat(client, alice, [bob])
    [system] = (
        await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers)
    ).json()["items"]
    response = await client.patch(
        f"/api/v1/messages/{system['id']}", headers=alice.headers, json={"text": "x"}
    )
    assert response.status_code == 403


async def test_deleting_leaves_a_tombstone_in_history(client: httpx.AsyncClient) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    message = await send_text(client, alice, chat["id"], "oops")
    await client.put(f"/api/v1/messages/{message['id']}/like", headers=bob.headers)
    removed = await client.delete(f"/api/v1/messages/{message['id']}", headers=alice.headers)
    assert removed.status_code == 204
    [tombstone] = (
        await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=bob.headers)
    ).json()["items"]
    assert tombstone["id"] == message["id"]
    assert tombstone["deleted"] is True
    assert tombstone["text"] is None
    assert tombstone["likes"] == 0
    again = await client.patch(
        f"/api/v1/messages/{message['id']}", headers=alice.headers, json={"text": "x"}
    )
    assert again.status_code == 409
    like = await client.put(f"/api/v1/messages/{message['id']}/like", headers=bob.headers)
    assert like.status_code == 409


async def test_likes_are_one_per_user_and_counted_in_every_representation(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, carol, chat = await alice_bob_and_carol_in_a_group(client)
    message = await send_text(client, alice, chat["id"], "like me")
    url = f"/api/v1/messages/{message['id']}/like"
    first = await client.put(url, headers=bob.headers)
    assert first.status_code == 200
    assert first.json() == {
        "message_id": message["id"],
        "chat_id": chat["id"],
        "likes": 1,
        "liked_by_me": True,
    }
    twice = await client.put(url, headers=bob.headers)
    assert twice.json()["likes"] == 1
    await client.put(url, headers=carol.headers)
    page = (await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=bob.headers)).json()
    liked = next(m for m in page["items"] if m["id"] == message["id"])
    assert liked["likes"] == 2
    assert liked["liked_by_me"] is True
    alice_page = (
        await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers)
    ).json()
    assert next(m for m in alice_page["items"] if m["id"] == message["id"])["liked_by_me"] is False
    taken_back = await client.delete(url, headers=bob.headers)
    assert taken_back.json() == {
        "message_id": message["id"],
        "chat_id": chat["id"],
        "likes": 1,
        "liked_by_me": False,
    }


async def test_edit_or_like_of_an_unknown_message_is_404(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    unknown = "0190a000-0000-7000-8000-000000000000"
    assert (
        await client.patch(f"/api/v1/messages/{unknown}", headers=alice.headers, json={"text": "x"})
    ).status_code == 404
    assert (
        await client.put(f"/api/v1/messages/{unknown}/like", headers=alice.headers)
    ).status_code == 404


async def test_image_message_stores_the_image_and_a_preview(client: httpx.AsyncClient) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    jpeg = image_bytes("JPEG", (1200, 800), "green")
    response = await client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        headers=alice.headers,
        json={
            "type": "image",
            "text": "view",
            "attachment": {"data": data_url(jpeg, "image/jpeg")},
        },
    )
    assert response.status_code == 201, response.text
    attachment = response.json()["attachment"]
    assert attachment["kind"] == "image"
    assert attachment["content_type"] == "image/jpeg"
    assert (attachment["width"], attachment["height"]) == (1200, 800)
    original = await client.get(attachment["url"], headers=bob.headers)
    assert original.status_code == 200
    assert original.content == jpeg
    assert original.headers["content-type"] == "image/jpeg"
    assert original.headers["x-content-type-options"] == "nosniff"
    assert "etag" in original.headers
    preview = await client.get(attachment["preview_url"], headers=bob.headers)
    assert preview.headers["content-type"] == "image/webp"
    assert max(Image.open(io.BytesIO(preview.content)).size) == 320


async def test_image_message_refuses_fake_and_oversized_images(client: httpx.AsyncClient) -> None:
    alice, _bob, chat = await alice_and_bob_in_a_direct_chat(client)
    url = f"/api/v1/chats/{chat['id']}/messages"
    fake = await client.post(
        url,
        headers=alice.headers,
        json={"type": "image", "attachment": {"data": data_url(b"%PDF-1.4 not an image")}},
    )
    assert fake.status_code == 415
    huge = base64.b64encode(b"\0" * (10 * 1024 * 1024 + 1)).decode()
    big = await client.post(
        url, headers=alice.headers, json={"type": "image", "attachment": {"data": huge}}
    )
    assert big.status_code == 413


async def test_file_message_is_served_as_a_download(client: httpx.AsyncClient) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    content = b"<html><script>alert('xss')</script></html>"
    response = await client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        headers=alice.headers,
        json={
            "type": "file",
            "attachment": {
                "data": base64.b64encode(content).decode(),
                "name": "page.html",
                "content_type": "text/html",
            },
        },
    )
    assert response.status_code == 201
    attachment = response.json()["attachment"]
    assert attachment["name"] == "page.html"
    assert attachment["size"] == len(content)
    assert attachment["preview_url"] is None
    download = await client.get(attachment["url"], headers=bob.headers)
    assert download.content == content
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in download.headers["content-security-policy"]


async def test_attachments_are_404_for_non_members_and_after_deletion(
    client: httpx.AsyncClient,
) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    eve = await register(client, name="Eve")
    chat = await direct_chat(client, alice, bob)
    message = (
        await client.post(
            f"/api/v1/chats/{chat['id']}/messages",
            headers=alice.headers,
            json={"type": "image", "attachment": {"data": data_url(image_bytes())}},
        )
    ).json()
    url = message["attachment"]["url"]
    assert (await client.get(url, headers=eve.headers)).status_code == 404
    assert (
        await client.get(message["attachment"]["preview_url"], headers=eve.headers)
    ).status_code == 404
    assert (await client.get(url)).status_code == 401
    await client.delete(f"/api/v1/messages/{message['id']}", headers=alice.headers)
    assert (await client.get(url, headers=bob.headers)).status_code == 404
