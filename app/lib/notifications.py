"""The seam between the messenger and whatever tells offline users about new messages.

The messenger calls :meth:`MessageNotifier.notify_new_message` once per recipient who is
offline, not the sender and has not muted the chat (with the message's id, so that what is
finally sent can be checked against what still holds: deleted, read, the user back online); the Telegram domain provides the real
implementation (debounced, through the worker). :class:`LoggingNotifier` only logs.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

import structlog

logger = structlog.get_logger("app.notifications")


class MessageNotifier(Protocol):
    async def notify_new_message(
        self,
        *,
        recipient_id: UUID,
        chat_id: UUID,
        chat_title: str,
        sender_name: str,
        text_preview: str,
        message_id: UUID | None = None,
        direct: bool = False,
    ) -> None: ...


class LoggingNotifier:
    async def notify_new_message(
        self,
        *,
        recipient_id: UUID,
        chat_id: UUID,
        chat_title: str,
        sender_name: str,
        text_preview: str,
        message_id: UUID | None = None,
        direct: bool = False,  # noqa: ARG002 - the Notifier signature; the log has no use for it
    ) -> None:
        logger.info(
            "offline_notification",
            recipient_id=str(recipient_id),
            chat_id=str(chat_id),
            chat_title=chat_title,
            sender=sender_name,
            # Never the message text itself in the logs.
            preview_chars=len(text_preview),
            message_id=str(message_id) if message_id else None,
        )
