"""Migration 0009_audio_chunks moves existing MP3s into chunk rows and back (on the embedded
SQLite file, where the column drop needs Alembic's batch mode)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.asgi import create_asgi
from app.config import Settings
from app.domain.audio.models import CHUNK_BYTES
from app.lib.db import create_sqlalchemy_config, upgrade_database
from tests.support import LiveServer, free_port

BEFORE = "0005_telegram"


async def insert_old_record(url: str, mp3: bytes) -> tuple[uuid.UUID, uuid.UUID]:
    now = datetime.now(UTC)
    user_id, record_id = uuid.uuid4(), uuid.uuid4()
    users = sa.table(
        "audio_user",
        sa.column("id", GUID()),
        sa.column("name", sa.String()),
        sa.column("token_sha256", sa.String()),
        sa.column("created_at", DateTimeUTC()),
        sa.column("updated_at", DateTimeUTC()),
    )
    records = sa.table(
        "audio_record",
        sa.column("id", GUID()),
        sa.column("user_id", GUID()),
        sa.column("original_name", sa.String()),
        sa.column("duration_ms", sa.Integer()),
        sa.column("wav_size", sa.Integer()),
        sa.column("size", sa.Integer()),
        sa.column("sha256", sa.String()),
        sa.column("mp3", sa.LargeBinary()),
        sa.column("created_at", DateTimeUTC()),
        sa.column("updated_at", DateTimeUTC()),
    )
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(users).values(
                id=user_id, name="old", token_sha256="0" * 64, created_at=now, updated_at=now
            )
        )
        await connection.execute(
            sa.insert(records).values(
                id=record_id,
                user_id=user_id,
                original_name="old.wav",
                duration_ms=1000,
                wav_size=len(mp3),
                size=len(mp3),
                sha256="a" * 64,
                mp3=mp3,
                created_at=now,
                updated_at=now,
            )
        )
    await engine.dispose()
    return user_id, record_id


async def old_mp3(url: str, record_id: uuid.UUID) -> bytes:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.connect() as connection:
        value = await connection.scalar(
            sa.text("SELECT mp3 FROM audio_record WHERE id = :id"),
            {"id": GUID().process_bind_param(record_id, engine.dialect)},
        )
    await engine.dispose()
    return bytes(value)


async def test_existing_records_move_into_chunks_and_back(tmp_path: Path) -> None:
    settings = Settings(
        env="test", database_url=f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", log_level="WARNING"
    )
    await asyncio.to_thread(upgrade_database, settings, BEFORE)
    mp3 = random.Random(9).randbytes(2 * CHUNK_BYTES + 1234)
    user_id, record_id = await insert_old_record(settings.database_url, mp3)

    await asyncio.to_thread(upgrade_database, settings)
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            params = {"id": str(record_id), "user": str(user_id)}
            full = await http.get("/record", params=params)
            tail = await http.get("/record", params=params, headers={"Range": "bytes=-1300"})
    finally:
        server.stop()
    assert full.status_code == 200
    assert full.content == mp3
    assert tail.content == mp3[-1300:]

    commands = AlembicCommands(create_sqlalchemy_config(settings, pooled=False))
    await asyncio.to_thread(commands.downgrade, BEFORE)
    assert await old_mp3(settings.database_url, record_id) == mp3
