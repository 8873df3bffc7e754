"""The audio service at its edges: malformed forms, every WAV encoding ffmpeg decodes, the
limits (file, duration, stored size, new users), chunked storage and HEAD."""

from __future__ import annotations

import math
import random
import struct
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.asgi import create_asgi
from app.config import Settings
from app.domain.audio.encoding import resolve_ffmpeg
from app.domain.audio.models import CHUNK_BYTES, AudioChunk
from tests.audio.test_audio import (
    PROBLEM_JSON,
    create_user,
    decode_mp3,
    float_wav,
    is_mp3,
    make_wav,
    record_count,
    upload,
)
from tests.support import LiveServer, free_port, make_settings

BOUNDARY = "quintet-boundary"


def multipart(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """A multipart/form-data body written by hand: (name, filename or None, content)."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


async def post_multipart(
    http: httpx.AsyncClient, parts: list[tuple[str, str | None, bytes]]
) -> httpx.Response:
    return await http.post(
        "/api/v1/audio/records",
        content=multipart(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


def credentials(user: dict[str, Any]) -> list[tuple[str, str | None, bytes]]:
    return [("user_id", None, user["id"].encode()), ("token", None, user["token"].encode())]


def ffmpeg_wav(codec: str, *, rate: int = 16_000, channels: int = 1, seconds: float = 1.0) -> bytes:
    """A WAV of a 440 Hz tone encoded by ffmpeg itself with ``codec``."""
    ffmpeg = resolve_ffmpeg(None)
    assert ffmpeg, "no ffmpeg"
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "tone.wav"
        subprocess.run(
            [
                ffmpeg,
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
                "-ac",
                str(channels),
                "-c:a",
                codec,
                "-f",
                "wav",
                str(target),
            ],
            check=True,
        )
        return target.read_bytes()


def with_format_tag(wav: bytes, tag: int) -> bytes:
    """The same WAV with another format tag (ffmpeg writes float as extensible)."""
    position = wav.index(b"fmt ") + 8
    return wav[:position] + struct.pack("<H", tag) + wav[position + 2 :]


def format_tag(wav: bytes) -> int:
    position = 12
    while position + 8 <= len(wav):
        chunk_id, size = struct.unpack_from("<4sI", wav, position)
        if chunk_id == b"fmt ":
            return int(struct.unpack_from("<H", wav, position + 8)[0])
        position += 8 + size + (size & 1)
    raise AssertionError("no fmt chunk")


def wav_with_tag(tag: int, data: bytes, rate: int = 8000, bits: int = 8) -> bytes:
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * bits // 8, bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def noise_wav(seconds: float, rate: int) -> bytes:
    """8-bit mono noise: the worst case for an encoder's output size."""
    generator = random.Random(5)
    return wav_with_tag(1, generator.randbytes(int(seconds * rate)), rate=rate)


async def chunk_sizes(settings: Settings, record_id: str) -> list[int]:
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(func.length(AudioChunk.data))
            .where(AudioChunk.record_id == uuid.UUID(record_id))
            .order_by(AudioChunk.seq)
        )
        sizes = [int(row[0]) for row in rows]
    await engine.dispose()
    return sizes


