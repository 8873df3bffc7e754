"""What the messenger tells connected clients (Socket.IO) and offline users (the notifier).

Services call these only after their transaction is committed, so a client never hears
of a message that could still be rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import msgspec
import structlog
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncEngine

from app.lib.announcer import Announcer
from app.lib.notifications import MessageNotifier, OfflineNotice
from app.lib.realtime import Realtime

if TYPE_CHECKING:
    from app.domain.messenger.models import Message, MessageAttachment

logger = structlog.get_logger("app.messenger.events")

PREVIEW_LENGTH = 120
Announcement = Callable[[], Awaitable[None]]


def shorten_preview(text: str) -> str:
    """A message's text cut to ``PREVIEW_LENGTH`` characters (notifications, quotes)."""
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


def message_preview(message: Message, attachment: MessageAttachment | None) -> str:
    """A message as one line of text: its text, after ``[photo]`` or ``[file: name]`` when
    it carries an attachment (notifications, quotes, Telegram)."""
    if attachment is None:
        return message.text or ""
    label = "[photo]" if attachment.kind == "image" else f"[file: {attachment.name}]"
    return f"{label} {message.text}" if message.text else label


def to_json(value: Any) -> Any:
    """msgspec Structs as plain JSON-ready data (UUIDs and datetimes as strings)."""
    return msgspec.to_builtins(value)


class MessengerEvents:
    def __init__(self, state: State) -> None:
        self.state = state

    @property
    def realtime(self) -> Realtime:
        return cast("Realtime", self.state.realtime)

    @property
    def notifier(self) -> MessageNotifier:
        return cast("MessageNotifier", self.state.notifier)

    @property
    def engine(self) -> AsyncEngine:
        return cast("AsyncEngine", self.state.db_config.get_engine())

    async def announce(self, chat_id: UUID | None, actions: list[Announcement]) -> None:
        """Run a commit's announcements in order, off the request path: after those of
        earlier commits of the same chat (see :class:`app.lib.announcer.Announcer`)."""

        async def announce_all() -> None:
            for action in actions:
                try:
                    await action()
                except Exception:
                    # Committed already: one failed announcement must not stop the others.
                    logger.exception("announce_failed", chat_id=str(chat_id))

        announcer: Announcer | None = self.state.get("announcer")
        if announcer is None:
            await announce_all()
        else:
            # Committed already: the members hear it late under overload, never not at all
            # (a send that would overflow the queue is refused before it is stored instead).
            await announcer.submit(chat_id or "", announce_all, name="messenger", may_drop=False)

    def has_room(self, chat_id: UUID) -> bool:
        """Whether this chat's announcements are keeping up: a send is refused (503) rather
        than stored with an announcement that would wait behind a full queue."""
        announcer: Announcer | None = self.state.get("announcer")
        return announcer is None or announcer.has_room(chat_id)

    async def emit(
        self, event: str, payload: Any, user_ids: Iterable[UUID], *, skip_sid: str | None = None
    ) -> None:
        try:
            await self.realtime.emit_to_users(event, to_json(payload), user_ids, skip_sid=skip_sid)
        except Exception:
            # The write is committed; a fan-out hiccup must not turn it into an error.
            logger.exception("emit_failed", socket_event=event)

    async def online(self, user_ids: Iterable[UUID]) -> set[UUID]:
        """Who of ``user_ids`` is online: those connected to this process without asking
        Redis, the others from the presence sets of every replica."""
        candidates = list(user_ids)
        here = self.realtime.connected_here(candidates)
        elsewhere = [user_id for user_id in candidates if user_id not in here]
        if not elsewhere:
            return here
        return here | await self.realtime.presence.online(elsewhere)

    async def notify_offline(
        self,
        *,
        recipients: Iterable[UUID],
        chat_id: UUID,
        chat_title: str,
        sender_name: str,
        text: str,
        message_id: UUID | None = None,
        direct: bool = False,
    ) -> None:
        """Tell each recipient who has no live connection (the caller has already left out
        the sender and those who muted the chat)."""
        candidates = list(recipients)
        if not candidates:
            return
        try:
            online = await self.online(candidates)
        except Exception:
            logger.exception("presence_lookup_failed")
            return
        preview = shorten_preview(text)
        for recipient_id in candidates:
            if recipient_id in online:
                continue
            try:
                notice = OfflineNotice(
                    recipient_id=recipient_id,
                    chat_id=chat_id,
                    chat_title=chat_title,
                    sender_name=sender_name,
                    text_preview=preview,
                    message_id=message_id,
                    direct=direct,
                )
                await self.notifier.notify_new_message(notice)
            except Exception:
                logger.exception("notify_failed", recipient_id=str(recipient_id))
