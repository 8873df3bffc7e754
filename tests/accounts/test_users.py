"""Profiles, search and avatars through the real server."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import httpx
from PIL import Image

from tests.accounts.api import data_url, image_bytes, register


async def test_patch_me_changes_only_the_fields_sent(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    response = await client.patch(
        "/api/v1/users/me", headers=alice.headers, json={"bio": "Likes tea", "username": "Alice_1"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["bio"] == "Likes tea"
    assert body["username"] == "alice_1"
    assert body["name"] == "Alice"
    renamed = await client.patch("/api/v1/users/me", headers=alice.headers, json={"name": "Al"})
    assert renamed.json()["name"] == "Al"
    assert renamed.json()["bio"] == "Likes tea"
    cleared = await client.patch("/api/v1/users/me", headers=alice.headers, json={"username": None})
    assert cleared.json()["username"] is None


async def test_usernames_are_unique_regardless_of_case(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    await client.patch("/api/v1/users/me", headers=alice.headers, json={"username": "alice"})
    taken = await client.patch("/api/v1/users/me", headers=bob.headers, json={"username": "ALICE"})
    assert taken.status_code == 409


async def test_patch_me_refuses_invalid_fields(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    for body in ({"username": "a b"}, {"name": ""}, {"bio": "x" * 501}, {"phone": "+79160000000"}):
        response = await client.patch("/api/v1/users/me", headers=alice.headers, json=body)
        assert response.status_code in (400, 422), body


async def test_public_profile_hides_the_phone_number(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob")
    response = await client.get(f"/api/v1/users/{alice.id}", headers=bob.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Alice"
    assert "phone" not in body
    assert body["online"] is False


async def test_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    response = await client.get(
        "/api/v1/users/0190a000-0000-7000-8000-000000000000", headers=alice.headers
    )
    assert response.status_code == 404


async def test_search_finds_people_by_name_username_and_phone(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client, name="Bob Marley")
    await client.patch("/api/v1/users/me", headers=bob.headers, json={"username": "reggae"})
    by_name = await client.get("/api/v1/users", params={"search": "marl"}, headers=alice.headers)
    assert [u["id"] for u in by_name.json()] == [bob.id]
    by_username = await client.get(
        "/api/v1/users", params={"search": "@regg"}, headers=alice.headers
    )
    assert [u["id"] for u in by_username.json()] == [bob.id]
    by_phone = await client.get(
        "/api/v1/users", params={"search": bob.phone}, headers=alice.headers
    )
    assert [u["id"] for u in by_phone.json()] == [bob.id]
    nobody = await client.get("/api/v1/users", params={"search": "zzz"}, headers=alice.headers)
    assert nobody.json() == []


async def test_search_needs_authentication(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/users", params={"search": "a"})).status_code == 401


async def test_avatar_upload_stores_the_original_and_three_squares(
    client: httpx.AsyncClient,
) -> None:
    alice = await register(client)
    original = image_bytes("PNG", (640, 480))
    response = await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": data_url(original)}
    )
    assert response.status_code == 200, response.text
    avatar = response.json()["avatar"]
    assert set(avatar) == {"original", "400", "100", "50"}
    stored = await client.get(avatar["original"])
    assert stored.status_code == 200
    assert stored.content == original
    assert stored.headers["content-type"] == "image/png"
    for size in (400, 100, 50):
        square = await client.get(avatar[str(size)])
        assert square.status_code == 200
        assert square.headers["content-type"] == "image/webp"
        assert square.headers["x-content-type-options"] == "nosniff"
        assert "max-age" in square.headers["cache-control"]
        assert Image.open(io.BytesIO(square.content)).size == (size, size)


async def test_avatar_accepts_plain_base64_jpeg(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    jpeg = image_bytes("JPEG", (100, 300))
    response = await client.put(
        "/api/v1/users/me/avatar",
        headers=alice.headers,
        json={"image": base64.b64encode(jpeg).decode()},
    )
    assert response.status_code == 200
    original = await client.get(f"/api/v1/users/{alice.id}/avatar/original")
    assert original.headers["content-type"] == "image/jpeg"


async def test_avatar_answers_304_for_a_known_etag(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": data_url(image_bytes())}
    )
    first = await client.get(f"/api/v1/users/{alice.id}/avatar/100")
    etag = first.headers["etag"]
    again = await client.get(
        f"/api/v1/users/{alice.id}/avatar/100", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""


async def test_avatar_refuses_a_fake_image_whatever_its_declared_type(
    client: httpx.AsyncClient,
) -> None:
    alice = await register(client)
    fake = data_url(b"<html><script>alert(1)</script></html>", "image/png")
    response = await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": fake}
    )
    assert response.status_code == 415


async def test_avatar_refuses_gif(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    response = await client.put(
        "/api/v1/users/me/avatar",
        headers=alice.headers,
        json={"image": data_url(image_bytes("GIF"), "image/gif")},
    )
    assert response.status_code == 415


async def test_avatar_refuses_invalid_base64(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    response = await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": "!!!not base64!!!"}
    )
    assert response.status_code == 422


async def test_avatar_refuses_an_oversized_upload(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    too_big = base64.b64encode(b"\0" * (10 * 1024 * 1024 + 10)).decode()
    response = await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": too_big}
    )
    assert response.status_code == 413


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image: a decompression bomb's signature."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


async def test_avatar_refuses_a_decompression_bomb_quickly(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bomb = _png_claiming(50_000, 50_000)
    response = await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": data_url(bomb)}, timeout=5
    )
    assert response.status_code == 413
    assert "pixels" in response.json()["detail"]


async def test_avatar_refuses_a_truncated_image(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    truncated = image_bytes("PNG", (300, 300), "blue")[:200]
    response = await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": data_url(truncated)}
    )
    assert response.status_code == 415


async def test_deleting_the_avatar_makes_it_404(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": data_url(image_bytes())}
    )
    removed = await client.delete("/api/v1/users/me/avatar", headers=alice.headers)
    assert removed.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).json()["avatar"] is None
    assert (await client.get(f"/api/v1/users/{alice.id}/avatar/50")).status_code == 404


async def test_avatar_of_a_user_without_one_is_404_and_bad_size_is_refused(
    client: httpx.AsyncClient,
) -> None:
    alice = await register(client)
    assert (await client.get(f"/api/v1/users/{alice.id}/avatar/original")).status_code == 404
    bad = await client.get(f"/api/v1/users/{alice.id}/avatar/33")
    assert bad.status_code in (400, 404, 422)
