"""Players, localized achievements and awards (seed 002).

Names are unique without regard to case. The database enforces it through ``name_key``, the
Unicode case-folded name with a unique index: SQLite's ``lower()`` folds ASCII only, so an
index on ``lower(name)`` would let "Иван" and "иван" coexist on the embedded default.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

LANGUAGES = ("ru", "en")
_LANGUAGE_CHECK = "language IN ('ru', 'en')"


def utc_now() -> datetime:
    return datetime.now(UTC)


class Player(UUIDv7AuditBase):
    """A player; ``id`` (UUIDv7), ``created_at`` and ``updated_at`` come from the base."""

    __tablename__ = "achievement_player"
    __table_args__ = (CheckConstraint(_LANGUAGE_CHECK, name="language_known"),)

    name: Mapped[str] = mapped_column(String(64), nullable=False)
    name_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    language: Mapped[str] = mapped_column(String(2), nullable=False)


class Achievement(UUIDv7AuditBase):
    """A catalogue entry; ``id`` (UUIDv7), ``created_at`` and ``updated_at`` come from the
    base (also for the seed's Core inserts: they are column defaults)."""

    __tablename__ = "achievement"
    __table_args__ = (CheckConstraint("points > 0", name="points_positive"),)

    points: Mapped[int] = mapped_column(Integer, nullable=False)
    translations: Mapped[list[AchievementTranslation]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="AchievementTranslation.language"
    )

    def text_in(self, language: str) -> AchievementTranslation:
        """The translation in ``language``, else the other one (every achievement has one)."""
        by_language = {t.language: t for t in self.translations}
        if language in by_language:
            return by_language[language]
        return next(by_language[other] for other in LANGUAGES if other in by_language)


class AchievementTranslation(DefaultBase):
    """An achievement's name and description in one language. Names are unique within a
    language, without regard to case (``name_key``, as for players)."""

    __tablename__ = "achievement_translation"
    __table_args__ = (
        CheckConstraint(_LANGUAGE_CHECK, name="language_known"),
        UniqueConstraint("language", "name_key", name="uq_achievement_translation_name_key"),
    )

    achievement_id: Mapped[UUID] = mapped_column(
        ForeignKey("achievement.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    # NFKC case folding can lengthen a name ("ß" -> "ss"): room for that.
    name_key: Mapped[str] = mapped_column(String(480), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)


class Award(DefaultBase):
    """A player holds an achievement at most once: the pair is the primary key."""

    __tablename__ = "achievement_award"
    __table_args__ = (
        # The streak statistic walks each player's awards in time order.
        Index("ix_achievement_award_player_time", "player_id", "awarded_at"),
        Index("ix_achievement_award_achievement", "achievement_id"),
        # The chart of awards per day reads the last days' awards.
        Index("ix_achievement_award_time", "awarded_at"),
    )

    player_id: Mapped[UUID] = mapped_column(
        ForeignKey("achievement_player.id", ondelete="CASCADE"), primary_key=True
    )
    achievement_id: Mapped[UUID] = mapped_column(
        ForeignKey("achievement.id", ondelete="CASCADE"), primary_key=True
    )
    awarded_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=utc_now
    )


class PlayerStats(DefaultBase):
    """Each player's figures, kept up to date in every award's own transaction.

    The statistics read a handful of index entries of this table instead of every award:
    ``awards`` and ``points`` are the player's totals; ``last_day`` is the latest UTC day
    (days since 1970-01-01) they were awarded on, ``current_run`` the consecutive days
    ending on it and ``longest_streak`` their longest run of consecutive days. An award
    dated before ``last_day`` recomputes the player's runs from their awards. Every
    writer touches only its player's row: concurrent awards to different players never
    wait for each other.
    """

    __tablename__ = "achievement_player_stats"
    __table_args__ = (
        Index("ix_achievement_player_stats_points", "points", "player_id"),
        Index("ix_achievement_player_stats_awards", "awards", "player_id"),
        # In the order the streak list is shown: a page is the next entries of the index.
        Index(
            "ix_achievement_player_stats_streak",
            text("longest_streak DESC"),
            "player_id",
            postgresql_where=text("longest_streak >= 7"),
            sqlite_where=text("longest_streak >= 7"),
        ),
    )

    player_id: Mapped[UUID] = mapped_column(
        ForeignKey("achievement_player.id", ondelete="CASCADE"), primary_key=True
    )
    awards: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    points: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    current_run: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    longest_streak: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
