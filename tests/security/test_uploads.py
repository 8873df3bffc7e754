"""Hostile uploads: avatars (messenger), message files and images, WAV recordings (/record).

Whatever is uploaded, nothing comes back as a document or a script: a file that only claims
to be an image or a WAV is refused with a problem document; a polyglot (a real image or WAV
carrying HTML) is accepted but re-encoded or served under a passive type with
``X-Content-Type-Options: nosniff``; a path in an uploaded name never reaches a header.
Uploads live in the database, never in a served directory, so nothing uploaded is executed.
``test_every_download_route_sends_safe_headers`` checks every binary route of the schema.
"""

from __future__ import annotations

import base64
import io
import struct
import time
import wave
from typing import Any

import httpx
from PIL import ExifTags, Image, PngImagePlugin

from app.config import Settings
from tests.accounts.api import Account, data_url, register
from tests.audio.test_audio import create_user, is_mp3, make_wav, record_count, upload
from tests.messenger.api import alice_and_bob_in_a_direct_chat
from tests.security.schema import METHODS, is_problem
from tests.security.test_object_access import World, build_world

PAYLOAD = b"<html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
    b"<script>alert(document.domain)</script></svg>"
)
ACTIVE_TYPES = ("text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "javascript")
NOT_IMAGES = {
    "html": PAYLOAD,
    "svg": SVG,
    "script": b"fetch('/api/v1/users/me').then(r => r.text()).then(alert)",
    "php": b"<?php system($_GET['c']); ?>",
    "png magic then html": b"\x89PNG\r\n\x1a\n" + PAYLOAD,
}


def assert_passive(response: httpx.Response, *allowed: str) -> None:
    content_type = response.headers["content-type"].split(";")[0].strip()
    assert not any(active in content_type for active in ACTIVE_TYPES), content_type
    assert content_type in allowed, content_type
    assert response.headers["x-content-type-options"] == "nosniff"


def png_polyglot() -> bytes:
    """A valid PNG with HTML in a text chunk and after the end of the image."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", PAYLOAD.decode())
    out = io.BytesIO()
    Image.new("RGB", (120, 90), "blue").save(out, format="PNG", pnginfo=info)
    return out.getvalue() + PAYLOAD


def wav_polyglot() -> bytes:
    """A valid PCM WAV with an extra RIFF chunk holding HTML (players skip unknown chunks)."""
    wav = make_wav(seconds=0.2)
    chunk = b"junk" + struct.pack("<I", len(PAYLOAD)) + PAYLOAD
    body = wav[12:] + chunk + (b"\0" if len(PAYLOAD) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


# --- avatars ------------------------------------------------------------------------------


async def test_an_avatar_that_is_not_an_image_is_refused(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    accepted = []
    for kind, content in NOT_IMAGES.items():
        for declared in ("image/png", "image/svg+xml"):
            response = await client.put(
                "/api/v1/users/me/avatar",
                headers=alice.headers,
                json={"image": data_url(content, declared)},
            )
            if not is_problem(response, 415):
                accepted.append(f"{kind} as {declared}: {response.status_code}")
    assert accepted == []
    me = await client.get("/api/v1/users/me", headers=alice.headers)
    assert me.json()["avatar"] is None


async def test_a_polyglot_avatar_is_served_only_as_images(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    response = await client.put(
        "/api/v1/users/me/avatar",
        headers=alice.headers,
        json={"image": data_url(png_polyglot(), "text/html")},
    )
    assert response.status_code == 200, response.text
    for size in ("50", "100", "400"):
        square = await client.get(f"/api/v1/users/{alice.id}/avatar/{size}")
        assert square.status_code == 200
        assert_passive(square, "image/webp")
        assert PAYLOAD not in square.content  # re-encoded: the payload is gone
        assert Image.open(io.BytesIO(square.content)).format == "WEBP"
    # The original keeps its pixels (seed 003), but only ever as the PNG it decodes as,
    # unsniffed and sandboxed if opened directly, and without its text chunks or the bytes
    # after its end.
    original = await client.get(f"/api/v1/users/{alice.id}/avatar/original")
    assert_passive(original, "image/png")
    assert "sandbox" in original.headers["content-security-policy"]
    assert PAYLOAD not in original.content
    assert Image.open(io.BytesIO(original.content)).tobytes() == (
        Image.open(io.BytesIO(png_polyglot())).tobytes()
    )


def quadrant_photo(orientation: int, fmt: str = "JPEG") -> bytes:
    """A 640x480 photo, red in its top-left quarter, whose EXIF carries a GPS position,
    the camera make and an orientation, as a phone writes it."""
    image = Image.new("RGB", (640, 480), "white")
    image.paste((255, 0, 0), (0, 0, 320, 240))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (55.0, 45.0, 21.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (37.0, 37.0, 4.0)
    out = io.BytesIO()
    image.save(out, format=fmt, exif=exif.tobytes(), quality=92)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    return data


async def upload_avatar_original(client: httpx.AsyncClient, photo: bytes, kind: str) -> bytes:
    alice = await register(client)
    response = await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": data_url(photo, kind)}
    )
    assert response.status_code == 200, response.text
    original = await client.get(f"/api/v1/users/{alice.id}/avatar/original")
    assert original.status_code == 200
    assert original.headers["content-type"] == kind
    return original.content


async def test_an_avatar_loses_its_exif_and_gps_but_keeps_its_pixels_and_format(
    client: httpx.AsyncClient,
) -> None:
    for fmt, kind in (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")):
        photo = quadrant_photo(orientation=1, fmt=fmt)
        stored = await upload_avatar_original(client, photo, kind)
        image = Image.open(io.BytesIO(stored))
        assert image.format == fmt
        assert dict(image.getexif()) == {}, fmt
        assert b"PhoneMaker" not in stored
        # Not re-encoded: exactly the pixels that were uploaded.
        assert image.tobytes() == Image.open(io.BytesIO(photo)).tobytes(), fmt


async def test_an_avatar_with_an_orientation_tag_is_stored_upright_without_exif(
    client: httpx.AsyncClient,
) -> None:
    # Orientation 6: the camera was turned; viewers rotate the picture 90 degrees clockwise.
    stored = await upload_avatar_original(client, quadrant_photo(orientation=6), "image/jpeg")
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG"
    assert image.size == (480, 640)
    assert dict(image.getexif()) == {}
    assert b"PhoneMaker" not in stored
    # The red quarter, top-left as shot, is top-right once turned clockwise.
    red, white = image.getpixel((400, 100)), image.getpixel((100, 100))
    assert isinstance(red, tuple), red  # an RGB pixel
    assert isinstance(white, tuple), white
    assert red[0] > 200, red
    assert max(red[1], red[2]) < 60, red
    assert min(white) > 200, white


async def test_a_6300_pixel_square_png_is_refused_before_it_is_decoded(
    client: httpx.AsyncClient,
) -> None:
    """The attack of issue 12: a 170 kB PNG of 6300x6300 pixels (+320 MB, 9-12 s of CPU
    to decode) is over the pixel cap and refused from its header."""
    out = io.BytesIO()
    Image.new("L", (6300, 6300), 0).save(out, format="PNG", optimize=True)
    bomb = out.getvalue()
    alice = await register(client)
    started = time.monotonic()
    response = await client.put(
        "/api/v1/users/me/avatar", headers=alice.headers, json={"image": data_url(bomb)}
    )
    assert is_problem(response, 413), response.text
    assert time.monotonic() - started < 5


# --- message attachments --------------------------------------------------------------------


async def send_file(
    client: httpx.AsyncClient, sender: Account, chat_id: str, attachment: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        f"/api/v1/chats/{chat_id}/messages",
        headers=sender.headers,
        json={"type": "file", "attachment": attachment},
    )


ACTIVE_FILES = [
    ("page.html", "text/html"),
    ("logo.svg", "image/svg+xml"),
    ("page.xhtml", "application/xhtml+xml"),
    ("feed.xml", "text/xml"),
    ("app.js", "text/javascript"),
    ("page.html", None),  # the type guessed from the name must not be served either
    ("innocent.png", "text/html"),
]


async def test_a_message_file_is_never_served_as_active_content(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    for name, declared in ACTIVE_FILES:
        attachment: dict[str, Any] = {"data": base64.b64encode(PAYLOAD).decode(), "name": name}
        if declared:
            attachment["content_type"] = declared
        sent = await send_file(client, alice, chat["id"], attachment)
        assert sent.status_code == 201, sent.text
        download = await client.get(sent.json()["attachment"]["url"], headers=bob.headers)
        assert download.status_code == 200
        assert_passive(download, "application/octet-stream")
        assert download.headers["content-disposition"].startswith("attachment;"), name
        assert "sandbox" in download.headers["content-security-policy"], name


async def test_a_path_or_header_in_a_file_name_never_reaches_the_download(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    for name in ("../../../../etc/passwd", "..\\..\\boot.ini", "a\r\nSet-Cookie: owned=1"):
        data = base64.b64encode(b"hello").decode()
        sent = await send_file(client, alice, chat["id"], {"data": data, "name": name})
        assert sent.status_code == 201, sent.text
        stored = sent.json()["attachment"]["name"]
        assert not {"/", "\\"} & set(stored), stored
        download = await client.get(sent.json()["attachment"]["url"], headers=bob.headers)
        assert "owned" not in download.headers.get("set-cookie", ""), name
        disposition = download.headers["content-disposition"]
        assert not {"\r", "\n"} & set(disposition), disposition
        assert "/" not in disposition.split("''", 1)[1], disposition


async def test_an_image_message_that_is_not_an_image_is_refused(
    client: httpx.AsyncClient,
) -> None:
    alice, _bob, chat = await alice_and_bob_in_a_direct_chat(client)
    accepted = []
    for kind, content in NOT_IMAGES.items():
        response = await client.post(
            f"/api/v1/chats/{chat['id']}/messages",
            headers=alice.headers,
            json={"type": "image", "attachment": {"data": data_url(content, "image/png")}},
        )
        if not is_problem(response, 415):
            accepted.append(f"{kind}: {response.status_code}")
    assert accepted == []


async def test_an_image_message_is_stored_upright_without_exif_for_every_reader(
    client: httpx.AsyncClient,
) -> None:
    """A phone photo sent in a chat: the other member downloads no GPS position."""
    alice, bob, chat = await alice_and_bob_in_a_direct_chat(client)
    response = await client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        headers=alice.headers,
        json={"type": "image", "attachment": {"data": data_url(quadrant_photo(orientation=6))}},
    )
    assert response.status_code == 201, response.text
    attachment = response.json()["attachment"]
    original = await client.get(attachment["url"], headers=bob.headers)
    assert original.status_code == 200
    image = Image.open(io.BytesIO(original.content))
    assert (image.format, image.size) == ("JPEG", (480, 640))
    assert dict(image.getexif()) == {}
    assert b"PhoneMaker" not in original.content
    preview = await client.get(attachment["preview_url"], headers=bob.headers)
    assert (
        Image.open(io.BytesIO(preview.content)).size[0]
        < Image.open(io.BytesIO(preview.content)).size[1]
    ), "the preview is upright too"


# --- audio ----------------------------------------------------------------------------------


async def test_a_recording_that_is_not_a_wav_is_refused(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    user = await create_user(client)
    accepted = []
    for kind, content in NOT_IMAGES.items():
        response = await upload(client, user, content, filename="voice.wav")
        if not (is_problem(response, 415) or is_problem(response, 422)):
            accepted.append(f"{kind}: {response.status_code}")
    assert accepted == []
    assert await record_count(migrated_database) == 0


async def test_a_polyglot_wav_is_re_encoded_and_downloaded_as_mp3(
    client: httpx.AsyncClient,
) -> None:
    user = await create_user(client)
    polyglot = wav_polyglot()
    with wave.open(io.BytesIO(polyglot)) as reader:  # the polyglot really is a WAV
        assert reader.getnframes() > 0
    response = await upload(client, user, polyglot, filename="page.html", content_type="text/html")
    assert response.status_code == 201, response.text
    download = await client.get(response.json()["url"])
    assert download.status_code == 200
    assert_passive(download, "audio/mpeg")
    assert is_mp3(download.content)
    assert PAYLOAD not in download.content
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="page.mp3"' in disposition


async def test_a_path_in_a_recording_name_never_reaches_the_download(
    client: httpx.AsyncClient,
) -> None:
    user = await create_user(client)
    wav = make_wav(seconds=0.1)
    for filename in (
        "../../../../etc/cron.d/evil.wav",
        "..\\..\\windows\\evil.wav",
        'evil";x=.wav',
    ):
        response = await upload(client, user, wav, filename=filename)
        assert response.status_code == 201, response.text
        download = await client.get(response.json()["url"])
        disposition = download.headers["content-disposition"]
        ascii_name = disposition.split('filename="', 1)[1].split('"', 1)[0]
        assert ascii_name.endswith(".mp3"), disposition
        assert not {"/", "\\", '"'} & set(ascii_name), disposition
        assert ".." not in ascii_name, disposition
        assert "/" not in disposition.split("''", 1)[1], disposition


async def test_nothing_uploaded_is_reachable_as_a_static_file(
    client: httpx.AsyncClient,
) -> None:
    user = await create_user(client)
    response = await upload(client, user, wav_polyglot(), filename="shell.php.wav")
    assert response.status_code == 201
    for path in ("/static/shell.php.wav", "/static/shell.php.mp3", "/shell.php.wav"):
        assert (await client.get(path)).status_code == 404


# --- every download route -------------------------------------------------------------------

# How to fetch each binary route of the schema from the world of test_object_access, whether
# it is a download (Content-Disposition: attachment) and the types it may be served as.
DOWNLOADS: dict[str, tuple[Any, bool, tuple[str, ...]]] = {
    "GET /api/v1/users/{user_id}/avatar/{size}": (
        lambda w: (f"/api/v1/users/{w.alice.id}/avatar/100", {}),
        False,
        ("image/webp",),
    ),
    "GET /api/v1/attachments/{attachment_id}": (
        lambda w: (w.file["url"], w.bob.headers),
        True,
        ("text/plain",),
    ),
    "GET /api/v1/attachments/{attachment_id}/preview": (
        lambda w: (w.image["preview_url"], w.bob.headers),
        False,
        ("image/webp",),
    ),
    "GET /record": (
        lambda w: (f"/record?id={w.record}&user={w.audio_owner['id']}", {}),
        True,
        ("audio/mpeg",),
    ),
}


async def test_every_download_route_sends_safe_headers(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    binary = set()
    for path, item in schema["paths"].items():
        for method in METHODS:
            for code, answer in (item.get(method) or {}).get("responses", {}).items():
                types = set((answer.get("content") or {}).keys())
                if code.startswith("2") and types - {"application/json"}:
                    binary.add(f"{method.upper()} {path}")
    assert sorted(binary ^ DOWNLOADS.keys()) == [], "binary routes and DOWNLOADS differ"
    world: World = await build_world(client, migrated_database)
    for name, (locate, is_download, allowed) in DOWNLOADS.items():
        path, headers = locate(world)
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (name, response.text)
        assert_passive(response, *allowed)
        assert "sandbox" in response.headers["content-security-policy"], name
        disposition = response.headers.get("content-disposition", "")
        assert disposition.startswith("attachment;") == is_download, (name, disposition)
        # Conditional answers keep the headers.
        again = await client.get(
            path, headers={**headers, "If-None-Match": response.headers["etag"]}
        )
        assert again.status_code == 304, name
        assert again.headers["x-content-type-options"] == "nosniff", name
