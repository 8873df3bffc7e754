"""Audio users, their MP3 records and the records' bytes in chunks (seed 004, task 2)."""

from __future__ import annotations

from uuid import UUID

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase
from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

# Bytes per stored chunk: a download holds one chunk in memory at a time.
CHUNK_BYTES = 256 * 1024


class AudioUser(UUIDv7AuditBase):
    """A user of the audio service. The access token is a random UUID shown once; only its
    SHA-256 is stored (a random 122-bit token needs no slow password hash)."""

    __tablename__ = "audio_user"

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    token_sha256: Mapped[str] = mapped_column(String(64), nullable=False)


class AudioRecord(UUIDv7AuditBase):
    """One converted recording's metadata. The MP3 itself lives in the database, as the seed
    asks, in :class:`AudioChunk` rows, so that neither storing nor serving it ever holds the
    whole file in memory."""

    __tablename__ = "audio_record"

    user_id: Mapped[UUID] = mapped_column(
        ForeignKey("audio_user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    original_name: Mapped[str] = mapped_column(String(255), nullable=False)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    wav_size: Mapped[int] = mapped_column(Integer, nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)


class AudioChunk(DefaultBase):
    """Bytes ``seq * CHUNK_BYTES`` … of a record's MP3 (every chunk but the last is full)."""

    __tablename__ = "audio_chunk"

    record_id: Mapped[UUID] = mapped_column(
        ForeignKey("audio_record.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
