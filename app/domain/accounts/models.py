"""Accounts: users identified by phone number, their sign-in sessions and refresh tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase, UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

AVATAR_SIZES = (400, 100, 50)
DELETED_ACCOUNT_NAME = "Deleted account"
PhoneDiscovery = Literal["everyone", "contacts", "nobody"]
PHONE_DISCOVERY_VALUES: tuple[PhoneDiscovery, ...] = ("everyone", "contacts", "nobody")
# Who may add this account to a group (the same three circles as phone discovery).
GroupAdds = PhoneDiscovery


class User(UUIDv7AuditBase):
    """A messenger user. ``username`` is stored lower-cased, which makes it unique
    regardless of case with a plain unique index on every database.

    A deleted account keeps its row, so that its messages stay in other people's histories
    under "Deleted account": ``deleted_at`` is set, the phone is freed (NULL) and the name,
    bio, username, password and avatar are wiped.
    """

    __tablename__ = "user_account"

    phone: Mapped[str | None] = mapped_column(String(20), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    bio: Mapped[str] = mapped_column(Text, nullable=False, default="")
    username: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    avatar_original_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("blob.id", ondelete="SET NULL"), nullable=True
    )
    avatar_400_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("blob.id", ondelete="SET NULL"), nullable=True
    )
    avatar_100_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("blob.id", ondelete="SET NULL"), nullable=True
    )
    avatar_50_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("blob.id", ondelete="SET NULL"), nullable=True
    )
    # Who may find this account by its full phone number in search.
    phone_discovery: Mapped[str] = mapped_column(
        String(10), nullable=False, default="everyone", server_default="everyone"
    )
    # Who may add this account to a group: everyone, contacts (people who already share a
    # chat with it) or nobody.
    group_adds: Mapped[str] = mapped_column(
        String(10), nullable=False, default="contacts", server_default="contacts"
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def avatar_blob_id(self, size: str) -> UUID | None:
        return {
            "original": self.avatar_original_id,
            "400": self.avatar_400_id,
            "100": self.avatar_100_id,
            "50": self.avatar_50_id,
        }.get(size)


class AuthSession(UUIDv7Base):
    """One sign-in (a device or browser): its refresh tokens form one family whose
    ``family_id`` is this id, and its access tokens carry this id as their ``sid`` claim, so
    revoking the session ends both at once."""

    __tablename__ = "auth_session"

    user_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_agent: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class RefreshToken(UUIDv7Base):
    """One refresh token, stored as its SHA-256 only. Tokens rotated from one login share a
    ``family_id``: presenting a token that was already used revokes the whole family, which
    cuts off whoever stole a token, whichever of the two uses it first."""

    __tablename__ = "refresh_token"
    __table_args__ = (Index("ix_refresh_token_family_id", "family_id"),)

    user_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
    )
    family_id: Mapped[UUID] = mapped_column(nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class UserBlock(UUIDv7Base):
    """``blocker_id`` blocked ``blocked_id``: no direct messages either way, the blocked user
    cannot open a direct chat with the blocker nor add them to groups, does not find them in
    search and hears no presence of them."""

    __tablename__ = "user_block"
    __table_args__ = (
        UniqueConstraint("blocker_id", "blocked_id", name="uq_user_block_pair"),
        Index("ix_user_block_blocked_id", "blocked_id"),
    )

    blocker_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False
    )
    blocked_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
