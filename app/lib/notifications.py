"""The seam between the messenger and whatever tells offline users about new messages.

The messenger calls :meth:`MessageNotifier.notify_new_message` with a :class:`OfflineNotice` once per recipient who is
offline, not the sender and has not muted the chat (with the message's id, so that what is
finally sent can be checked against what still holds: deleted, read, the user back online); the Telegram domain provides the real
implementation (debounced, through the worker). :class:`LoggingNotifier` only logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import structlog

logger = structlog.get_logger("app.notifications")


@dataclass(frozen=True, slots=True)
class OfflineNotice:
    """A new message as told to one offline recipient (the preview already shortened)."""

    recipient_id: UUID
    chat_id: UUID
    chat_title: str
    sender_name: str
    text_preview: str
    message_id: UUID | None = None
    direct: bool = False


class MessageNotifier(Protocol):
    async def notify_new_message(self, notice: OfflineNotice) -> None: ...


class LoggingNotifier:
    async def notify_new_message(self, notice: OfflineNotice) -> None:
        logger.info(
            "offline_notification",
            recipient_id=str(notice.recipient_id),
            chat_id=str(notice.chat_id),
            chat_title=notice.chat_title,
            sender=notice.sender_name,
            # Never the message text itself in the logs.
            preview_chars=len(notice.text_preview),
            message_id=str(notice.message_id) if notice.message_id else None,
        )
