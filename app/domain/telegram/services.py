"""Binding accounts to Telegram chats, and the debounced notifier the messenger calls.

Binding: the website asks for a deep link; its token is random, single-use and expires, and
only its SHA-256 is kept (in Redis, with the expiry as TTL), so a leaked Redis dump cannot
bind anyone's account. The bot's ``/start <token>`` consumes it with GETDEL, so two chats
racing with one token cannot both win.

Notifications: every new message for an offline member increments a per (user, chat)
counter in Redis; the call that opens a batch (counter back at 1) schedules one worker job a
few seconds later under a key deterministic for that batch. A burst of 20 messages thus
gives one job, and the job sends one Telegram message with the count.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from dataclasses import dataclass
from uuid import UUID

import structlog
from redis.asyncio import Redis
from saq.queue.base import Queue
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.messenger.events import PREVIEW_LENGTH, message_preview, shorten_preview
from app.domain.messenger.models import ChatMember, Message, MessageAttachment
from app.domain.telegram.models import TelegramBinding
from app.lib.notifications import OfflineNotice
from app.lib.redis import as_text
from app.lib.tokens import hash_token

logger = structlog.get_logger("app.telegram")

# Telegram allows A-Z, a-z, 0-9, _ and - in a start parameter, at most 64 characters.
LINK_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
LINK_KEY = "telegram:link:"  # + sha256(token) -> user id
USER_LINK_KEY = "telegram:link-of:"  # + user id -> sha256 of that user's live token

PENDING_KEY = "telegram:notify:pending:{user}:{chat}"
INFLIGHT_KEY = "telegram:notify:inflight:{user}:{chat}:{batch}"
BATCH_SEQUENCE_KEY = "telegram:notify:batch:{user}:{chat}"
# A batch whose job never ran (worker down) is forgotten after this, so the next message
# opens a new batch instead of piling onto one that nobody will send.
PENDING_TTL_SECONDS = 3600
NOTIFY_TASK = "send_message_notification"
NOTIFY_JOB_TIMEOUT_SECONDS = 300
NOTIFY_JOB_RETRIES = 4
NOTIFY_JOB_RETRY_MAX_SECONDS = 600.0


class InvalidLinkTokenError(Exception):
    """The token is malformed, unknown, expired or already used (they look the same)."""


@dataclass(frozen=True)
class DeepLink:
    url: str
    expires_in: int


class TelegramService:
    """Creates binding links and binds, unbinds and looks up users' Telegram chats."""

    def __init__(self, session: AsyncSession, redis: Redis, settings: Settings) -> None:
        self.session = session
        self.redis = redis
        self.settings = settings

    async def create_link(self, user_id: UUID) -> DeepLink:
        """A fresh deep link ``https://t.me/<bot>?start=<token>``; the user's previous,
        unused link stops working so that only the newest one can bind."""
        token = secrets.token_urlsafe(24)
        digest = hash_token(token)
        ttl = self.settings.telegram_link_ttl_seconds
        previous = await self.redis.set(USER_LINK_KEY + str(user_id), digest, ex=ttl, get=True)
        async with self.redis.pipeline(transaction=True) as pipe:
            if isinstance(previous, bytes | str) and previous:
                pipe.delete(LINK_KEY + as_text(previous))
            pipe.set(LINK_KEY + digest, str(user_id), ex=ttl)
            await pipe.execute()
        url = f"https://t.me/{self.settings.telegram_bot_username}?start={token}"
        return DeepLink(url=url, expires_in=ttl)

    async def bind(self, token: str, telegram_chat_id: int) -> UUID:
        """Consume the token and bind its user to the chat; returns the user id.

        A chat bound to another account moves to this one, and a user bound to another
        chat moves to this chat: one row per user, one per chat.
        """
        if not LINK_TOKEN_PATTERN.match(token):
            raise InvalidLinkTokenError(token)
        owner = await self.redis.getdel(LINK_KEY + hash_token(token))
        if owner is None:
            raise InvalidLinkTokenError(token)
        user_id = UUID(as_text(owner))
        await self.redis.delete(USER_LINK_KEY + str(user_id))
        await self.session.execute(
            delete(TelegramBinding).where(
                or_(
                    TelegramBinding.user_id == user_id,
                    TelegramBinding.telegram_chat_id == telegram_chat_id,
                )
            )
        )
        self.session.add(TelegramBinding(user_id=user_id, telegram_chat_id=telegram_chat_id))
        await self.session.commit()
        logger.info("telegram_bound", user_id=str(user_id))
        return user_id

    async def unbind(self, user_id: UUID) -> bool:
        """Stop notifications for the user; True when a binding existed."""
        result = await self.session.execute(
            delete(TelegramBinding).where(TelegramBinding.user_id == user_id)
        )
        await self.session.commit()
        return bool(getattr(result, "rowcount", 0))

    async def unbind_chat(self, telegram_chat_id: int) -> bool:
        """The bot's ``/stop``: forget whichever account this chat was bound to."""
        result = await self.session.execute(
            delete(TelegramBinding).where(TelegramBinding.telegram_chat_id == telegram_chat_id)
        )
        await self.session.commit()
        return bool(getattr(result, "rowcount", 0))

    async def get_binding(self, user_id: UUID) -> TelegramBinding | None:
        return await self.session.get(TelegramBinding, user_id)

    async def still_unread(
        self, recipient_id: UUID, chat_id: UUID, message_ids: list[UUID]
    ) -> dict[str, str] | None:
        """The batch as it stands now: of ``message_ids``, those not deleted and not yet
        read by the recipient (who must still be a member), summed up the way
        :func:`compose_notification` reads it; None when nothing is left to tell."""
        read_message = (
            select(Message.seq)
            .where(Message.id == ChatMember.last_read_message_id)
            .scalar_subquery()
        )
        read_seq = await self.session.scalar(
            select(func.coalesce(read_message, 0)).where(
                ChatMember.chat_id == chat_id, ChatMember.user_id == recipient_id
            )
        )
        if read_seq is None:  # no longer a member
            return None
        rows = (
            await self.session.execute(
                select(Message, User.name, MessageAttachment)
                .outerjoin(User, User.id == Message.sender_id)
                .outerjoin(MessageAttachment, MessageAttachment.id == Message.attachment_id)
                .where(
                    Message.chat_id == chat_id,
                    Message.id.in_(message_ids),
                    Message.deleted_at.is_(None),
                    Message.seq > read_seq,
                )
                .order_by(Message.seq)
            )
        ).all()
        if not rows:
            return None
        latest, sender, attachment = rows[-1]
        summary = {
            "count": str(len(rows)),
            "sender": sender or "Deleted account",
            "preview": message_preview(latest, attachment),
        }
        summary.update({f"from:{name or 'Deleted account'}": "1" for _, name, _ in rows})
        return summary

    async def chat_id_for(self, user_id: UUID) -> int | None:
        return await self.session.scalar(
            select(TelegramBinding.telegram_chat_id).where(TelegramBinding.user_id == user_id)
        )


