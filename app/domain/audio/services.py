"""Audio users, their tokens and their records."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
import uuid
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audio.encoding import AudioConverter, inspect_wav
from app.domain.audio.models import AudioRecord, AudioUser
from app.lib.errors import (
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
)
from app.lib.ids import new_uuid7

UNSAFE_FILENAME_CHARS = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]+')


def hash_token(token: UUID) -> str:
    return hashlib.sha256(token.bytes).hexdigest()


def safe_original_name(name: str | None) -> str:
    """The uploaded name without directories or control characters, at most 200 chars."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = UNSAFE_FILENAME_CHARS.sub("_", unicodedata.normalize("NFC", base)).strip(" ._")
    return base[:200] or "recording.wav"


class AudioService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_user(self, name: str) -> tuple[AudioUser, UUID]:
        """A new user and its token; the token is not recoverable afterwards."""
        token = uuid.uuid4()
        user = AudioUser(id=new_uuid7(), name=name.strip(), token_sha256=hash_token(token))
        self.session.add(user)
        await self.session.flush()
        return user, token

    async def authenticate(self, user_id: UUID, token: UUID) -> AudioUser:
        """404 for an unknown user, 403 for a wrong token (compared in constant time)."""
        user = await self.session.get(AudioUser, user_id)
        if user is None:
            raise NotFoundError("No audio user with this id.")
        if not hmac.compare_digest(hash_token(token), user.token_sha256):
            raise ForbiddenError("The token does not belong to this user.")
        return user

    async def add_record(
        self,
        user: AudioUser,
        wav_bytes: bytes,
        original_name: str | None,
        converter: AudioConverter,
        max_bytes: int,
    ) -> AudioRecord:
        """Check the WAV, encode it off the event loop and store the MP3. Nothing is
        stored unless every step succeeds."""
        if len(wav_bytes) > max_bytes:
            raise PayloadTooLargeError(
                f"The file is {len(wav_bytes)} bytes; the limit is {max_bytes} bytes."
            )
        wav = inspect_wav(wav_bytes)
        mp3 = await converter.convert(wav)
        record = AudioRecord(
            id=new_uuid7(),
            user_id=user.id,
            original_name=safe_original_name(original_name),
            duration_ms=mp3.duration_ms,
            wav_size=len(wav_bytes),
            size=len(mp3.data),
            sha256=mp3.sha256,
            mp3=mp3.data,
        )
        self.session.add(record)
        await self.session.flush()
        return record

    async def get_record(self, record_id: UUID, user_id: UUID) -> AudioRecord:
        """The record's metadata; another user's record is as absent as a missing one."""
        record = await self.session.scalar(
            select(AudioRecord).where(AudioRecord.id == record_id, AudioRecord.user_id == user_id)
        )
        if record is None:
            raise NotFoundError("No such record for this user.")
        return record

    async def read_bytes(self, record: AudioRecord, start: int, length: int) -> bytes:
        """``length`` bytes of the MP3 from ``start``, cut out by the database (substr
        counts from 1 on PostgreSQL bytea and SQLite blobs alike)."""
        if length <= 0:
            return b""
        data = await self.session.scalar(
            select(func.substr(AudioRecord.mp3, start + 1, length)).where(
                AudioRecord.id == record.id
            )
        )
        return bytes(data or b"")
