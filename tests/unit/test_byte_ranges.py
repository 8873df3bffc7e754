"""Audio downloads' byte ranges: the Range header's parsing, the response it plans and the
bytes read across stored chunks."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from litestar.testing import RequestFactory
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.domain.audio import services
from app.domain.audio.controllers import (
    RangeNotSatisfiableError,
    parse_byte_range,
    plan_download,
)
from app.domain.audio.models import AudioChunk, AudioRecord, AudioUser

SIZE = 10
OWNER = "unit-test byte ranges"


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=0-9", (0, 9)),
        ("bytes=3-6", (3, 6)),
        ("bytes=0-10", (0, 9)),  # past the end: cut at the last byte
        ("bytes=2-999", (2, 9)),
        ("bytes=9-", (9, 9)),
        ("bytes=0-", (0, 9)),
        ("bytes=-1", (9, 9)),
        ("bytes=-10", (0, 9)),
        ("bytes=-11", (0, 9)),  # a suffix longer than the file is all of it
        (" bytes=4-5 ", (4, 5)),
    ],
)
def test_a_satisfiable_range_is_its_inclusive_span(header: str, span: tuple[int, int]) -> None:
    assert parse_byte_range(header, SIZE) == span


@pytest.mark.parametrize(
    "header", [None, "", "bytes=0-1,4-5", "bytes=-", "bytes=a-b", "items=0-1", "bytes 0-1"]
)
def test_no_range_several_or_an_unreadable_one_means_the_whole_file(header: str | None) -> None:
    assert parse_byte_range(header, SIZE) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=10-", 10), ("bytes=10-12", 10), ("bytes=5-4", 10), ("bytes=-0", 10), ("bytes=0-", 0)],
)
def test_an_unsatisfiable_range_is_416_with_the_size(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiableError) as refused:
        parse_byte_range(header, size)
    assert refused.value.status_code == 416
    assert (refused.value.headers or {})["Content-Range"] == f"bytes */{size}"


def a_record(size: int = SIZE) -> AudioRecord:
    return AudioRecord(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        original_name="talk.wav",
        duration_ms=1000,
        wav_size=size * 10,
        size=size,
        sha256=hashlib.sha256(b"talk").hexdigest(),
    )


def etag_of(record: AudioRecord) -> str:
    return f'"{record.sha256[:32]}"'


def test_a_range_plans_a_206_with_its_content_range_and_length() -> None:
    record = a_record()
    plan = plan_download(RequestFactory().get("/", headers={"Range": "bytes=2-5"}), record)
    assert (plan.status, plan.span) == (206, (2, 5))
    assert plan.headers["Content-Range"] == "bytes 2-5/10"
    assert plan.headers["Content-Length"] == "4"
    assert plan.headers["Accept-Ranges"] == "bytes"


def test_without_a_range_the_whole_file_is_planned() -> None:
    plan = plan_download(RequestFactory().get("/"), a_record())
    assert (plan.status, plan.span) == (200, (0, 9))
    assert plan.headers["Content-Length"] == "10"
    assert "Content-Range" not in plan.headers


def test_if_range_with_another_etag_sends_the_whole_file() -> None:
    record = a_record()
    stale = {"Range": "bytes=2-5", "If-Range": '"an-older-version"'}
    assert plan_download(RequestFactory().get("/", headers=stale), record).status == 200
    fresh = {"Range": "bytes=2-5", "If-Range": etag_of(record)}
    assert plan_download(RequestFactory().get("/", headers=fresh), record).status == 206


@pytest.mark.parametrize("header", ["{etag}", "W/{etag}", '"x", {etag}', "*"])
def test_a_matching_if_none_match_plans_a_304_without_a_body(header: str) -> None:
    record = a_record()
    request = RequestFactory().get(
        "/", headers={"If-None-Match": header.format(etag=etag_of(record))}
    )
    plan = plan_download(request, record)
    assert (plan.status, plan.span) == (304, None)
    assert plan.headers["ETag"] == etag_of(record)


async def test_the_bytes_of_a_range_come_from_every_chunk_it_crosses(
    migrated_database: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "CHUNK_BYTES", 4)
    content = bytes(range(10))  # chunks 0-3, 4-7, 8-9
    engine = create_async_engine(migrated_database.database_url, poolclass=NullPool)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            user = AudioUser(name=OWNER, token_sha256="0" * 64)
            session.add(user)
            await session.flush()
            record = a_record(len(content))
            record.user_id = user.id
            session.add(record)
            await session.flush()
            for seq in range(3):
                session.add(
                    AudioChunk(record_id=record.id, seq=seq, data=content[seq * 4 : seq * 4 + 4])
                )
            await session.commit()

        async def read(start: int, end: int) -> bytes:
            return b"".join(
                [part async for part in services.stream_bytes(engine, record.id, start, end)]
            )

        for start, end in [(0, 9), (0, 0), (3, 4), (4, 7), (7, 8), (9, 9), (2, 9), (5, 6)]:
            assert await read(start, end) == content[start : end + 1], (start, end)
    finally:
        async with AsyncSession(engine) as session:
            await session.execute(delete(AudioUser).where(AudioUser.name == OWNER))
            await session.commit()  # the record and its chunks go with their owner
        await engine.dispose()
