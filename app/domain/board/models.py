"""The board's single owner account (seed 000: registration creates one user, ever)."""

from __future__ import annotations

from datetime import UTC, datetime

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

OWNER_SLOT = 1


class BoardOwner(DefaultBase):
    """At most one row can exist: the primary key is a slot that may only hold the value 1,
    so the database itself refuses a second owner however many registrations race."""

    __tablename__ = "board_owner"
    __table_args__ = (CheckConstraint(f"slot = {OWNER_SLOT}", name="single_slot"),)

    slot: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=False, default=OWNER_SLOT
    )
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=lambda: datetime.now(UTC)
    )