class TelegramNotifier:
    """The messenger's :class:`~app.lib.notifications.MessageNotifier` for Telegram.

    Cheap on the request path (one Redis round trip, plus one enqueue per batch); whether the
    user is bound is checked by the job, once per batch, not once per message.
    """

    def __init__(self, redis: Redis, queue: Queue, settings: Settings) -> None:
        self.redis = redis
        self.queue = queue
        self.settings = settings

    async def notify_new_message(self, notice: OfflineNotice) -> None:
        recipient_id, chat_id, sender_name = notice.recipient_id, notice.chat_id, notice.sender_name
        message_id = notice.message_id
        names = {"user": recipient_id, "chat": chat_id}
        pending = PENDING_KEY.format(**names)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(pending, "count", 1)
            pipe.hset(
                pending,
                mapping={
                    "chat_title": notice.chat_title,
                    "sender": sender_name,
                    "preview": notice.text_preview[: PREVIEW_LENGTH * 2],
                    f"from:{sender_name}": 1,
                    "direct": int(notice.direct),
                    # The job re-reads these at send time (deleted? read?), so what it
                    # sends is what still holds.
                    **({f"msg:{message_id}": 1} if message_id else {}),
                },
            )
            pipe.expire(pending, PENDING_TTL_SECONDS)
            count = (await pipe.execute())[0]
        if int(count) != 1:
            return  # a job for this batch is already scheduled
        batch = int(await self.redis.incr(BATCH_SEQUENCE_KEY.format(**names)))
        try:
            await self.queue.enqueue(
                NOTIFY_TASK,
                key=f"telegram-notify:{recipient_id}:{chat_id}:{batch}",
                scheduled=math.ceil(time.time() + self.settings.telegram_notify_delay_seconds),
                timeout=NOTIFY_JOB_TIMEOUT_SECONDS,
                # Touched by the worker while it runs: a killed worker's job is retried
                # within seconds rather than when the timeout runs out (app/lib/worker.py).
                heartbeat=self.settings.worker_heartbeat_seconds,
                retries=NOTIFY_JOB_RETRIES,
                retry_delay=self.settings.telegram_job_retry_delay_seconds,
                retry_backoff=NOTIFY_JOB_RETRY_MAX_SECONDS,
                recipient_id=str(recipient_id),
                chat_id=str(chat_id),
                batch=batch,
            )
        except Exception:
            # Without a job nobody would ever send this batch: drop it so the next message
            # opens a new one instead of adding to a dead counter.
            await self.redis.delete(pending)
            raise


def compose_notification(summary: dict[str, str]) -> str:
    """The Telegram text for a batch: "3 new messages from Ann in Team: <latest text>", or
    "3 new messages from Ann: <latest text>" in a direct chat (titled with Ann anyway)."""
    count = int(summary.get("count", "1"))
    sender = summary.get("sender", "someone")
    others = sum(1 for key in summary if key.startswith("from:") and key != f"from:{sender}")
    who = sender if not others else f"{sender} and {others} other{'s' if others > 1 else ''}"
    head = "New message" if count == 1 else f"{count} new messages"
    preview = shorten_preview(" ".join(summary.get("preview", "").split()))
    text = f"{head} from {who}"
    if summary.get("direct") != "1":
        text += f" in {summary.get('chat_title', 'a chat')}"
    return f"{text}: {preview}" if preview else text
