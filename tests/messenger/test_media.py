"""Media go through REST: a phone photo of 3.3 MB is stored with its preview. Socket.IO
carries events only; a frame over its limit drops that socket and is logged with the user."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import random

import httpx
import pytest
from PIL import Image

from tests.messenger.api import alice_and_bob_in_a_direct_chat
from tests.messenger.sockets import connect
from tests.support import LiveServer


def phone_photo(min_bytes: int = 3_300_000) -> bytes:
    """A JPEG of noise (incompressible) of at least ``min_bytes``, as a phone camera makes."""
    rng = random.Random(7)
    width, height = 2000, 1600
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    data = out.getvalue()
    assert len(data) >= min_bytes, len(data)
    return data


async def test_a_3_3_mb_phone_photo_is_sent_through_rest_with_a_preview(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    photo = phone_photo()
    sent = await client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        headers=alice.headers,
        json={
            "type": "image",
            "text": "the view",
            "attachment": {"data": base64.b64encode(photo).decode(), "name": "IMG_0001.jpg"},
        },
        timeout=120,
    )
    assert sent.status_code == 201, sent.text
    attachment = sent.json()["attachment"]
    assert attachment["size"] == len(photo)
    assert (attachment["width"], attachment["height"]) == (2000, 1600)
    original = await client.get(attachment["url"], headers=bob.headers, timeout=60)
    assert original.status_code == 200
    assert len(original.content) == len(photo)
    preview = await client.get(attachment["preview_url"], headers=bob.headers, timeout=60)
    assert preview.status_code == 200
    assert preview.headers["content-type"] == "image/webp"


async def test_a_socket_frame_over_the_limit_is_logged_with_the_user(
    client: httpx.AsyncClient, live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    alice, _, chat = await alice_and_bob_in_a_direct_chat(client)
    socket = await connect(live_server.url, alice.access_token)
    try:
        data = base64.b64encode(random.Random(3).randbytes(1_200_000)).decode()
        await socket.client.emit(
            "message:send",
            {"chat_id": chat["id"], "type": "file", "attachment": {"data": data, "name": "x"}},
        )
        deadline = asyncio.get_running_loop().time() + 60
        while "socket_frame_too_large" not in caplog.text:
            assert asyncio.get_running_loop().time() < deadline, "the frame was not logged"
            await asyncio.sleep(0.1)
    finally:
        await socket.close()
    (line,) = [r.getMessage() for r in caplog.records if "socket_frame_too_large" in r.getMessage()]
    assert alice.id in line
    history = await client.get(f"/api/v1/chats/{chat['id']}/messages", headers=alice.headers)
    assert history.json()["items"] == []
