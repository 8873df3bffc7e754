"""The audio service (seed 004, task 2) through the real server, PostgreSQL and ffmpeg."""

from __future__ import annotations

import asyncio
import io
import math
import struct
import subprocess
import tempfile
import time
import uuid
import wave
from dataclasses import dataclass
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
from app.domain.audio.models import AudioRecord
from tests.support import LiveServer, free_port, make_settings

PROBLEM_JSON = "application/problem+json"


def make_wav(
    seconds: float = 1.0, rate: int = 22_050, channels: int = 1, sample_width: int = 2
) -> bytes:
    """A 440 Hz tone written by the standard library's wave module."""
    frames = bytearray()
    peak = (1 << (8 * sample_width - 1)) - 1
    for n in range(int(seconds * rate)):
        value = int(peak * 0.5 * math.sin(2 * math.pi * 440 * n / rate))
        if sample_width == 1:
            sample = bytes([value + 128])
        else:
            sample = value.to_bytes(sample_width, "little", signed=True)
        frames += sample * channels
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(sample_width)
        writer.setframerate(rate)
        writer.writeframes(bytes(frames))
    return out.getvalue()


def float_wav() -> bytes:
    """A RIFF/WAVE file with IEEE float samples (format 3), written by hand."""
    samples = struct.pack("<4f", 0.0, 0.5, -0.5, 0.0)
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


@dataclass(frozen=True)
class Decoded:
    channels: int
    rate: int
    duration_ms: int


def decode_mp3(data: bytes) -> Decoded:
    """Decode an MP3 with ffmpeg (from a file, so its Xing/LAME header is honoured)."""
    ffmpeg = resolve_ffmpeg(None)
    assert ffmpeg, "no ffmpeg"
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.mp3", Path(tmp) / "out.wav"
        source.write_bytes(data)
        subprocess.run(
            [ffmpeg, "-loglevel", "error", "-i", str(source), "-f", "wav", str(target)],
            check=True,
        )
        with wave.open(str(target), "rb") as reader:
            return Decoded(
                reader.getnchannels(),
                reader.getframerate(),
                round(reader.getnframes() * 1000 / reader.getframerate()),
            )


def is_mp3(data: bytes) -> bool:
    return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


async def create_user(http: httpx.AsyncClient, name: str = "alice") -> dict[str, Any]:
    response = await http.post("/api/v1/audio/users", json={"name": name})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def upload(
    http: httpx.AsyncClient,
    user: dict[str, Any],
    content: bytes,
    filename: str = "tone.wav",
    token: str | None = None,
    content_type: str = "audio/wav",
    **kwargs: Any,
) -> httpx.Response:
    return await http.post(
        "/api/v1/audio/records",
        data={"user_id": user["id"], "token": token if token is not None else user["token"]},
        files={"file": (filename, content, content_type)},
        **kwargs,
    )


async def record_count(settings: Settings) -> int:
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(AudioRecord))
    await engine.dispose()
    return int(count or 0)


