"""Players, localized achievements and awards (seed 002).

Names are unique without regard to case. The database enforces it through ``name_key``, the
Unicode case-folded name with a unique index: SQLite's ``lower()`` folds ASCII only, so an
index on ``lower(name)`` would let "Иван" and "иван" coexist on the embedded default.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.lib.ids import new_uuid7

LANGUAGES = ("ru", "en")
_LANGUAGE_CHECK = "language IN ('ru', 'en')"


def utc_now() -> datetime:
    return datetime.now(UTC)


class Player(DefaultBase):
    __tablename__ = "achievement_player"
    __table_args__ = (CheckConstraint(_LANGUAGE_CHECK, name="language_known"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_uuid7)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    name_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    language: Mapped[str] = mapped_column(String(2), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=utc_now
    )


class Achievement(DefaultBase):
    __tablename__ = "achievement"
    __table_args__ = (CheckConstraint("points > 0", name="points_positive"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_uuid7)
    points: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=utc_now
    )
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


class StatsVersion(DefaultBase):
    """One row whose token changes in every transaction that changes the statistics.

    The statistics cache is keyed by this token, so a cached answer is only ever served
    for the data it was computed from (see ``AchievementStatsService``).
    """

    __tablename__ = "achievement_stats_version"
    __table_args__ = (CheckConstraint("slot = 1", name="single_slot"),)

    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=1)
    token: Mapped[str] = mapped_column(String(36), nullable=False)
