"""Which Telegram chat receives a user's notifications."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column


class TelegramBinding(DefaultBase):
    """One Telegram chat per user and one user per chat: binding again replaces the old pair."""

    __tablename__ = "telegram_binding"

    user_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    telegram_chat_id: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    bound_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=lambda: datetime.now(UTC)
    )
