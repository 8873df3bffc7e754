"""Audio users and their MP3 records (seed 004, task 2)."""

from __future__ import annotations

from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column


class AudioUser(UUIDv7AuditBase):
    """A user of the audio service. The access token is a random UUID shown once; only its
    SHA-256 is stored (a random 122-bit token needs no slow password hash)."""

    __tablename__ = "audio_user"

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    token_sha256: Mapped[str] = mapped_column(String(64), nullable=False)


class AudioRecord(UUIDv7AuditBase):
    """One converted recording. The MP3 itself lives in the database, as the seed asks;
    ``mp3`` is deferred so that metadata queries never drag the bytes along."""

    __tablename__ = "audio_record"

    user_id: Mapped[UUID] = mapped_column(
        ForeignKey("audio_user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    original_name: Mapped[str] = mapped_column(String(255), nullable=False)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    wav_size: Mapped[int] = mapped_column(Integer, nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    mp3: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
