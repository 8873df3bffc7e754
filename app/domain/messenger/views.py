"""The messenger's read model: chat lists and message views, per viewer.

Every query is scoped by the viewer's memberships, so non-members cannot even learn that
a chat (or a message, or an attachment) exists: they get 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import Select, and_, bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Bundle, aliased

from app.config import Settings
from app.domain.accounts.models import User, UserBlock
from app.domain.accounts.services import AccountService, contacts_of, member_card
from app.domain.messenger.events import MessengerEvents, message_preview, shorten_preview
from app.domain.messenger.models import (
    DIRECT,
    GROUP,
    OWNER,
    Chat,
    ChatMember,
    Message,
    MessageAttachment,
    MessageLike,
)
from app.domain.messenger.schemas import (
    AttachmentOut,
    ChatOut,
    ForwardedFrom,
    MemberOut,
    MessageOut,
    ReplyPreview,
)
from app.lib.errors import NotFoundError

PREVIEW_SIDE = 320
CHAT_NOT_FOUND = "No such chat."
MESSAGE_NOT_FOUND = "No such message."


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ChatViews:
    """The read model: what a viewer sees of chats and messages (their pins, unread counts,
    likes), and the membership lookups every rule starts from."""

    session: AsyncSession
    settings: Settings
    events: MessengerEvents
    # What to announce once the transaction commits (see flows.MessengerFlows.commit).
    outbox: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def accounts(self) -> AccountService:
        return AccountService(self.session, self.settings)

    # --- rate limits (per user, shared by every replica) ---------------------------------------
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
        """Everyone who shares a chat with the user, except those the user blocked (for
        presence announcements: a blocked user hears nothing of the blocker)."""
        blocked = select(UserBlock.blocked_id).where(UserBlock.blocker_id == user_id)
        rows = await self.session.scalars(
            contacts_of(user_id)
            .where(ChatMember.user_id != user_id, ChatMember.user_id.not_in(blocked))
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
        replies, forwarders = await self._message_references(messages)
        return [
            self._message_view(
                m,
                attachments.get(m.attachment_id) if m.attachment_id else None,
                likes=int(counts.get(m.id, 0)),
                liked_by_me=m.id in mine,
                reply_to=replies.get(m.reply_to_id) if m.reply_to_id else None,
                forwarded_from=forwarders.get(m.forwarded_from_user_id)
                if m.forwarded_from_user_id
                else None,
            )
            for m in messages
        ]

    async def _message_references(
        self, messages: Sequence[Message]
    ) -> tuple[dict[UUID, ReplyPreview], dict[UUID, ForwardedFrom]]:
        """The quoted messages' previews and the forwarded originals' authors of a page of
        messages, in at most three queries whatever the page's size (none without any)."""
        reply_ids = {m.reply_to_id for m in messages if m.reply_to_id is not None}
        forwarder_ids = {
            m.forwarded_from_user_id for m in messages if m.forwarded_from_user_id is not None
        }
        if not reply_ids and not forwarder_ids:
            return {}, {}
        quoted: list[Message] = []
        attachments: dict[UUID, MessageAttachment] = {}
        if reply_ids:
            quoted = list(
                await self.session.scalars(select(Message).where(Message.id.in_(reply_ids)))
            )
            attachment_ids = [q.attachment_id for q in quoted if q.attachment_id is not None]
            if attachment_ids:
                attachments = {
                    a.id: a
                    for a in await self.session.scalars(
                        select(MessageAttachment).where(MessageAttachment.id.in_(attachment_ids))
                    )
                }
        author_ids = forwarder_ids | {q.sender_id for q in quoted if q.sender_id is not None}
        cards = (
            await self.accounts.member_cards(select(User.id).where(User.id.in_(author_ids)))
            if author_ids
            else {}
        )

        def name_of(user_id: UUID | None) -> str | None:
            card = cards.get(user_id) if user_id else None
            return card.name if card else None

        replies = {
            q.id: _reply_preview(
                q,
                attachments.get(q.attachment_id) if q.attachment_id else None,
                name_of(q.sender_id),
            )
            for q in quoted
        }
        forwarders = {
            user_id: ForwardedFrom(user_id=user_id, name=name_of(user_id))
            for user_id in forwarder_ids
        }
        return replies, forwarders

    @staticmethod
    def _message_view(
        message: Message,
        attachment: MessageAttachment | None,
        *,
        likes: int = 0,
        liked_by_me: bool = False,
        reply_to: ReplyPreview | None = None,
        forwarded_from: ForwardedFrom | None = None,
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
            reply_to=reply_to,
            forwarded_from=forwarded_from,
        )

    async def chat_views(
        self,
        chat_ids: Sequence[UUID] | None,
        viewer_id: UUID,
        *,
        hide_blockers: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ChatOut]:
        """Views of the viewer's chats (all of them when ``chat_ids`` is None; ``limit`` of
        them from ``offset`` on), in the chat list's order: pinned first (most recently
        pinned first), then by last activity. Members who blocked the viewer look offline
        to them (unless ``hide_blockers`` is False: a view shared by many viewers, see
        :meth:`chat_views_for`).

        Two statements whatever the number of chats: the page of chats with each one's
        last message and unread count, then the members of the chats on the page (with
        their blocks and read markers); presence is one Redis round trip for them.
        """
        page: dict[str, Any] = {"viewer_id": viewer_id, "limit": limit or NO_LIMIT}
        page["offset"] = offset
        if chat_ids is not None:
            page["chat_ids"] = list(chat_ids)
        rows = (await self.session.execute(_chat_page(chat_ids is not None), page)).all()
        if not rows:
            return []
        members = (
            await self.session.execute(
                _page_members(),
                {
                    "viewer_id": viewer_id,
                    "chat_ids": [row.chat.id for row in rows],
                    "direct_ids": [row.chat.id for row in rows if row.chat.type == DIRECT],
                },
            )
        ).all()
        online = await self.events.online(
            m.user_id for m in members if not (hide_blockers and m.blocked_viewer)
        )
        by_chat: dict[UUID, list[MemberOut]] = {}
        receipts: dict[UUID, list[tuple[UUID, int, int]]] = {}
        blocked_peer_chats = set()
        for m in members:
            card = member_card(m.user_id, m.name, m.username, m.avatar_original_id)
            by_chat.setdefault(m.chat_id, []).append(
                MemberOut(
                    id=card.id,
                    name=card.name,
                    username=card.username,
                    role=m.role,
                    online=card.id in online,
                    avatar_url=card.avatar_url,
                )
            )
            if m.read_seq is not None:  # a direct chat's tick markers
                read = int(m.read_seq)
                receipts.setdefault(m.chat_id, []).append(
                    (m.user_id, max(int(m.last_delivered_seq), read), read)
                )
                if m.user_id != viewer_id and (m.blocked_viewer or m.blocked_by_viewer):
                    blocked_peer_chats.add(m.chat_id)
        views = []
        for row in rows:
            chat = row.chat
            chat_members = by_chat.get(chat.id, [])
            peer_delivered, peer_read = (
                (None, None)
                if chat.id in blocked_peer_chats
                else _peer_markers(receipts, chat.id, viewer_id)
            )
            views.append(
                ChatOut(
                    id=chat.id,
                    type=chat.type,
                    title=_title(chat, chat_members, viewer_id),
                    owner_id=chat.owner_id,
                    created_at=chat.created_at,
                    last_activity_at=chat.last_activity_at,
                    pinned=row.pinned_at is not None,
                    pinned_at=row.pinned_at,
                    muted=row.muted,
                    unread_count=int(row.unread or 0),
                    last_message=_last_message_view(row),
                    members=sorted(chat_members, key=lambda m: (m.role != OWNER, m.name)),
                    peer_delivered_seq=peer_delivered,
                    peer_read_seq=peer_read,
                )
            )
        return views

    async def _receipt_markers(self, scope: Any) -> dict[UUID, list[tuple[UUID, int, int]]]:
        """Each member's (user id, delivered seq, read seq) in the direct chats ``scope``
        selects; having read a message means having received it."""
        rows = await self.session.execute(
            select(
                ChatMember.chat_id,
                ChatMember.user_id,
                ChatMember.last_delivered_seq,
                _read_seq(ChatMember.last_read_message_id),
            )
            .join(Chat, Chat.id == ChatMember.chat_id)
            .where(Chat.type == DIRECT, ChatMember.chat_id.in_(scope))
        )
        markers: dict[UUID, list[tuple[UUID, int, int]]] = {}
        for chat_id, user_id, delivered, read in rows:
            markers.setdefault(chat_id, []).append(
                (user_id, max(int(delivered), int(read)), int(read))
            )
        return markers

    async def _without_blocked_peers(
        self, receipts: dict[UUID, list[tuple[UUID, int, int]]], viewer_id: UUID
    ) -> dict[UUID, list[tuple[UUID, int, int]]]:
        """The markers without those of the direct chats where the viewer and the other
        member blocked one another (either way): neither sees the other's ticks."""
        peers = {
            chat_id: user_id
            for chat_id, markers in receipts.items()
            for user_id, _, _ in markers
            if user_id != viewer_id
        }
        blocked = await self.accounts.blocked_either_way(viewer_id, peers.values())
        if not blocked:
            return receipts
        return {c: m for c, m in receipts.items() if peers.get(c) not in blocked}

    async def list_chats(
        self, viewer_id: UUID, *, limit: int | None = None, offset: int = 0
    ) -> list[ChatOut]:
        return await self.chat_views(None, viewer_id, limit=limit, offset=offset)

    async def chat_view(self, chat_id: UUID, viewer_id: UUID) -> ChatOut:
        views = await self.chat_views([chat_id], viewer_id)
        if not views:
            raise NotFoundError(CHAT_NOT_FOUND)
        return views[0]

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
        base_views = await self.chat_views([chat_id], recipients[0], hide_blockers=False)
        if not base_views:
            return {}
        base = base_views[0]
        # The counts cover what the shared part shows, no further: these are autocommit
        # statements, and a message stored between them must not be counted by a view
        # whose last message is older (the page counts it when its message:new arrives).
        covered = base.last_message.seq if base.last_message is not None else 0
        unread = dict(
            (
                await self.session.execute(
                    select(ChatMember.user_id, func.count(Message.id))
                    .join(Message, Message.chat_id == ChatMember.chat_id)
                    .where(
                        ChatMember.chat_id == chat_id,
                        Message.seq > _read_seq(ChatMember.last_read_message_id),
                        Message.seq <= covered,
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
        hidden = await self._presence_hidden_from(
            recipients, [m.id for m in base.members if m.online]
        )
        receipts = await self._without_blocked_peers(
            await self._receipt_markers(select(Chat.id).where(Chat.id == chat_id)), recipients[0]
        )
        views: dict[UUID, ChatOut] = {}
        for user_id in recipients:
            membership = memberships[user_id]
            peer_delivered, peer_read = _peer_markers(receipts, chat_id, user_id)
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
                members=_offline(base.members, hidden.get(user_id, set())),
                peer_delivered_seq=peer_delivered,
                peer_read_seq=peer_read,
            )
        return views

    async def _presence_hidden_from(
        self, viewer_ids: Iterable[UUID], user_ids: Iterable[UUID]
    ) -> dict[UUID, set[UUID]]:
        """For each viewer, those of ``user_ids`` who blocked them (and so look offline to
        them), in one query."""
        viewers, users = list(set(viewer_ids)), list(set(user_ids))
        if not viewers or not users:
            return {}
        rows = await self.session.execute(
            select(UserBlock.blocked_id, UserBlock.blocker_id).where(
                UserBlock.blocked_id.in_(viewers), UserBlock.blocker_id.in_(users)
            )
        )
        hidden: dict[UUID, set[UUID]] = {}
        for viewer_id, blocker_id in rows:
            hidden.setdefault(viewer_id, set()).add(blocker_id)
        return hidden

    # --- creating and managing chats ----------------------------------------------------------


# The chat list reads plain rows (Bundles of the columns a view needs), no ORM objects, and
# its statements are built once, with bind parameters: building and loading cost more CPU
# than the database spends on them.
NO_LIMIT = 2**31 - 1
_LastMessage = aliased(Message, name="last_message")
_LastAttachment = aliased(MessageAttachment, name="last_attachment")
_Quoted = aliased(Message, name="quoted")
_QuotedAttachment = aliased(MessageAttachment, name="quoted_attachment")
_QuotedSender = aliased(User, name="quoted_sender")
_Forwarder = aliased(User, name="forwarder")
_MESSAGE_COLUMNS = (
    "id",
    "chat_id",
    "sender_id",
    "type",
    "text",
    "attachment_id",
    "created_at",
    "edited_at",
    "deleted_at",
    "seq",
    "client_id",
    "forwarded_from_user_id",
)
_ATTACHMENT_COLUMNS = (
    "id",
    "kind",
    "name",
    "content_type",
    "size",
    "width",
    "height",
    "preview_blob_id",
)


def _bundle(name: str, entity: Any, columns: Iterable[str]) -> Bundle[Any]:
    return Bundle(name, *(getattr(entity, column) for column in columns))


@cache
def _chat_page(filtered: bool) -> Select[Any]:
    """The viewer's chats in the list's order (a page of them: ``limit`` from ``offset``;
    only ``chat_ids`` when ``filtered``), each row with the chat, the membership, the last
    message (its attachment, likes and quote) and the unread count.

    Portable SQL (PostgreSQL and SQLite): the page is a derived table, so the per-chat
    lookups below run for the chats on the page only; the last message is the row at the
    chat's ``last_seq`` (one unique-index probe) and unread is a range count from the read
    marker's seq on ``(chat_id, seq)``, which PostgreSQL answers from the index alone (it
    carries ``sender_id`` and ``deleted_at``).
    """
    viewer_id = bindparam("viewer_id", type_=ChatMember.user_id.type)
    page = (
        select(
            Chat.id,
            Chat.type,
            Chat.title,
            Chat.owner_id,
            Chat.created_at,
            Chat.last_activity_at,
            Chat.last_seq,
            ChatMember.pinned_at,
            ChatMember.muted,
            _read_seq(ChatMember.last_read_message_id).label("read_seq"),
        )
        .join(ChatMember, ChatMember.chat_id == Chat.id)
        .where(ChatMember.user_id == viewer_id)
        .order_by(
            case((ChatMember.pinned_at.is_(None), 1), else_=0),
            ChatMember.pinned_at.desc(),
            Chat.last_activity_at.desc(),
            Chat.id.desc(),
        )
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )
    if filtered:
        page = page.where(Chat.id.in_(bindparam("chat_ids", expanding=True)))
    paged = page.subquery("page")
    c = paged.c
    unread = (
        select(func.count())
        .select_from(Message)
        .where(
            Message.chat_id == c.id,
            Message.seq > c.read_seq,
            # Unread means what others wrote: not mine, not system notices.
            Message.sender_id != viewer_id,
            Message.deleted_at.is_(None),
        )
        .scalar_subquery()
    )
    likes = (
        select(func.count())
        .select_from(MessageLike)
        .where(MessageLike.message_id == _LastMessage.id)
        .scalar_subquery()
    )
    liked_by_me = (
        select(MessageLike.id)
        .where(MessageLike.message_id == _LastMessage.id, MessageLike.user_id == viewer_id)
        .exists()
    )
    return (
        select(
            Bundle("chat", c.id, c.type, c.title, c.owner_id, c.created_at, c.last_activity_at),
            c.pinned_at,
            c.muted,
            _bundle("last_message", _LastMessage, (*_MESSAGE_COLUMNS, "reply_to_id")),
            _bundle("last_attachment", _LastAttachment, _ATTACHMENT_COLUMNS),
            _bundle("quoted", _Quoted, _MESSAGE_COLUMNS),
            _bundle("quoted_attachment", _QuotedAttachment, _ATTACHMENT_COLUMNS),
            _QuotedSender.name.label("quoted_sender_name"),
            _Forwarder.name.label("forwarder_name"),
            unread.label("unread"),
            likes.label("likes"),
            liked_by_me.label("liked_by_me"),
        )
        .select_from(paged)
        .outerjoin(_LastMessage, and_(_LastMessage.chat_id == c.id, _LastMessage.seq == c.last_seq))
        .outerjoin(_LastAttachment, _LastAttachment.id == _LastMessage.attachment_id)
        .outerjoin(_Quoted, _Quoted.id == _LastMessage.reply_to_id)
        .outerjoin(_QuotedAttachment, _QuotedAttachment.id == _Quoted.attachment_id)
        .outerjoin(_QuotedSender, _QuotedSender.id == _Quoted.sender_id)
        .outerjoin(_Forwarder, _Forwarder.id == _LastMessage.forwarded_from_user_id)
        .order_by(
            case((c.pinned_at.is_(None), 1), else_=0),
            c.pinned_at.desc(),
            c.last_activity_at.desc(),
            c.id.desc(),
        )
    )


@cache
def _page_members() -> Select[Any]:
    """The members of the chats on a page (``chat_ids``), with their cards, whether a block
    stands between them and ``viewer_id`` (either way) and, in direct chats
    (``direct_ids``), their read seq (the ticks)."""
    viewer_id = bindparam("viewer_id", type_=ChatMember.user_id.type)
    blocked_viewer = (
        select(UserBlock.blocker_id)
        .where(UserBlock.blocker_id == ChatMember.user_id, UserBlock.blocked_id == viewer_id)
        .exists()
    )
    blocked_by_viewer = (
        select(UserBlock.blocker_id)
        .where(UserBlock.blocker_id == viewer_id, UserBlock.blocked_id == ChatMember.user_id)
        .exists()
    )
    read_seq = case(
        (
            ChatMember.chat_id.in_(bindparam("direct_ids", expanding=True)),
            _read_seq(ChatMember.last_read_message_id),
        ),
        else_=None,
    )
    return (
        select(
            ChatMember.chat_id,
            ChatMember.user_id,
            ChatMember.role,
            ChatMember.last_delivered_seq,
            read_seq.label("read_seq"),
            User.name,
            User.username,
            User.avatar_original_id,
            blocked_viewer.label("blocked_viewer"),
            blocked_by_viewer.label("blocked_by_viewer"),
        )
        .join(User, User.id == ChatMember.user_id)
        .where(ChatMember.chat_id.in_(bindparam("chat_ids", expanding=True)))
    )


def _last_message_view(row: Any) -> MessageOut | None:
    """The last message of a chat-list row (its Bundles have the columns of a Message and
    of a MessageAttachment, all None when there is none)."""
    message = row.last_message
    if message.id is None:
        return None
    quoted, forwarder = row.quoted, message.forwarded_from_user_id
    attachment = row.last_attachment if row.last_attachment.id is not None else None
    quoted_attachment = row.quoted_attachment if row.quoted_attachment.id is not None else None
    return ChatViews._message_view(
        message,
        attachment,
        likes=int(row.likes or 0),
        liked_by_me=bool(row.liked_by_me),
        reply_to=_reply_preview(quoted, quoted_attachment, row.quoted_sender_name)
        if quoted.id is not None
        else None,
        forwarded_from=ForwardedFrom(user_id=forwarder, name=row.forwarder_name)
        if forwarder is not None
        else None,
    )


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


def _peer_markers(
    receipts: dict[UUID, list[tuple[UUID, int, int]]], chat_id: UUID, viewer_id: UUID
) -> tuple[int | None, int | None]:
    """The other member's (delivered, read) seqs in a direct chat; (None, None) elsewhere."""
    for user_id, delivered, read in receipts.get(chat_id, []):
        if user_id != viewer_id:
            return delivered, read
    return None, None


def _reply_preview(
    quoted: Message, attachment: MessageAttachment | None, sender_name: str | None
) -> ReplyPreview:
    deleted = quoted.deleted_at is not None
    return ReplyPreview(
        id=quoted.id,
        sender_id=quoted.sender_id,
        sender_name=sender_name,
        type=quoted.type,
        text=None if deleted else shorten_preview(message_preview(quoted, attachment)),
        deleted=deleted,
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


def _offline(members: list[MemberOut], hidden: set[UUID]) -> list[MemberOut]:
    """The members with those in ``hidden`` shown offline."""
    if not hidden:
        return members
    return [msgspec.structs.replace(m, online=False) if m.id in hidden else m for m in members]


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


def _without_viewer(view: MessageOut) -> dict[str, Any]:
    """An event goes to everyone, so it carries no per-viewer ``liked_by_me``."""
    data: dict[str, Any] = msgspec.to_builtins(view)
    data.pop("liked_by_me", None)
    return data
