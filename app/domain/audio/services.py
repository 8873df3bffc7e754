"""Audio users, their tokens and their records."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.domain.audio.encoding import AudioConverter, inspect_wav
from app.domain.audio.models import CHUNK_BYTES, AudioChunk, AudioRecord, AudioUser
from app.domain.audio.uploads import RecordForm
from app.lib.errors import ForbiddenError

UNSAFE_FILENAME_CHARS = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]+')


def hash_token(token: UUID) -> str:
    return hashlib.sha256(token.bytes).hexdigest()


def safe_original_name(name: str | None) -> str:
    """The uploaded name without directories or control characters, at most 200 chars."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = UNSAFE_FILENAME_CHARS.sub("_", unicodedata.normalize("NFC", base)).strip(" ._")
    return base[:200] or "recording.wav"


class AudioUserService(SQLAlchemyAsyncRepositoryService[AudioUser]):
    """Audio users through advanced-alchemy's repository: creation and token checks."""

    class Repo(SQLAlchemyAsyncRepository[AudioUser]):
        model_type = AudioUser

    repository_type = Repo

    async def create_user(self, name: str) -> tuple[AudioUser, UUID]:
        """A new user and its token; the token is not recoverable afterwards."""
        token = uuid.uuid4()
        user = AudioUser(name=name.strip(), token_sha256=hash_token(token))
        return await self.create(user, auto_refresh=False), token

    async def authenticate(self, user_id: UUID, token: UUID) -> AudioUser:
        """404 for an unknown user, 403 for a wrong token (compared in constant time)."""
        user = await self.get(user_id, error_messages={"not_found": "No audio user with this id."})
        if not hmac.compare_digest(hash_token(token), user.token_sha256):
            raise ForbiddenError("The token does not belong to this user.")
        return user


class AudioService(SQLAlchemyAsyncRepositoryService[AudioRecord]):
    """A user's records through advanced-alchemy's repository; the MP3 bytes in chunks."""

    class Repo(SQLAlchemyAsyncRepository[AudioRecord]):
        model_type = AudioRecord

    repository_type = Repo

    async def add_record(
        self,
        user: AudioUser,
        form: RecordForm,
        converter: AudioConverter,
        settings: Settings,
    ) -> AudioRecord:
        """Check the WAV, encode it with ffmpeg and store the MP3 in chunks. Nothing is
        stored unless every step succeeds (one transaction, committed after the answer)."""
        wav = inspect_wav(form.path, settings.audio_max_duration_seconds)
        # No database connection is held while ffmpeg works.
        session = self.repository.session
        await session.commit()
        mp3 = await converter.convert(form.path, wav, form.path.with_name("converted.mp3"))
        record = AudioRecord(
            user_id=user.id,
            original_name=safe_original_name(form.filename),
            duration_ms=mp3.duration_ms,
            wav_size=form.size,
            size=mp3.size,
            sha256=mp3.sha256,
        )
        await self.create(record, auto_refresh=False)
        # Core inserts, one chunk in memory at a time (ORM objects would pile up until commit).
        with mp3.path.open("rb") as source:
            seq = 0
            while data := source.read(CHUNK_BYTES):
                await session.execute(
                    insert(AudioChunk).values(record_id=record.id, seq=seq, data=data)
                )
                seq += 1
        return record

    async def get_record(self, record_id: UUID, user_id: UUID) -> AudioRecord:
        """The record's metadata; another user's record is as absent as a missing one."""
        return await self.get_one(
            AudioRecord.id == record_id,
            AudioRecord.user_id == user_id,
            error_messages={"not_found": "No such record for this user."},
        )


async def stream_bytes(
    engine: AsyncEngine, record_id: UUID, start: int, end: int
) -> AsyncIterator[bytes]:
    """Bytes ``start`` to ``end`` (inclusive) of a record's MP3, one stored chunk per query:
    a reader holds one chunk in memory and a pooled connection only while it is fetched, so
    neither the file's size nor the number of readers makes memory grow."""
    for seq in range(start // CHUNK_BYTES, end // CHUNK_BYTES + 1):
        async with engine.connect() as connection:
            data = await connection.scalar(
                select(AudioChunk.data).where(
                    AudioChunk.record_id == record_id, AudioChunk.seq == seq
                )
            )
        if data is None:  # the record went away while it was being sent
            return
        base = seq * CHUNK_BYTES
        yield bytes(data)[max(0, start - base) : end - base + 1]
