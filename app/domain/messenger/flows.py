"""Flows around the messenger's writes: rate limits, the per-chat sequence, and after the
commit the Socket.IO events and offline notifications (Dispatch's ``flows.py``).

Writes commit first and announce afterwards (see :mod:`app.domain.messenger.events`), so a
client never hears of a message that could still be rolled back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Self, TypeVar
from uuid import UUID

import msgspec
import structlog
from redis.exceptions import RedisError
from sqlalchemy import update

from app.domain.messenger.models import Chat, Message
from app.domain.messenger.views import CHAT_NOT_FOUND, ChatViews, _now
from app.lib.db import read_session
from app.lib.errors import NotFoundError
from app.lib.ratelimit import RateLimiter

logger = structlog.get_logger("app.messenger")
_Result = TypeVar("_Result")
# A process takes 1/RESERVED_SHARE of a per-minute limit from Redis at a time (see RateLimiter).
RESERVED_SHARE = 50


class MessengerFlows(ChatViews):
    """What happens around a write: the per-user rate limits before it, the chat's next
    ``seq`` inside its transaction, and after the commit the events to the members
    (computed once for all of them) and the notifications to those offline.

    One owner of the transaction: the services flush and queue what to announce; the
    request's handler (a controller, a Socket.IO handler) calls :meth:`commit`, which
    commits and only then hands the announcements to the announcer (off the request path,
    in the chat's order). A write that fails is never announced.
    """

    # The chat this transaction's announcements are about: they are announced in its order.
    announce_key: UUID | None = None

    def _after_commit(
        self, action: Callable[[], Awaitable[None]], *, chat_id: UUID | None = None
    ) -> None:
        self.outbox.append(action)
        if chat_id is not None:
            self.announce_key = chat_id

    async def commit(self) -> None:
        """Commit, then hand the announcements to the process's announcer: they run off the
        request path, after those of earlier commits of the same chat, and this request's
        connection is back in the pool as soon as the commit is done."""
        session = self.session
        # A one-statement send used no session: nothing to commit, no round trip.
        if session.in_transaction() or session.new or session.dirty or session.deleted:
            await session.commit()
        announcements, self.outbox = self.outbox, []
        key, self.announce_key = self.announce_key, None
        if announcements:
            await self.events.announce(key, announcements)

    async def committed(self, write: Awaitable[_Result]) -> _Result:
        """The write's result once it is committed (and announced, see :meth:`commit`)."""
        result = await write
        await self.commit()
        return result

    async def _limit(self, name: str, user_id: UUID, per_minute: int) -> None:
        """Count one ``name`` action of the user; 429 past the limit. With Redis down the
        limit is not enforced (logged): messages still go through while the database is
        up, as they did before limits existed. The process reserves a fiftieth of the limit
        at a time, so a message costs a Redis round trip only once in a dozen (at 600)."""
        redis = getattr(self.events.state, "redis", None)
        if redis is None or per_minute <= 0:
            return
        try:
            limiter = RateLimiter(
                redis, f"messenger-{name}", per_minute, 60, reserve=per_minute // RESERVED_SHARE
            )
            await limiter.hit(str(user_id))
        except (RedisError, OSError) as exc:
            logger.warning("rate_limit_unavailable", limit=name, error=type(exc).__name__)

    async def _next_seq(self, chat: Chat, at: datetime) -> int:
        """The chat's next message number. The UPDATE locks the chat's row until this
        transaction ends, so writers of one chat commit in the order of their numbers."""
        seq = await self.session.scalar(
            update(Chat)
            .where(Chat.id == chat.id)
            .values(last_seq=Chat.last_seq + 1, last_activity_at=at)
            .returning(Chat.last_seq)
        )
        if seq is None:
            raise NotFoundError(CHAT_NOT_FOUND)
        chat.last_activity_at = at
        self.announce_key = chat.id
        return int(seq)

    # --- membership -----------------------------------------------------------------------

    async def _system_message(self, chat: Chat, text: str) -> Message:
        now = _now()
        seq = await self._next_seq(chat, now)
        message = Message(
            chat_id=chat.id, seq=seq, sender_id=None, type="system", text=text, created_at=now
        )
        self.session.add(message)
        return message

    async def _announce_system(self, message: Message, recipients: Iterable[UUID]) -> None:
        await self.events.emit("message:new", self._message_view(message, None), recipients)

    @asynccontextmanager
    async def _own_reads(self) -> AsyncIterator[Self]:
        """This service over a short autocommit session of its own, for the queries of an
        announcement: it runs in the announcer, after the request (and its session) ended,
        and never holds a connection while it emits."""
        async with read_session(self.events.engine) as session:
            yield dataclasses.replace(self, session=session, outbox=[])

    async def _emit_chat(self, event: str, chat_id: UUID, user_ids: Iterable[UUID]) -> None:
        """Each recipient's view of the chat, for a group of 500 in a handful of queries:
        the shared part (chat, members, last message) once, then the per-viewer fields
        (pin, mute, unread count, a direct chat's title, liked by me) in one query each.

        It runs after the commit (in the announcer): the queries go through a short
        autocommit session of its own, closed before the emits. Members whose views are
        the same (most of a big group: same unread count, nothing pinned) get one emit
        together, so 500 members cost a few emits rather than 500 (of ~75 KB each)."""
        async with self._own_reads() as reads:
            views = await reads.chat_views_for(chat_id, user_ids)
        alike: dict[bytes, list[UUID]] = {}
        for user_id, view in views.items():
            alike.setdefault(msgspec.json.encode(view), []).append(user_id)
        for encoded, recipients in alike.items():
            await self.events.emit(event, msgspec.json.decode(encoded), recipients)
