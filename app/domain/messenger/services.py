"""The messenger's rules and queries: chats, membership, messages, likes, read markers.

Every method takes the acting user and answers 404 for a chat (or a message, or an
attachment) the user is not a member of, so non-members cannot even learn it exists. Writes
commit first and announce afterwards (see :mod:`app.domain.messenger.events`).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.accounts.services import AccountService
from app.domain.messenger.events import MessengerEvents
from app.domain.messenger.models import (
    DIRECT,
    GROUP,
    MEMBER,
    OWNER,
    Chat,
    ChatMember,
    Message,
    MessageAttachment,
    MessageLike,
)
from app.domain.messenger.schemas import (
    AttachmentOut,
    AttachmentUpload,
    ChatOut,
    LikeOut,
    MemberOut,
    MessageOut,
    MessagePage,
    NewMessage,
    ReadOut,
)
from app.lib.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from app.lib.images import check_image_async, decode_base64_payload, preview_async
from app.lib.ratelimit import RateLimiter
from app.lib.storage import Blob, BlobStore

PREVIEW_SIDE = 320
MAX_GROUP_MEMBERS = 500
CHAT_NOT_FOUND = "No such chat."
MESSAGE_NOT_FOUND = "No such message."


def _now() -> datetime:
    return datetime.now(UTC)


def direct_key(a: UUID, b: UUID) -> str:
    low, high = sorted((str(a), str(b)))
    return f"{low}:{high}"


_LEADING_BLANK_LINES = re.compile(r"^(?:[ \t]*\r?\n)+")


def clean_text(text: str, *, what: str = "The text") -> str:
    """A message's text as stored: NUL characters refused (PostgreSQL cannot store them),
    blank refused, trailing whitespace and leading blank lines dropped, but the leading
    spaces of the first line kept (indented code)."""
    if "\x00" in text:
        raise InvalidInputError(f"{what} must not contain NUL characters.")
    cleaned = _LEADING_BLANK_LINES.sub("", text.rstrip())
    if not cleaned.strip():
        raise InvalidInputError(f"{what} must not be blank.")
    return cleaned


def clean_title(title: str) -> str:
    if "\x00" in title:
        raise InvalidInputError("The title must not contain NUL characters.")
    if not title.strip():
        raise InvalidInputError("The title must not be blank.")
    return title.strip()


Cursor = UUID | int


@dataclass
class MessengerService:
    session: AsyncSession
    settings: Settings
    events: MessengerEvents

    @property
    def accounts(self) -> AccountService:
        return AccountService(self.session, self.settings)

    # --- rate limits (per user, shared by every replica) ---------------------------------------

    async def _limit(self, name: str, user_id: UUID, per_minute: int) -> None:
        redis = getattr(self.events.state, "redis", None)
        if redis is None or per_minute <= 0:
            return
        await RateLimiter(redis, f"messenger-{name}", per_minute, 60).hit(str(user_id))

    async def typing(self, user: User, chat_id: UUID) -> None:
        """Counts a typing notice against the user's limit (the caller relays it)."""
        await self._limit("typing", user.id, self.settings.typing_events_per_minute)

    # --- the per-chat sequence ------------------------------------------------------------

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
        return int(seq)

    # --- membership -----------------------------------------------------------------------

    async def _membership(self, chat_id: UUID, user_id: UUID) -> tuple[Chat, ChatMember]:
        row = (
            await self.session.execute(
                select(Chat, ChatMember)
                .join(ChatMember, ChatMember.chat_id == Chat.id)
                .where(Chat.id == chat_id, ChatMember.user_id == user_id)
            )
        ).first()
        if row is None:
            raise NotFoundError(CHAT_NOT_FOUND)
        return row[0], row[1]

    async def member_ids(self, chat_id: UUID) -> list[UUID]:
        return list(
            await self.session.scalars(
                select(ChatMember.user_id).where(ChatMember.chat_id == chat_id)
            )
        )

    async def is_member(self, chat_id: UUID, user_id: UUID) -> bool:
        found = await self.session.scalar(
            select(ChatMember.id).where(
                ChatMember.chat_id == chat_id, ChatMember.user_id == user_id
            )
        )
        return found is not None

    async def contacts_of(self, user_id: UUID) -> list[UUID]:
        """Everyone who shares a chat with the user (for presence announcements)."""
        mine = select(ChatMember.chat_id).where(ChatMember.user_id == user_id)
        rows = await self.session.scalars(
            select(ChatMember.user_id)
            .where(ChatMember.chat_id.in_(mine), ChatMember.user_id != user_id)
            .distinct()
        )
        return list(rows)

    # --- views ------------------------------------------------------------------------------

    async def message_views(self, messages: Sequence[Message], viewer_id: UUID) -> list[MessageOut]:
        if not messages:
            return []
        ids = [message.id for message in messages]
        attachment_ids = [m.attachment_id for m in messages if m.attachment_id is not None]
        attachments: dict[UUID, MessageAttachment] = {}
        if attachment_ids:
            attachments = {
                a.id: a
                for a in await self.session.scalars(
                    select(MessageAttachment).where(MessageAttachment.id.in_(attachment_ids))
                )
            }
        counts = dict(
            (
                await self.session.execute(
                    select(MessageLike.message_id, func.count())
                    .where(MessageLike.message_id.in_(ids))
                    .group_by(MessageLike.message_id)
                )
            ).all()
        )
        mine = set(
            await self.session.scalars(
                select(MessageLike.message_id).where(
                    MessageLike.message_id.in_(ids), MessageLike.user_id == viewer_id
                )
            )
        )
        return [
            self._message_view(
                m,
                attachments.get(m.attachment_id) if m.attachment_id else None,
                likes=int(counts.get(m.id, 0)),
                liked_by_me=m.id in mine,
            )
            for m in messages
        ]

    @staticmethod
    def _message_view(
        message: Message,
        attachment: MessageAttachment | None,
        *,
        likes: int = 0,
        liked_by_me: bool = False,
    ) -> MessageOut:
        deleted = message.deleted_at is not None
        return MessageOut(
            id=message.id,
            chat_id=message.chat_id,
            sender_id=message.sender_id,
            type=message.type,
            text=None if deleted else message.text,
            attachment=None if deleted or attachment is None else _attachment_view(attachment),
            likes=0 if deleted else likes,
            liked_by_me=False if deleted else liked_by_me,
            created_at=message.created_at,
            edited_at=message.edited_at,
            deleted=deleted,
            seq=message.seq,
            client_id=message.client_id,
        )

    async def chat_views(self, chat_ids: Sequence[UUID] | None, viewer_id: UUID) -> list[ChatOut]:
        """Views of the viewer's chats (all of them when ``chat_ids`` is None), in the chat
        list's order: pinned first (most recently pinned first), then by last activity.

        Every query is scoped by a membership subquery rather than a list of ids, so the
        database joins instead of the driver expanding hundreds of parameters per query.
        """
        scope = select(ChatMember.chat_id).where(ChatMember.user_id == viewer_id)
        if chat_ids is not None:
            scope = scope.where(ChatMember.chat_id.in_(chat_ids))
        rows = (
            await self.session.execute(
                select(Chat, ChatMember)
                .join(ChatMember, ChatMember.chat_id == Chat.id)
                .where(ChatMember.user_id == viewer_id, Chat.id.in_(scope))
            )
        ).all()
        if not rows:
            return []

        latest = (
            select(Message.id)
            .where(Message.chat_id == Chat.id)
            .order_by(Message.seq.desc())
            .limit(1)
            .correlate(Chat)
            .scalar_subquery()
        )
        last_messages = (
            await self.session.scalars(
                select(Message).where(
                    Message.id.in_(select(latest).where(Chat.id.in_(scope)).scalar_subquery())
                )
            )
        ).all()
        last_views = {v.chat_id: v for v in await self.message_views(last_messages, viewer_id)}

        unread = dict(
            (
                await self.session.execute(
                    select(Message.chat_id, func.count())
                    .join(
                        ChatMember,
                        and_(
                            ChatMember.chat_id == Message.chat_id, ChatMember.user_id == viewer_id
                        ),
                    )
                    .where(
                        Message.chat_id.in_(scope),
                        Message.seq > _read_seq(ChatMember.last_read_message_id),
                        # Unread means what others wrote: not mine, not system notices.
                        Message.sender_id != viewer_id,
                        Message.deleted_at.is_(None),
                    )
                    .group_by(Message.chat_id)
                )
            ).all()
        )

        members = (
            await self.session.execute(
                select(ChatMember.chat_id, ChatMember.user_id, ChatMember.role).where(
                    ChatMember.chat_id.in_(scope)
                )
            )
        ).all()
        users = await self.accounts.member_cards(
            select(ChatMember.user_id).where(ChatMember.chat_id.in_(scope))
        )
        online = await self.events.online(users)
        by_chat: dict[UUID, list[MemberOut]] = {}
        for chat_id, user_id, role in members:
            card = users.get(user_id)
            if card is None:
                continue
            by_chat.setdefault(chat_id, []).append(
                MemberOut(
                    id=card.id,
                    name=card.name,
                    username=card.username,
                    role=role,
                    online=card.id in online,
                    avatar_url=card.avatar_url,
                )
            )

        views = []
        for chat, membership in rows:
            chat_members = by_chat.get(chat.id, [])
            views.append(
                ChatOut(
                    id=chat.id,
                    type=chat.type,
                    title=_title(chat, chat_members, viewer_id),
                    owner_id=chat.owner_id,
                    created_at=chat.created_at,
                    last_activity_at=chat.last_activity_at,
                    pinned=membership.pinned_at is not None,
                    pinned_at=membership.pinned_at,
                    muted=membership.muted,
                    unread_count=int(unread.get(chat.id, 0)),
                    last_message=last_views.get(chat.id),
                    members=sorted(chat_members, key=lambda m: (m.role != OWNER, m.name)),
                )
            )
        views.sort(key=_chat_order)
        return views

    async def list_chats(self, viewer_id: UUID) -> list[ChatOut]:
        return await self.chat_views(None, viewer_id)

    async def chat_view(self, chat_id: UUID, viewer_id: UUID) -> ChatOut:
        views = await self.chat_views([chat_id], viewer_id)
        if not views:
            raise NotFoundError(CHAT_NOT_FOUND)
        return views[0]

    async def _emit_chat(self, event: str, chat_id: UUID, user_ids: Iterable[UUID]) -> None:
        """Each recipient's view of the chat, for a group of 500 in a handful of queries:
        the shared part (chat, members, last message) once, then the per-viewer fields
        (pin, mute, unread count, a direct chat's title, liked by me) in one query each."""
        for user_id, view in (await self.chat_views_for(chat_id, user_ids)).items():
            await self.events.emit(event, view, [user_id])

    async def chat_views_for(self, chat_id: UUID, user_ids: Iterable[UUID]) -> dict[UUID, ChatOut]:
        recipients = list(dict.fromkeys(user_ids))
        memberships = {
            row.user_id: row
            for row in (
                await self.session.execute(
                    select(ChatMember.user_id, ChatMember.pinned_at, ChatMember.muted).where(
                        ChatMember.chat_id == chat_id
                    )
                )
            ).all()
        }
        recipients = [r for r in recipients if r in memberships]
        if not recipients:
            return {}
        base_views = await self.chat_views([chat_id], recipients[0])
        if not base_views:
            return {}
        base = base_views[0]
        unread = dict(
            (
                await self.session.execute(
                    select(ChatMember.user_id, func.count(Message.id))
                    .join(Message, Message.chat_id == ChatMember.chat_id)
                    .where(
                        ChatMember.chat_id == chat_id,
                        Message.seq > _read_seq(ChatMember.last_read_message_id),
                        Message.sender_id != ChatMember.user_id,
                        Message.deleted_at.is_(None),
                    )
                    .group_by(ChatMember.user_id)
                )
            ).all()
        )
        likers: set[UUID] = set()
        if base.last_message is not None:
            likers = set(
                await self.session.scalars(
                    select(MessageLike.user_id).where(
                        MessageLike.message_id == base.last_message.id
                    )
                )
            )
        views: dict[UUID, ChatOut] = {}
        for user_id in recipients:
            membership = memberships[user_id]
            last = base.last_message
            if last is not None and not last.deleted:
                last = msgspec.structs.replace(last, liked_by_me=user_id in likers)
            views[user_id] = msgspec.structs.replace(
                base,
                title=_view_title(base, user_id),
                pinned=membership.pinned_at is not None,
                pinned_at=membership.pinned_at,
                muted=membership.muted,
                unread_count=int(unread.get(user_id, 0)),
                last_message=last,
            )
        return views

    # --- creating and managing chats ----------------------------------------------------------

    async def create_direct_chat(self, user: User, other_id: UUID) -> tuple[ChatOut, bool]:
        """The direct chat of the two users; ``created`` is False when it already existed."""
        if other_id == user.id:
            raise InvalidInputError("A direct chat needs another user.")
        await self._limit("chats", user.id, self.settings.chats_created_per_minute)
        key = direct_key(user.id, other_id)
        existing = await self.session.scalar(select(Chat.id).where(Chat.direct_key == key))
        if existing is not None:
            return await self.chat_view(existing, user.id), False
        if not await self.accounts.get_many([other_id]):
            raise InvalidInputError(
                "No such user.",
                errors=[{"field": "member_id", "source": "body", "message": "unknown user"}],
            )
        chat = Chat(type=DIRECT, direct_key=key)
        try:
            async with self.session.begin_nested():
                self.session.add(chat)
                await self.session.flush()
                self.session.add_all(
                    [
                        ChatMember(chat_id=chat.id, user_id=user.id, role=MEMBER),
                        ChatMember(chat_id=chat.id, user_id=other_id, role=MEMBER),
                    ]
                )
                await self.session.flush()
        except IntegrityError:
            # The other user opened the same chat at the same moment: theirs stands.
            existing = await self.session.scalar(select(Chat.id).where(Chat.direct_key == key))
            if existing is None:
                raise
            return await self.chat_view(existing, user.id), False
        await self.session.commit()
        await self._emit_chat("chat:new", chat.id, [user.id, other_id])
        return await self.chat_view(chat.id, user.id), True

    async def create_group_chat(
        self, user: User, title: str, member_ids: Iterable[UUID]
    ) -> ChatOut:
        others = [i for i in dict.fromkeys(member_ids) if i != user.id]
        if len(others) + 1 > MAX_GROUP_MEMBERS:
            raise InvalidInputError(f"A group has at most {MAX_GROUP_MEMBERS} members.")
        title = clean_title(title)
        await self._limit("chats", user.id, self.settings.chats_created_per_minute)
        users = await self._existing_users(others, field="member_ids")
        chat = Chat(type=GROUP, title=title, owner_id=user.id)
        self.session.add(chat)
        await self.session.flush()
        self.session.add(ChatMember(chat_id=chat.id, user_id=user.id, role=OWNER))
        self.session.add_all(ChatMember(chat_id=chat.id, user_id=u.id, role=MEMBER) for u in users)
        system = await self._system_message(chat, f"{user.name} created the group “{chat.title}”")
        await self.session.commit()
        recipients = [user.id, *(u.id for u in users)]
        await self._emit_chat("chat:new", chat.id, recipients)
        await self._announce_system(system, recipients)
        return await self.chat_view(chat.id, user.id)

    async def _existing_users(self, ids: list[UUID], *, field: str) -> list[User]:
        users = await self.accounts.get_many(ids)
        missing = [str(i) for i in ids if i not in users]
        if missing:
            raise InvalidInputError(
                "Unknown users: " + ", ".join(missing),
                errors=[{"field": field, "source": "body", "message": "unknown user"}],
            )
        return [users[i] for i in ids]

    async def _owned_group(self, chat_id: UUID, user: User) -> tuple[Chat, ChatMember]:
        chat, membership = await self._membership(chat_id, user.id)
        if chat.type != GROUP:
            raise ForbiddenError("Direct chats have no title or member management.")
        if chat.owner_id != user.id:
            raise ForbiddenError("Only the group's owner can do this.")
        return chat, membership

    async def rename_chat(self, user: User, chat_id: UUID, title: str) -> ChatOut:
        title = clean_title(title)
        chat, _ = await self._owned_group(chat_id, user)
        await self._limit("membership", user.id, self.settings.membership_changes_per_minute)
        chat.title = title
        system = await self._system_message(
            chat, f"{user.name} renamed the group to “{chat.title}”"
        )
        await self.session.commit()
        members = await self.member_ids(chat.id)
        await self._emit_chat("chat:updated", chat.id, members)
        await self._announce_system(system, members)
        return await self.chat_view(chat.id, user.id)

    async def add_members(self, user: User, chat_id: UUID, user_ids: Iterable[UUID]) -> ChatOut:
        chat, _ = await self._owned_group(chat_id, user)
        current = set(await self.member_ids(chat.id))
        wanted = [i for i in dict.fromkeys(user_ids) if i not in current]
        if len(current) + len(wanted) > MAX_GROUP_MEMBERS:
            raise InvalidInputError(f"A group has at most {MAX_GROUP_MEMBERS} members.")
        users = await self._existing_users(wanted, field="user_ids")
        if not users:
            return await self.chat_view(chat.id, user.id)
        await self._limit("membership", user.id, self.settings.membership_changes_per_minute)
        self.session.add_all(ChatMember(chat_id=chat.id, user_id=u.id, role=MEMBER) for u in users)
        names = ", ".join(u.name for u in users)
        system = await self._system_message(chat, f"{user.name} added {names}")
        await self.session.commit()
        await self._emit_chat("chat:new", chat.id, [u.id for u in users])
        await self._emit_chat("chat:updated", chat.id, current)
        await self._announce_system(system, [*current, *(u.id for u in users)])
        return await self.chat_view(chat.id, user.id)

    async def remove_member(self, user: User, chat_id: UUID, member_id: UUID) -> None:
        """The owner removes anyone; any member may remove themselves (leave). When the
        owner leaves, the longest-standing member becomes the owner."""
        chat, _ = await self._membership(chat_id, user.id)
        if chat.type != GROUP:
            raise ForbiddenError("Nobody can leave or be removed from a direct chat.")
        if member_id != user.id and chat.owner_id != user.id:
            raise ForbiddenError("Only the group's owner can remove other members.")
        target = await self.session.scalar(
            select(ChatMember).where(ChatMember.chat_id == chat.id, ChatMember.user_id == member_id)
        )
        if target is None:
            raise NotFoundError("This user is not a member of the chat.")
        await self._limit("membership", user.id, self.settings.membership_changes_per_minute)
        removed = (await self.accounts.get_many([member_id])).get(member_id)
        await self.session.delete(target)
        await self.session.flush()
        if member_id == chat.owner_id:
            heir = await self.session.scalar(
                select(ChatMember)
                .where(ChatMember.chat_id == chat.id)
                .order_by(ChatMember.joined_at, ChatMember.id)
                .limit(1)
            )
            chat.owner_id = heir.user_id if heir else None
            if heir is not None:
                heir.role = OWNER
        removed_name = removed.name if removed else "A member"
        text = (
            f"{removed_name} left the group"
            if member_id == user.id
            else f"{user.name} removed {removed_name}"
        )
        system = await self._system_message(chat, text)
        await self.session.commit()
        remaining = await self.member_ids(chat.id)
        await self.events.emit("chat:removed", {"id": str(chat.id)}, [member_id])
        await self._emit_chat("chat:updated", chat.id, remaining)
        await self._announce_system(system, remaining)

    async def set_pinned(self, user: User, chat_id: UUID, pinned: bool) -> ChatOut:
        _, membership = await self._membership(chat_id, user.id)
        if pinned and membership.pinned_at is None:
            membership.pinned_at = _now()
        elif not pinned:
            membership.pinned_at = None
        await self.session.commit()
        return await self.chat_view(chat_id, user.id)

    async def set_muted(self, user: User, chat_id: UUID, muted: bool) -> ChatOut:
        _, membership = await self._membership(chat_id, user.id)
        membership.muted = muted
        await self.session.commit()
        return await self.chat_view(chat_id, user.id)

    # --- messages ---------------------------------------------------------------------------

    async def history(
        self,
        user: User,
        chat_id: UUID,
        *,
        before: Cursor | None,
        after: Cursor | None,
        limit: int,
    ) -> MessagePage:
        """Newest first from ``before`` (or from the newest message); with ``after``, the
        messages that follow it, oldest first (catching up after a reconnect).

        A cursor is a message id or a ``seq``; either way the page is cut on ``seq``, the
        commit order, so a message that committed after the reader's page is never
        skipped, whatever its id."""
        await self._membership(chat_id, user.id)
        statement = select(Message).where(Message.chat_id == chat_id)
        if after is not None:
            statement = statement.where(
                Message.seq > await self._cursor_seq(chat_id, after)
            ).order_by(Message.seq.asc())
        else:
            if before is not None:
                statement = statement.where(Message.seq < await self._cursor_seq(chat_id, before))
            statement = statement.order_by(Message.seq.desc())
        messages = list((await self.session.scalars(statement.limit(limit + 1))).all())
        more = len(messages) > limit
        messages = messages[:limit]
        return MessagePage(
            items=await self.message_views(messages, user.id),
            next_cursor=messages[-1].id if more and messages else None,
            next_seq=messages[-1].seq if more and messages else None,
        )

    async def _cursor_seq(self, chat_id: UUID, cursor: Cursor) -> int:
        if isinstance(cursor, int):
            return cursor
        seq = await self.session.scalar(
            select(Message.seq).where(Message.id == cursor, Message.chat_id == chat_id)
        )
        if seq is None:
            raise InvalidInputError(
                "The cursor is not a message of this chat.",
                errors=[{"field": "cursor", "source": "query", "message": "unknown message"}],
            )
        return int(seq)

    async def send_message(self, user: User, chat_id: UUID, data: NewMessage) -> MessageOut:
        chat, membership = await self._membership(chat_id, user.id)
        if data.type == "text":
            if data.text is None or not data.text.strip():
                raise InvalidInputError("A text message needs non-blank text.")
            if data.attachment is not None:
                raise InvalidInputError("A text message has no attachment; use type image or file.")
        elif data.attachment is None:
            raise InvalidInputError(f"A {data.type} message needs an attachment.")
        text = clean_text(data.text) if data.text and data.text.strip() else None
        if data.attachment is not None and data.attachment.name and "\x00" in data.attachment.name:
            raise InvalidInputError("The file name must not contain NUL characters.")
        if data.client_id is not None and (
            stored := await self._sent_before(chat.id, user.id, data.client_id)
        ):
            return stored
        await self._limit("messages", user.id, self.settings.messages_per_minute)
        attachment = None
        if data.attachment is not None:
            attachment = await self._store_attachment(data.type, data.attachment)
        now = _now()
        seq = await self._next_seq(chat, now)
        if data.client_id is not None and (
            stored := await self._sent_before(chat.id, user.id, data.client_id)
        ):
            # The same send, retried while the first was still committing: it holds now.
            await self.session.rollback()
            return stored
        message = Message(
            chat_id=chat.id,
            seq=seq,
            sender_id=user.id,
            client_id=data.client_id,
            type=data.type,
            text=text,
            attachment_id=attachment.id if attachment else None,
            created_at=now,
        )
        self.session.add(message)
        await self.session.flush()
        # Your own message is read by you.
        membership.last_read_message_id = message.id
        # The recipients as of this transaction; read before the commit, which saves the
        # round trips of a second transaction on this hot path.
        members = (
            await self.session.execute(
                select(ChatMember.user_id, ChatMember.muted).where(ChatMember.chat_id == chat.id)
            )
        ).all()
        await self.session.commit()
        view = self._message_view(message, attachment)
        await self.events.emit("message:new", view, [m for m, _ in members])
        await self.events.notify_offline(
            recipients=[m for m, muted in members if m != user.id and not muted],
            chat_id=chat.id,
            chat_title=chat.title if chat.type == GROUP and chat.title else user.name,
            sender_name=user.name,
            text=_preview_text(message, attachment),
            message_id=message.id,
            direct=chat.type == DIRECT,
        )
        return view

    async def _store_attachment(self, kind: str, upload: AttachmentUpload) -> MessageAttachment:
        blobs = BlobStore(self.session)
        if kind == "image":
            raw = decode_base64_payload(upload.data, self.settings.max_image_bytes)
            checked = await check_image_async(raw, self.settings.max_image_pixels)
            small, width, height = await preview_async(
                raw, PREVIEW_SIDE, self.settings.max_image_pixels
            )
            original = await blobs.put(raw, checked.content_type)
            preview_blob: Blob | None = await blobs.put(small, "image/webp")
            extension = mimetypes.guess_extension(checked.content_type) or ""
            name = upload.name or f"image{extension}"
            content_type = checked.content_type
            width, height = checked.width, checked.height
        else:
            raw = decode_base64_payload(upload.data, self.settings.max_file_bytes)
            content_type = (
                upload.content_type
                or mimetypes.guess_type(upload.name or "")[0]
                or "application/octet-stream"
            )
            original = await blobs.put(raw, content_type)
            preview_blob = None
            name = upload.name or "file"
            width = height = None  # type: ignore[assignment]
        attachment = MessageAttachment(
            kind=kind,
            name=name.replace("/", "_").replace("\\", "_")[:255],
            content_type=content_type,
            size=len(raw),
            width=width,
            height=height,
            blob_id=original.id,
            preview_blob_id=preview_blob.id if preview_blob else None,
        )
        self.session.add(attachment)
        await self.session.flush()
        return attachment

    async def _sent_before(
        self, chat_id: UUID, sender_id: UUID, client_id: str
    ) -> MessageOut | None:
        message = await self.session.scalar(
            select(Message).where(
                Message.chat_id == chat_id,
                Message.sender_id == sender_id,
                Message.client_id == client_id,
            )
        )
        if message is None:
            return None
        return (await self.message_views([message], sender_id))[0]

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

    async def _authored_message(self, user: User, message_id: UUID) -> Message:
        message = await self._visible_message(user, message_id)
        if message.sender_id != user.id:
            raise ForbiddenError("Only the author can change this message.")
        if message.deleted_at is not None:
            raise ConflictError("This message was deleted.")
        return message

    async def _visible_message(self, user: User, message_id: UUID) -> Message:
        message = await self.session.scalar(
            select(Message)
            .join(ChatMember, ChatMember.chat_id == Message.chat_id)
            .where(Message.id == message_id, ChatMember.user_id == user.id)
        )
        if message is None:
            raise NotFoundError(MESSAGE_NOT_FOUND)
        return message

    async def edit_message(self, user: User, message_id: UUID, text: str) -> MessageOut:
        message = await self._authored_message(user, message_id)
        message.text = clean_text(text)
        message.edited_at = _now()
        await self.session.commit()
        view = (await self.message_views([message], user.id))[0]
        await self.events.emit(
            "message:updated", _without_viewer(view), await self.member_ids(message.chat_id)
        )
        return view

    async def delete_message(self, user: User, message_id: UUID) -> None:
        """Leaves a tombstone: the message keeps its place in history without content."""
        message = await self._authored_message(user, message_id)
        message.deleted_at = _now()
        message.text = None
        attachment_id, message.attachment_id = message.attachment_id, None
        await self.session.execute(delete(MessageLike).where(MessageLike.message_id == message.id))
        if attachment_id is not None:
            attachment = await self.session.get(MessageAttachment, attachment_id)
            if attachment is not None:
                blob_ids = [attachment.blob_id, attachment.preview_blob_id]
                await self.session.delete(attachment)
                await self.session.flush()
                await BlobStore(self.session).delete(blob_ids)
        await self.session.commit()
        await self.events.emit(
            "message:deleted",
            {"id": str(message.id), "chat_id": str(message.chat_id)},
            await self.member_ids(message.chat_id),
        )

    async def set_like(self, user: User, message_id: UUID, liked: bool) -> LikeOut:
        message = await self._visible_message(user, message_id)
        if message.deleted_at is not None:
            raise ConflictError("This message was deleted.")
        if liked:
            try:
                async with self.session.begin_nested():
                    self.session.add(MessageLike(message_id=message.id, user_id=user.id))
            except IntegrityError:
                pass  # already liked: PUT is idempotent
        else:
            await self.session.execute(
                delete(MessageLike).where(
                    MessageLike.message_id == message.id, MessageLike.user_id == user.id
                )
            )
        await self.session.commit()
        likes = int(
            await self.session.scalar(
                select(func.count()).where(MessageLike.message_id == message.id)
            )
            or 0
        )
        await self.events.emit(
            "message:liked",
            {
                "message_id": str(message.id),
                "chat_id": str(message.chat_id),
                "user_id": str(user.id),
                "liked": liked,
                "likes": likes,
            },
            await self.member_ids(message.chat_id),
        )
        return LikeOut(
            message_id=message.id, chat_id=message.chat_id, likes=likes, liked_by_me=liked
        )

    async def mark_read(self, user: User, chat_id: UUID, message_id: UUID | None) -> ReadOut:
        """Moves the read marker forward (never back) to ``message_id`` or the newest message."""
        _, membership = await self._membership(chat_id, user.id)
        if message_id is None:
            message_id = await self.session.scalar(
                select(Message.id)
                .where(Message.chat_id == chat_id)
                .order_by(Message.seq.desc())
                .limit(1)
            )
        elif not await self.session.scalar(
            select(Message.id).where(Message.id == message_id, Message.chat_id == chat_id)
        ):
            raise NotFoundError(MESSAGE_NOT_FOUND)
        if message_id is not None:
            await self.session.execute(
                update(ChatMember)
                .where(
                    ChatMember.id == membership.id,
                    _read_seq(ChatMember.last_read_message_id)
                    < select(Message.seq).where(Message.id == message_id).scalar_subquery(),
                )
                .values(last_read_message_id=message_id)
            )
        await self.session.commit()
        await self.session.refresh(membership)
        view = await self.chat_view(chat_id, user.id)
        if message_id is not None:
            await self.events.emit(
                "read",
                {
                    "chat_id": str(chat_id),
                    "user_id": str(user.id),
                    "message_id": str(membership.last_read_message_id),
                },
                await self.member_ids(chat_id),
            )
        return ReadOut(
            chat_id=chat_id,
            last_read_message_id=membership.last_read_message_id,
            unread_count=view.unread_count,
        )

    async def attachment_blob(
        self, user: User, attachment_id: UUID, *, preview: bool
    ) -> tuple[MessageAttachment, Blob, bytes]:
        attachment = await self.session.scalar(
            select(MessageAttachment)
            .join(Message, Message.attachment_id == MessageAttachment.id)
            .join(ChatMember, ChatMember.chat_id == Message.chat_id)
            .where(MessageAttachment.id == attachment_id, ChatMember.user_id == user.id)
        )
        if attachment is None:
            raise NotFoundError("No such attachment.")
        blob_id = attachment.preview_blob_id if preview else attachment.blob_id
        found = await BlobStore(self.session).read(blob_id) if blob_id else None
        if found is None:
            raise NotFoundError(
                "This attachment has no preview." if preview else "No such attachment."
            )
        return attachment, found[0], found[1]