@pytest.fixture
async def user(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_user(client)


@pytest.fixture
async def uploaded(client: httpx.AsyncClient, user: dict[str, Any]) -> dict[str, Any]:
    response = await upload(client, user, make_wav(seconds=1.0), filename="Мой голос.wav")
    assert response.status_code == 201, response.text
    return {**response.json(), "user": user}


async def test_creating_a_user_answers_its_id_and_a_uuid_token(client: httpx.AsyncClient) -> None:
    body = await create_user(client, "Bob")
    assert uuid.UUID(body["id"]).version == 7
    assert uuid.UUID(body["token"]).version == 4
    assert body["name"] == "Bob"


@pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": "x" * 101}, {"name": 5}])
async def test_creating_a_user_without_a_valid_name_is_refused(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await client.post("/api/v1/audio/users", json=payload)
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


async def test_upload_converts_the_wav_and_the_url_downloads_an_mp3_of_the_same_length(
    client: httpx.AsyncClient, user: dict[str, Any], live_server: LiveServer
) -> None:
    response = await upload(client, user, make_wav(seconds=2.0, channels=2))
    assert response.status_code == 201
    body = response.json()
    assert uuid.UUID(body["id"]).version == 7
    assert body["url"] == f"{live_server.url}/record?id={body['id']}&user={user['id']}"

    download = await client.get(body["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "audio/mpeg"
    assert int(download.headers["content-length"]) == len(download.content)
    assert download.headers["accept-ranges"] == "bytes"
    assert is_mp3(download.content)
    decoded = decode_mp3(download.content)
    assert abs(decoded.duration_ms - 2000) < 100
    assert decoded.channels == 2


@pytest.mark.parametrize(
    ("rate", "channels", "width"),
    [(8_000, 1, 1), (44_100, 2, 3), (48_000, 1, 4), (96_000, 6, 2)],
)
async def test_pcm_wav_variants_are_converted(
    client: httpx.AsyncClient, user: dict[str, Any], rate: int, channels: int, width: int
) -> None:
    response = await upload(client, user, make_wav(0.5, rate, channels, width))
    assert response.status_code == 201, response.text
    mp3 = (await client.get(response.json()["url"])).content
    assert abs(decode_mp3(mp3).duration_ms - 500) < 100


async def test_the_download_carries_a_safe_file_name(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    download = await client.get(uploaded["url"])
    disposition = download.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "filename*=UTF-8''%D0%9C%D0%BE%D0%B9%20%D0%B3%D0%BE%D0%BB%D0%BE%D1%81.mp3" in disposition


async def test_a_path_in_the_uploaded_name_is_dropped(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    response = await upload(client, user, make_wav(0.2), filename='../../etc/"evil".wav')
    download = await client.get(response.json()["url"])
    disposition = download.headers["content-disposition"]
    assert "/" not in disposition.split("filename*=")[0]
    assert 'filename="evil_.mp3"' in disposition


async def test_the_url_uses_the_host_and_scheme_a_trusted_proxy_forwarded(
    migrated_database: Settings,
) -> None:
    settings = make_settings(trusted_proxies=("127.0.0.1",))
    server = LiveServer(create_asgi(settings), free_port()).start()
    forwarded = {"X-Forwarded-Host": "audio.example.org:8443", "X-Forwarded-Proto": "https"}
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            owner = await create_user(http)
            response = await upload(http, owner, make_wav(0.2), headers=forwarded)
    finally:
        server.stop()
    assert response.status_code == 201
    assert response.json()["url"].startswith("https://audio.example.org:8443/record?id=")


async def test_forwarded_host_and_scheme_from_an_untrusted_peer_are_ignored(
    client: httpx.AsyncClient, user: dict[str, Any], live_server: LiveServer
) -> None:
    forwarded = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    response = await upload(client, user, make_wav(0.2), headers=forwarded)
    assert response.status_code == 201
    assert response.json()["url"].startswith(f"{live_server.url}/record?id=")


async def test_the_url_uses_public_base_url_when_it_is_set(migrated_database: Settings) -> None:
    settings = make_settings(public_base_url="https://quintet.example.com/")
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            owner = await create_user(http)
            response = await upload(http, owner, make_wav(0.2))
    finally:
        server.stop()
    body = response.json()
    assert body["url"] == f"https://quintet.example.com/record?id={body['id']}&user={owner['id']}"


async def test_a_wrong_token_is_403_and_stores_nothing(
    client: httpx.AsyncClient, user: dict[str, Any], migrated_database: Settings
) -> None:
    response = await upload(client, user, make_wav(0.2), token=str(uuid.uuid4()))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert await record_count(migrated_database) == 0


@pytest.mark.parametrize("token", ["not-a-uuid", ""])
async def test_a_malformed_token_is_422(
    client: httpx.AsyncClient, user: dict[str, Any], migrated_database: Settings, token: str
) -> None:
    response = await upload(client, user, make_wav(0.2), token=token)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert await record_count(migrated_database) == 0


async def test_another_users_token_is_403(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    other = await create_user(client, "mallory")
    response = await upload(client, user, make_wav(0.2), token=other["token"])
    assert response.status_code == 403


async def test_an_unknown_user_is_404(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    stranger = {"id": str(uuid.uuid4()), "token": user["token"]}
    response = await upload(client, stranger, make_wav(0.2))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


async def test_a_malformed_user_id_is_422(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    response = await upload(client, {**user, "id": "42"}, make_wav(0.2))
    assert response.status_code == 422


async def test_missing_form_fields_are_refused(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    no_file = await client.post(
        "/api/v1/audio/records", data={"user_id": user["id"], "token": user["token"]}
    )
    assert no_file.status_code in (400, 422)
    no_token = await client.post(
        "/api/v1/audio/records",
        data={"user_id": user["id"]},
        files={"file": ("a.wav", make_wav(0.1), "audio/wav")},
    )
    assert no_token.status_code in (400, 422)
    assert no_token.headers["content-type"].startswith(PROBLEM_JSON)


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        (b"just some text, not audio", "notes.wav"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 100, "song.wav"),
        (b"", "empty.wav"),
    ],
)
async def test_a_file_that_is_not_a_wav_is_415_whatever_its_name(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    migrated_database: Settings,
    content: bytes,
    filename: str,
) -> None:
    response = await upload(client, user, content, filename=filename)
    assert response.status_code == 415
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert await record_count(migrated_database) == 0


async def test_a_wav_named_otherwise_is_accepted(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    response = await upload(
        client, user, make_wav(0.2), filename="recording.bin", content_type="text/plain"
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "content",
    [
        make_wav(0.2)[:44],  # a header without samples
        b"RIFF\x24\x00\x00\x00WAVEdata\x00\x00\x00\x00",  # no fmt chunk
    ],
    ids=["no-samples", "no-fmt"],
)
async def test_a_wav_that_cannot_be_encoded_is_422(
    client: httpx.AsyncClient, user: dict[str, Any], migrated_database: Settings, content: bytes
) -> None:
    response = await upload(client, user, content)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert await record_count(migrated_database) == 0


async def test_a_file_over_the_limit_is_413(migrated_database: Settings) -> None:
    settings = make_settings(max_upload_bytes=64 * 1024)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            owner = await create_user(http)
            response = await upload(http, owner, make_wav(seconds=2.0, rate=22_050))
            small = await upload(http, owner, make_wav(seconds=0.5, rate=8_000))
    finally:
        server.stop()
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert small.status_code == 201
    assert await record_count(migrated_database) == 1


async def test_someone_elses_record_is_404(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    other = await create_user(client, "eve")
    response = await client.get("/record", params={"id": uploaded["id"], "user": other["id"]})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    unknown = await client.get(
        "/record", params={"id": str(uuid.uuid4()), "user": uploaded["user"]["id"]}
    )
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "params",
    [{"id": "nope", "user": None}, {"id": None, "user": "nope"}, {"id": "1", "user": "2"}],
)
async def test_malformed_record_ids_are_422(
    client: httpx.AsyncClient, uploaded: dict[str, Any], params: dict[str, str | None]
) -> None:
    query = {
        "id": params["id"] or uploaded["id"],
        "user": params["user"] or uploaded["user"]["id"],
    }
    response = await client.get("/record", params=query)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


async def test_missing_record_parameters_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/record", params={"id": str(uuid.uuid4())})
    assert response.status_code in (400, 422)


async def test_range_requests_return_the_requested_bytes(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    full = (await client.get(uploaded["url"])).content
    size = len(full)

    head = await client.get(uploaded["url"], headers={"Range": "bytes=0-99"})
    assert head.status_code == 206
    assert head.headers["content-range"] == f"bytes 0-99/{size}"
    assert head.headers["content-length"] == "100"
    assert head.content == full[:100]

    tail = await client.get(uploaded["url"], headers={"Range": "bytes=-50"})
    assert tail.status_code == 206
    assert tail.content == full[-50:]

    rest = await client.get(uploaded["url"], headers={"Range": f"bytes={size - 10}-"})
    assert rest.content == full[-10:]
    assert rest.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"

    beyond = await client.get(uploaded["url"], headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"

    garbage = await client.get(uploaded["url"], headers={"Range": "lines=1-2"})
    assert garbage.status_code == 200
    assert garbage.content == full


async def test_if_range_with_a_stale_etag_sends_the_whole_file(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    response = await client.get(
        uploaded["url"], headers={"Range": "bytes=0-9", "If-Range": '"stale"'}
    )
    assert response.status_code == 200
    assert len(response.content) > 10


async def test_the_etag_answers_304_when_it_matches(
    client: httpx.AsyncClient, uploaded: dict[str, Any]
) -> None:
    first = await client.get(uploaded["url"])
    etag = first.headers["etag"]
    again = await client.get(uploaded["url"], headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    changed = await client.get(uploaded["url"], headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200


async def test_the_audio_page_offers_user_creation_and_upload(client: httpx.AsyncClient) -> None:
    page = await client.get("/audio")
    assert page.status_code == 200
    assert 'id="audio-user-form"' in page.text
    assert 'id="audio-upload-form"' in page.text
    assert (await client.get("/static/js/audio.js")).status_code == 200


async def test_the_home_page_links_trivia_and_audio(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    for href in ("/docs/#/trivia", "/docs/#/audio", "/audio"):
        assert f'href="{href}"' in page


async def test_the_embedded_sqlite_run_stores_and_serves_ranges(tmp_path: Any) -> None:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'quintet.db'}",
        log_level="WARNING",
    )
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            owner = await create_user(http)
            created = await upload(http, owner, make_wav(0.5))
            full = await http.get(created.json()["url"])
            part = await http.get(created.json()["url"], headers={"Range": "bytes=10-19"})
    finally:
        server.stop()
    assert created.status_code == 201
    assert is_mp3(full.content)
    assert part.status_code == 206
    assert part.content == full.content[10:20]


async def test_uploads_beyond_the_conversion_queue_get_503_and_the_loop_stays_responsive(
    migrated_database: Settings,
) -> None:
    settings = make_settings(audio_conversion_workers=1, audio_max_pending_conversions=1)
    server = LiveServer(create_asgi(settings), free_port()).start()
    wav = make_wav(seconds=10.0, rate=44_100, channels=2)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            owner = await create_user(http)
            uploads = [asyncio.create_task(upload(http, owner, wav)) for _ in range(6)]
            live_latencies = []
            while not all(task.done() for task in uploads):
                started = time.perf_counter()
                assert (await http.get("/health/live")).status_code == 200
                live_latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)
            responses = [task.result() for task in uploads]
    finally:
        server.stop()
    statuses = sorted(response.status_code for response in responses)
    assert 201 in statuses
    assert 503 in statuses
    assert set(statuses) <= {201, 503}
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "2"
    assert busy.headers["content-type"].startswith(PROBLEM_JSON)
    # Encoding runs in threads: the event loop keeps answering while it happens.
    assert live_latencies
    assert max(live_latencies) < 0.5
    assert await record_count(migrated_database) == statuses.count(201)