@pytest.fixture
async def user(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_user(client)


# --- the form ----------------------------------------------------------------------------


async def test_a_file_part_without_a_file_name_is_422_and_says_how_to_send_it(
    client: httpx.AsyncClient, user: dict[str, Any], migrated_database: Settings
) -> None:
    # What `curl -F "file=<tone.wav"` sends: the WAV's bytes as a text field.
    response = await post_multipart(client, [*credentials(user), ("file", None, make_wav(0.2))])
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert "no file name" in body["detail"]
    assert "file=@" in body["detail"]
    assert body["errors"][0]["field"] == "file"
    assert await record_count(migrated_database) == 0


async def test_several_file_parts_are_422(
    client: httpx.AsyncClient, user: dict[str, Any], migrated_database: Settings
) -> None:
    wav = make_wav(0.2)
    response = await post_multipart(
        client, [*credentials(user), ("file", "a.wav", wav), ("file", "b.wav", wav)]
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "one file part" in response.json()["detail"]
    assert "list" not in response.json()["detail"]
    assert await record_count(migrated_database) == 0


async def test_the_fields_may_come_in_any_order(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    response = await post_multipart(
        client, [("file", "late.wav", make_wav(0.2)), *reversed(credentials(user))]
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'--x\r\nContent-Disposition: form-data; name="token"\r\n\r\nabc', "boundary=x"),
        (b"no multipart here", "boundary=x"),
        (
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="\xff\xfe.wav"\r\n\r\n'
            b"RIFF\r\n--x--\r\n",
            "boundary=x",
        ),
    ],
    ids=["truncated", "no-boundary-in-body", "undecodable-header"],
)
async def test_a_malformed_multipart_body_is_a_4xx_problem(
    client: httpx.AsyncClient, body: bytes, content_type: str
) -> None:
    response = await client.post(
        "/api/v1/audio/records",
        content=body,
        headers={"Content-Type": f"multipart/form-data; {content_type}"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


async def test_a_body_that_is_not_a_form_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/audio/records", json={"file": "tone.wav"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


# --- WAV encodings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "channels", "rate", "tag"),
    [
        ("pcm_f32le", 1, 22_050, 0x0003),
        ("pcm_f64le", 2, 16_000, 0x0003),
        ("pcm_mulaw", 1, 8_000, 0x0007),
        ("pcm_alaw", 1, 8_000, 0x0006),
        ("pcm_s24le", 2, 48_000, 0xFFFE),  # ffmpeg writes 24-bit as WAVE_FORMAT_EXTENSIBLE
        ("pcm_f32le", 6, 48_000, 0xFFFE),  # float, 5.1, extensible
        ("adpcm_ima_wav", 1, 16_000, 0x0011),
        ("pcm_u8", 1, 11_025, 0x0001),
    ],
    ids=[
        "float32",
        "float64",
        "mu-law",
        "a-law",
        "extensible-s24",
        "extensible-float-5.1",
        "ima-adpcm",
        "u8",
    ],
)
async def test_every_wav_encoding_ffmpeg_decodes_is_converted(
    client: httpx.AsyncClient, user: dict[str, Any], codec: str, channels: int, rate: int, tag: int
) -> None:
    wav = ffmpeg_wav(codec, rate=rate, channels=channels, seconds=1.0)
    if tag != format_tag(wav):
        wav = with_format_tag(wav, tag)  # plain IEEE float instead of extensible
    assert format_tag(wav) == tag
    response = await upload(client, user, wav)
    assert response.status_code == 201, response.text
    download = await client.get(response.json()["url"])
    assert is_mp3(download.content)
    decoded = decode_mp3(download.content)
    assert abs(decoded.duration_ms - 1000) < 100
    assert decoded.channels == min(channels, 2)


async def test_a_hand_written_float_wav_is_converted(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    response = await upload(client, user, float_wav())
    assert response.status_code == 201, response.text


async def test_a_wav_ffmpeg_cannot_decode_is_422_with_its_reason(
    client: httpx.AsyncClient, user: dict[str, Any], migrated_database: Settings
) -> None:
    response = await upload(client, user, wav_with_tag(0x2222, b"\x01" * 4000))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    detail = response.json()["detail"]
    assert detail.startswith("ffmpeg cannot decode this WAV (format 0x2222 samples)")
    assert "/tmp" not in detail
    assert "quintet-audio" not in detail
    assert await record_count(migrated_database) == 0


# --- limits --------------------------------------------------------------------------------


async def test_the_limit_is_on_the_file_and_the_413_says_it(
    migrated_database: Settings,
) -> None:
    limit = 64 * 1024
    settings = make_settings(max_upload_bytes=limit)
    header = len(make_wav(0.0, rate=8_000))
    exactly = make_wav((limit - header) / 8_000, rate=8_000, sample_width=1)
    assert len(exactly) == limit
    over = make_wav((limit - header + 2) / 8_000, rate=8_000, sample_width=1)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            owner = await create_user(http)
            accepted = await upload(http, owner, exactly)
            refused = await upload(http, owner, over)
    finally:
        server.stop()
    assert accepted.status_code == 201, accepted.text
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    assert "65536 bytes" in refused.json()["detail"]
    assert await record_count(migrated_database) == 1


async def test_a_very_low_rate_is_resampled_only_as_far_as_needed_and_the_mp3_stays_small(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    # 60 s of 8-bit noise at 1 kHz (60 KB): it used to become 128 kbit/s at 44.1 kHz (~1 MB).
    wav = noise_wav(60, 1_000)
    response = await upload(client, user, wav)
    assert response.status_code == 201, response.text
    mp3 = (await client.get(response.json()["url"])).content
    decoded = decode_mp3(mp3)
    assert decoded.rate == 8_000
    assert abs(decoded.duration_ms - 60_000) < 200
    assert len(mp3) <= 1.2 * len(wav)


async def test_a_recording_longer_than_the_limit_is_422_and_says_the_limit(
    migrated_database: Settings,
) -> None:
    settings = make_settings(audio_max_duration_seconds=2)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            owner = await create_user(http)
            refused = await upload(http, owner, make_wav(3.0, rate=8_000))
            accepted = await upload(http, owner, make_wav(1.5, rate=8_000))
    finally:
        server.stop()
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    assert "lasts 3 seconds; the limit is 2 seconds" in refused.json()["detail"]
    assert accepted.status_code == 201
    assert await record_count(migrated_database) == 1


async def test_an_mp3_over_the_stored_limit_is_413_and_nothing_is_stored(
    migrated_database: Settings,
) -> None:
    settings = make_settings(audio_max_stored_bytes=8 * 1024)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            owner = await create_user(http)
            refused = await upload(http, owner, make_wav(5.0, rate=44_100, channels=2))
    finally:
        server.stop()
    assert refused.status_code == 413
    assert "8192 bytes" in refused.json()["detail"]
    assert await record_count(migrated_database) == 0


async def test_creating_audio_users_is_rate_limited_per_address(
    migrated_database: Settings,
) -> None:
    settings = make_settings(audio_users_per_hour=3)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            statuses = [
                (await http.post("/api/v1/audio/users", json={"name": f"u{n}"})).status_code
                for n in range(3)
            ]
            refused = await http.post("/api/v1/audio/users", json={"name": "one too many"})
    finally:
        server.stop()
    assert statuses == [201, 201, 201]
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    assert 1 <= int(refused.headers["retry-after"]) <= 3600


# --- storage and download ------------------------------------------------------------------


async def test_a_record_is_stored_in_chunks_and_served_across_them(
    client: httpx.AsyncClient, user: dict[str, Any], migrated_database: Settings
) -> None:
    response = await upload(client, user, make_wav(40.0, rate=44_100, channels=2))
    assert response.status_code == 201, response.text
    record_id = response.json()["id"]
    full = await client.get(response.json()["url"])
    size = len(full.content)
    sizes = await chunk_sizes(migrated_database, record_id)
    assert size > 2 * CHUNK_BYTES
    assert len(sizes) == math.ceil(size / CHUNK_BYTES)
    assert sizes[:-1] == [CHUNK_BYTES] * (len(sizes) - 1)
    assert sum(sizes) == size == int(full.headers["content-length"])
    start, end = CHUNK_BYTES - 10, 2 * CHUNK_BYTES + 9
    across = await client.get(response.json()["url"], headers={"Range": f"bytes={start}-{end}"})
    assert across.status_code == 206
    assert across.headers["content-length"] == str(end - start + 1)
    assert across.content == full.content[start : end + 1]
    decoded = decode_mp3(full.content)
    assert abs(decoded.duration_ms - 40_000) < 200


async def test_head_answers_the_headers_of_get_without_a_body(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    url = (await upload(client, user, make_wav(1.0))).json()["url"]
    get = await client.get(url)
    head = await client.head(url)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "etag", "accept-ranges", "content-disposition"):
        assert head.headers[name] == get.headers[name]
    part = await client.head(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.headers["content-length"] == "100"
    assert part.headers["content-range"] == f"bytes 0-99/{len(get.content)}"
    etag = await client.head(url, headers={"If-None-Match": get.headers["etag"]})
    assert etag.status_code == 304
    missing = await client.head(url.replace(user["id"], str(uuid.uuid4())))
    assert missing.status_code == 404


async def test_the_schema_still_describes_the_upload_form(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    operation = schema["paths"]["/api/v1/audio/records"]["post"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["required"]) == {"user_id", "token", "file"}
    assert form["properties"]["file"]["format"] == "binary"
    assert "head" in schema["paths"]["/record"]