def _read_seq(last_read_message_id: Any) -> Any:
    """The seq of a read marker (0 when nothing was read), for comparisons on seq."""
    read = aliased(Message, name="read_message")
    return func.coalesce(
        select(read.seq)
        .where(read.id == last_read_message_id)
        .correlate_except(read)
        .scalar_subquery(),
        0,
    )


def _attachment_view(attachment: MessageAttachment) -> AttachmentOut:
    url = f"/api/v1/attachments/{attachment.id}"
    return AttachmentOut(
        id=attachment.id,
        kind=attachment.kind,
        name=attachment.name,
        content_type=attachment.content_type,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
        url=url,
        preview_url=f"{url}/preview" if attachment.preview_blob_id else None,
    )


def _view_title(view: ChatOut, viewer_id: UUID) -> str:
    if view.type == GROUP:
        return view.title
    others = [m.name for m in view.members if m.id != viewer_id]
    return others[0] if others else "Direct chat"


def _title(chat: Chat, members: list[MemberOut], viewer_id: UUID) -> str:
    if chat.type == GROUP:
        return chat.title or "Group"
    others = [m.name for m in members if m.id != viewer_id]
    return others[0] if others else "Direct chat"


def _chat_order(chat: ChatOut) -> tuple[int, float]:
    if chat.pinned_at is not None:
        return 0, -chat.pinned_at.timestamp()
    return 1, -chat.last_activity_at.timestamp()


def _preview_text(message: Message, attachment: MessageAttachment | None) -> str:
    if attachment is None:
        return message.text or ""
    label = "[photo]" if attachment.kind == "image" else f"[file: {attachment.name}]"
    return f"{label} {message.text}" if message.text else label


def _without_viewer(view: MessageOut) -> dict[str, Any]:
    """An event goes to everyone, so it carries no per-viewer ``liked_by_me``."""
    data: dict[str, Any] = msgspec.to_builtins(view)
    data.pop("liked_by_me", None)
    return data
