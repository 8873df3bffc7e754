"""Stored trivia questions (seed 004, task 1)."""

from __future__ import annotations

from datetime import UTC, datetime

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Identity, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class TriviaQuestion(DefaultBase):
    """One question as the upstream gave it.

    ``id`` is ours and grows with every insert, so "the question saved most recently" is the
    highest id. ``(source, upstream_id)`` is unique: the database, not the application,
    refuses a question that is already stored, however many imports run at once.
    """

    __tablename__ = "trivia_question"
    __table_args__ = (UniqueConstraint("source", "upstream_id"),)

    # An identity column on PostgreSQL; SQLite's INTEGER PRIMARY KEY is its rowid, which grows too.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    upstream_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    question: Mapped[str] = mapped_column(Text, nullable=False)
    answer: Mapped[str] = mapped_column(Text, nullable=False)
    category: Mapped[str | None] = mapped_column(String(255), nullable=True)
    value: Mapped[int | None] = mapped_column(Integer, nullable=True)
    upstream_created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=lambda: datetime.now(UTC)
    )
    saved_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=lambda: datetime.now(UTC)
    )
