"""Chats, their members, messages, attachments and likes.

Message ids are UUIDv7, but ids are made before the commit, by replicas whose clocks can
differ, so they do not order a chat's messages the way clients see them arrive. Each
message also gets ``seq``, the chat's next number, taken with ``UPDATE chat SET last_seq =
last_seq + 1 ... RETURNING`` inside the writing transaction: the row lock it takes makes
the writers of one chat commit in ``seq`` order, so a history cursor on ``seq`` never skips a
message that committed after the reader's page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.lib.ids import new_uuid7

DIRECT = "direct"
GROUP = "group"
OWNER = "owner"
MEMBER = "member"
MAX_GROUP_MEMBERS = 500


def _now() -> datetime:
    return datetime.now(UTC)


class Chat(UUIDv7Base):
    __tablename__ = "chat"

    type: Mapped[str] = mapped_column(String(10), nullable=False)
    title: Mapped[str | None] = mapped_column(String(128), nullable=True)
    owner_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    # "<smaller user id>:<larger user id>" for direct chats: the unique index makes
    # "one direct chat per pair" hold even when both users open it at the same moment.
    direct_key: Mapped[str | None] = mapped_column(String(80), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=_now
    )
    last_activity_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=_now
    )
    # The seq of the chat's newest message (see the module docstring).
    last_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")


class ChatMember(UUIDv7Base):
    __tablename__ = "chat_member"
    __table_args__ = (
        Index("uq_chat_member_chat_user", "chat_id", "user_id", unique=True),
        # The chat list starts from "my memberships".
        Index("ix_chat_member_user_id", "user_id"),
    )

    chat_id: Mapped[UUID] = mapped_column(ForeignKey("chat.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(10), nullable=False, default=MEMBER)
    joined_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=_now
    )
    pinned_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    muted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # The newest message this member has read; unread = later messages by others.
    last_read_message_id: Mapped[UUID | None] = mapped_column(nullable=True)
    # The seq up to which this member's client has received the chat's messages (it
    # acknowledges with message:delivered): the "delivered" tick of a direct chat.
    last_delivered_seq: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default="0"
    )


class MessageAttachment(UUIDv7Base):
    __tablename__ = "message_attachment"

    kind: Mapped[str] = mapped_column(String(10), nullable=False)  # image | file
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    blob_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("blob.id", ondelete="SET NULL"), nullable=True
    )
    preview_blob_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("blob.id", ondelete="SET NULL"), nullable=True
    )


class Message(UUIDv7Base):
    __tablename__ = "message"
    __table_args__ = (
        # History pages (before/after a cursor), the last message and unread counts.
        Index("ix_message_chat_id_id", "chat_id", "id"),
        # The catch-up cursor: one number per message, in commit order within its chat;
        # also the last message (at the chat's last_seq) and unread counts (a seq range,
        # counted from the index alone on PostgreSQL: it carries what the count filters on).
        Index(
            "uq_message_chat_id_seq",
            "chat_id",
            "seq",
            unique=True,
            postgresql_include=["sender_id", "deleted_at"],
        ),
        # message:send retried with the same client id answers the stored message.
        Index("uq_message_client_id", "chat_id", "sender_id", "client_id", unique=True),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_uuid7)
    chat_id: Mapped[UUID] = mapped_column(ForeignKey("chat.id", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sender_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    type: Mapped[str] = mapped_column(String(10), nullable=False)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    attachment_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("message_attachment.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=_now
    )
    edited_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    # The message of the same chat this one quotes (its preview is shown above the text).
    reply_to_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("message.id", ondelete="SET NULL"), nullable=True
    )
    # Who wrote the original of a forwarded message (kept through forwards of forwards).
    forwarded_from_user_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )


class MessageLike(UUIDv7Base):
    __tablename__ = "message_like"
    __table_args__ = (Index("uq_message_like_message_user", "message_id", "user_id", unique=True),)

    message_id: Mapped[UUID] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=_now
    )


class ChatInvitation(UUIDv7Base):
    """A pending invitation into a group, for a user whose ``group_adds`` setting does not
    let the inviter add them directly. Accepting makes them a member; declining (or joining
    by any other way, or the group's deletion) removes it."""

    __tablename__ = "chat_invitation"
    __table_args__ = (
        Index("uq_chat_invitation_chat_invitee", "chat_id", "invitee_id", unique=True),
        # "My pending invitations".
        Index("ix_chat_invitation_invitee_id", "invitee_id"),
    )

    chat_id: Mapped[UUID] = mapped_column(ForeignKey("chat.id", ondelete="CASCADE"), nullable=False)
    invitee_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False
    )
    inviter_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=_now
    )
