"""Messages: send, edit, delete, likes, history, read markers and attachments."""

from __future__ import annotations

import mimetypes
import re
from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from app.domain.accounts.models import User
from app.domain.messenger.events import message_preview, to_json
from app.domain.messenger.flows import MessengerFlows
from app.domain.messenger.models import (
    DIRECT,
    GROUP,
    Chat,
    ChatMember,
    Message,
    MessageAttachment,
    MessageLike,
)
from app.domain.messenger.schemas import (
    AttachmentUpload,
    DeliveredOut,
    LikeOut,
    MessageOut,
    MessagePage,
    NewMessage,
    ReadOut,
)
from app.domain.messenger.sending import StoredText, store_text_message
from app.domain.messenger.views import (
    CHAT_NOT_FOUND,
    MESSAGE_NOT_FOUND,
    PREVIEW_SIDE,
    _now,
    _read_seq,
    _without_viewer,
)
from app.lib.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
)
from app.lib.ids import new_uuid7
from app.lib.images import (
    THUMBNAIL_TYPE,
    check_image_async,
    decode_base64_payload,
    preview_async,
)
from app.lib.storage import Blob, BlobStore

MESSAGING_BLOCKED = "You cannot message this user"
LIKING_BLOCKED = "You cannot like messages in a chat with this user"

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


def is_plain_text(data: NewMessage) -> bool:
    """A text message without reply, forward or attachment: the one-statement path."""
    return (
        data.type == "text"
        and data.text is not None
        and data.attachment is None
        and data.reply_to_id is None
        and data.forward_from_id is None
    )


def _check_content(data: NewMessage) -> None:
    """A new message's own content matches its type."""
    if data.type == "text":
        if data.text is None or not data.text.strip():
            raise InvalidInputError("A text message needs non-blank text.")
        if data.attachment is not None:
            raise InvalidInputError("A text message has no attachment; use type image or file.")
    elif data.attachment is None:
        raise InvalidInputError(f"A {data.type} message needs an attachment.")
    if data.attachment is not None and data.attachment.name and "\x00" in data.attachment.name:
        raise InvalidInputError("The file name must not contain NUL characters.")


Cursor = UUID | int


class MessageService(MessengerFlows):
    """Messages: sending (idempotent on ``client_id``), history pages on ``seq``, edits,
    tombstones, likes, read markers and attachments."""

    async def typing(self, user: User, chat_id: UUID) -> list[UUID]:
        """Counts a typing notice against the user's limit and answers who hears it: the
        other members, except those with a block between them and the user (either way).
        404 outside the chat; 403 in a direct chat with a block, as for messages."""
        chat, _ = await self._membership(chat_id, user.id)
        await self._refuse_if_blocked(chat, user, MESSAGING_BLOCKED)
        await self._limit("typing", user.id, self.settings.typing_events_per_minute)
        others = [m for m in await self.member_ids(chat_id) if m != user.id]
        withheld = await self.accounts.blocked_either_way(user.id, others)
        return [m for m in others if m not in withheld]

    async def _direct_peer(self, chat: Chat, user: User) -> UUID | None:
        """The other member of a direct chat (None for a group, or when they are gone)."""
        if chat.type != DIRECT:
            return None
        return next((m for m in await self.member_ids(chat.id) if m != user.id), None)

    async def _blocked_peer(self, chat: Chat, user: User) -> UUID | None:
        """The other member of a direct chat when either of the two blocked the other."""
        peer = await self._direct_peer(chat, user)
        if peer is not None and await self.accounts.is_blocked_between(user.id, peer):
            return peer
        return None

    async def _refuse_if_blocked(self, chat: Chat, user: User, detail: str) -> None:
        """403 in a direct chat where either member blocked the other."""
        if await self._blocked_peer(chat, user) is not None:
            raise ForbiddenError(detail)

    # --- the per-chat sequence ------------------------------------------------------------

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
        if is_plain_text(data) and not self.settings.is_sqlite:
            return await self.send_text(user.id, chat_id, data.text or "", data.client_id)
        self._refuse_when_behind(chat_id)
        chat, membership = await self._membership(chat_id, user.id)
        await self._refuse_if_blocked(chat, user, MESSAGING_BLOCKED)
        source = None
        if data.forward_from_id is not None:
            source = await self._forward_source(user, data.forward_from_id, data)
            kind, text = source.type, source.text
        else:
            _check_content(data)
            kind = data.type
            text = clean_text(data.text) if data.text and data.text.strip() else None
        if data.reply_to_id is not None:
            await self._check_reply_target(chat.id, data.reply_to_id)
        if data.client_id is not None and (
            stored := await self._sent_before(chat.id, user.id, data.client_id)
        ):
            return stored
        await self._limit("messages", user.id, self.settings.messages_per_minute)
        attachment = None
        if source is not None and source.attachment_id is not None:
            # A forward shares the original's attachment (and its blobs): no bytes copied.
            attachment = await self.session.get(MessageAttachment, source.attachment_id)
        elif data.attachment is not None:
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
            type=kind,
            text=text,
            attachment_id=attachment.id if attachment else None,
            created_at=now,
            reply_to_id=data.reply_to_id,
            forwarded_from_user_id=(source.forwarded_from_user_id or source.sender_id)
            if source is not None
            else None,
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
        await self.session.flush()
        replies, forwarders = await self._message_references([message])
        view = self._message_view(
            message,
            attachment,
            reply_to=replies.get(data.reply_to_id) if data.reply_to_id else None,
            forwarded_from=forwarders.get(message.forwarded_from_user_id)
            if message.forwarded_from_user_id
            else None,
        )
        self._after_commit(lambda: self.events.emit("message:new", view, [m for m, _ in members]))
        self._after_commit(
            lambda: self.events.notify_offline(
                recipients=[m for m, muted in members if m != user.id and not muted],
                chat_id=chat.id,
                chat_title=chat.title if chat.type == GROUP and chat.title else user.name,
                sender_name=user.name,
                text=message_preview(message, attachment),
                message_id=message.id,
                direct=chat.type == DIRECT,
            )
        )
        return view

    def _refuse_when_behind(self, chat_id: UUID) -> None:
        """503 (retry shortly) while this chat's announcements are queued to the limit: under
        overload a send is refused before it is stored, never stored and left unannounced."""
        if not self.events.has_room(chat_id):
            raise ServiceUnavailableError(
                "The server is busy delivering earlier messages; try again shortly.",
                headers={"Retry-After": "1"},
            )

    async def send_text(
        self, user_id: UUID, chat_id: UUID, text: str, client_id: str | None
    ) -> MessageOut:
        """A plain text message, stored in one statement (see
        :mod:`app.domain.messenger.sending`), with the same answers as :meth:`send_message`:
        401 without an account, 404 outside the chat, 403 in a direct chat with a block,
        the stored message again for a ``client_id`` sent before, 429 past the limit."""
        self._refuse_when_behind(chat_id)
        cleaned = clean_text(text) if text.strip() else None
        if cleaned is None:
            raise InvalidInputError("A text message needs non-blank text.")
        try:
            await self._limit("messages", user_id, self.settings.messages_per_minute)
        except TooManyRequestsError:
            # A refusal that comes before the limit wins, and a retried send still answers.
            if stored := await self._answer_before_limit(user_id, chat_id, client_id):
                return stored
            raise
        message_id, now = new_uuid7(), _now()
        found = await store_text_message(
            self.events.engine,
            message_id=message_id,
            chat_id=chat_id,
            user_id=user_id,
            client_id=client_id,
            text_=cleaned,
            now=now,
        )
        if found is None:
            # The same client id, sent twice at once: the other one holds now.
            assert client_id is not None
            stored = await self._sent_before(chat_id, user_id, client_id)
            if stored is None:
                raise ConflictError("The same message is being sent; try again.")
            return stored
        if not found.account:
            raise UnauthorizedError("The account no longer exists.")
        if not found.member:
            raise NotFoundError(CHAT_NOT_FOUND)
        if found.blocked:
            raise ForbiddenError(MESSAGING_BLOCKED)
        if found.sent_before and client_id is not None:
            stored = await self._sent_before(chat_id, user_id, client_id)
            if stored is not None:
                return stored
        if found.seq is None:  # the chat went away between the checks and the write
            raise NotFoundError(CHAT_NOT_FOUND)
        view = MessageOut(
            id=message_id,
            chat_id=chat_id,
            sender_id=user_id,
            type="text",
            text=cleaned,
            attachment=None,
            likes=0,
            liked_by_me=False,
            created_at=now,
            edited_at=None,
            deleted=False,
            seq=found.seq,
            client_id=client_id,
        )
        self._announce_text(view, found)
        return view

    def _announce_text(self, view: MessageOut, found: StoredText) -> None:
        """After the commit: ``message:new`` to every member (one payload, built once), and
        the offline notifications to those who did not mute the chat."""
        payload = to_json(view)
        members = found.members
        sender_id = view.sender_id
        self._after_commit(
            lambda: self.events.emit("message:new", payload, members), chat_id=view.chat_id
        )
        recipients = [m for m in members if m != sender_id and m not in found.muted]
        if recipients:
            sender_name = found.sender_name or ""
            self._after_commit(
                lambda: self.events.notify_offline(
                    recipients=recipients,
                    chat_id=view.chat_id,
                    chat_title=found.chat_title
                    if not found.direct and found.chat_title
                    else sender_name,
                    sender_name=sender_name,
                    text=view.text or "",
                    message_id=view.id,
                    direct=found.direct,
                )
            )

    async def _answer_before_limit(
        self, user_id: UUID, chat_id: UUID, client_id: str | None
    ) -> MessageOut | None:
        """Over the limit: the answers that come first on the general path (404 outside the
        chat, 403 with a block, a retried send's stored message); None for the 429."""
        user = await self.session.get(User, user_id)
        if user is None or user.deleted_at is not None:
            raise UnauthorizedError("The account no longer exists.")
        chat, _ = await self._membership(chat_id, user_id)
        await self._refuse_if_blocked(chat, user, MESSAGING_BLOCKED)
        if client_id is None:
            return None
        return await self._sent_before(chat_id, user_id, client_id)

    async def _forward_source(self, user: User, source_id: UUID, data: NewMessage) -> Message:
        """The message to forward: one the user can read (404 otherwise), not deleted (409),
        not a system notice; the forward carries nothing of its own but a reply."""
        if data.text is not None or data.attachment is not None:
            raise InvalidInputError(
                "A forward copies the original message: give no text or attachment.",
                errors=[
                    {
                        "field": "forward_from_id",
                        "source": "body",
                        "message": "no text or attachment with a forward",
                    }
                ],
            )
        source = await self._visible_message(user, source_id)
        if source.deleted_at is not None:
            raise ConflictError("A deleted message cannot be forwarded.")
        if source.type == "system":
            raise InvalidInputError("A system notice cannot be forwarded.")
        return source

    async def _check_reply_target(self, chat_id: UUID, reply_to_id: UUID) -> None:
        found = await self.session.scalar(
            select(Message.id).where(Message.id == reply_to_id, Message.chat_id == chat_id)
        )
        if found is None:
            raise InvalidInputError(
                "A reply quotes a message of the same chat.",
                errors=[
                    {
                        "field": "reply_to_id",
                        "source": "body",
                        "message": "not a message of this chat",
                    }
                ],
            )

    async def _store_attachment(self, kind: str, upload: AttachmentUpload) -> MessageAttachment:
        blobs = BlobStore(self.session)
        if kind == "image":
            raw = decode_base64_payload(upload.data, self.settings.max_image_bytes)
            checked = await check_image_async(raw, self.settings.max_image_pixels)
            # The stored original is the checked one: upright, without EXIF/GPS metadata.
            small, width, height = await preview_async(
                checked.data, PREVIEW_SIDE, self.settings.max_image_pixels
            )
            original = await blobs.put(checked.data, checked.content_type)
            preview_blob: Blob | None = await blobs.put(small, THUMBNAIL_TYPE)
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
        if message.forwarded_from_user_id is not None:
            raise ConflictError("A forwarded message keeps the original's words.")
        message.text = clean_text(text)
        message.edited_at = _now()
        await self.session.flush()
        view = (await self.message_views([message], user.id))[0]
        members = await self.member_ids(message.chat_id)
        self._after_commit(
            lambda: self.events.emit("message:updated", _without_viewer(view), members),
            chat_id=message.chat_id,
        )
        return view

    async def delete_message(self, user: User, message_id: UUID) -> None:
        """Leaves a tombstone: the message keeps its place in history without content."""
        message = await self._authored_message(user, message_id)
        message.deleted_at = _now()
        message.text = None
        attachment_id, message.attachment_id = message.attachment_id, None
        await self.session.execute(delete(MessageLike).where(MessageLike.message_id == message.id))
        await self.session.flush()
        if attachment_id is not None and not await self._attachment_in_use(attachment_id):
            attachment = await self.session.get(MessageAttachment, attachment_id)
            if attachment is not None:
                blob_ids = [attachment.blob_id, attachment.preview_blob_id]
                await self.session.delete(attachment)
                await self.session.flush()
                await BlobStore(self.session).delete(blob_ids)
        await self.session.flush()
        members = await self.member_ids(message.chat_id)
        payload = {"id": str(message.id), "chat_id": str(message.chat_id)}
        self._after_commit(
            lambda: self.events.emit("message:deleted", payload, members), chat_id=message.chat_id
        )

    async def _attachment_in_use(self, attachment_id: UUID) -> bool:
        """Whether another message (a forward) still shows this attachment."""
        found = await self.session.scalar(
            select(Message.id).where(Message.attachment_id == attachment_id).limit(1)
        )
        return found is not None

    async def set_like(self, user: User, message_id: UUID, liked: bool) -> LikeOut:
        message = await self._visible_message(user, message_id)
        if message.deleted_at is not None:
            raise ConflictError("This message was deleted.")
        chat = await self.session.get(Chat, message.chat_id)
        if chat is not None:
            await self._refuse_if_blocked(chat, user, LIKING_BLOCKED)
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
        await self.session.flush()
        likes = int(
            await self.session.scalar(
                select(func.count()).where(MessageLike.message_id == message.id)
            )
            or 0
        )
        members = await self.member_ids(message.chat_id)
        liked_event = {
            "message_id": str(message.id),
            "chat_id": str(message.chat_id),
            "user_id": str(user.id),
            "liked": liked,
            "likes": likes,
        }
        self._after_commit(
            lambda: self.events.emit("message:liked", liked_event, members),
            chat_id=message.chat_id,
        )
        return LikeOut(
            message_id=message.id, chat_id=message.chat_id, likes=likes, liked_by_me=liked
        )

    async def mark_read(self, user: User, chat_id: UUID, message_id: UUID | None) -> ReadOut:
        """Moves the read marker forward (never back) to ``message_id`` or the newest message."""
        chat, membership = await self._membership(chat_id, user.id)
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
        await self.session.flush()
        await self.session.refresh(membership)
        view = await self.chat_view(chat_id, user.id)
        if message_id is not None:
            # In a direct chat with a block neither side hears the other's read marker.
            withheld = await self._blocked_peer(chat, user)
            members = [m for m in await self.member_ids(chat_id) if m != withheld]
            read_seq = await self.session.scalar(
                select(Message.seq).where(Message.id == membership.last_read_message_id)
            )
            read_event = {
                "chat_id": str(chat_id),
                "user_id": str(user.id),
                "message_id": str(membership.last_read_message_id),
                "seq": int(read_seq or 0),
            }
            self._after_commit(
                lambda: self.events.emit("read", read_event, members), chat_id=chat_id
            )
        return ReadOut(
            chat_id=chat_id,
            last_read_message_id=membership.last_read_message_id,
            unread_count=view.unread_count,
        )

    async def mark_delivered(
        self, user: User, chat_id: UUID, message_id: UUID | None
    ) -> DeliveredOut:
        """The user's client has received the chat up to ``message_id`` (or its newest
        message): moves the delivered marker forward (never back) and, when it moved in a
        direct chat, tells the other member (``message:delivered``) so the ticks turn
        without a reload."""
        chat, membership = await self._membership(chat_id, user.id)
        if message_id is None:
            seq: int | None = chat.last_seq
        else:
            seq = await self.session.scalar(
                select(Message.seq).where(Message.id == message_id, Message.chat_id == chat_id)
            )
            if seq is None:
                raise NotFoundError(MESSAGE_NOT_FOUND)
        before = membership.last_delivered_seq
        await self.session.execute(
            update(ChatMember)
            .where(ChatMember.id == membership.id, ChatMember.last_delivered_seq < seq)
            .values(last_delivered_seq=seq)
        )
        await self.session.flush()
        await self.session.refresh(membership)
        delivered = DeliveredOut(
            chat_id=chat_id, user_id=user.id, seq=membership.last_delivered_seq
        )
        # Ticks are a direct chat's: a group's members acknowledging each message would
        # send every member an event per member.
        # Not to the other side of a block (neither sees the other's ticks).
        if (
            chat.type == DIRECT
            and membership.last_delivered_seq > before
            and await self._blocked_peer(chat, user) is None
        ):
            others = [m for m in await self.member_ids(chat_id) if m != user.id]
            self._after_commit(
                lambda: self.events.emit("message:delivered", delivered, others), chat_id=chat_id
            )
        return delivered

    async def search(
        self,
        user: User,
        query: str,
        *,
        chat_id: UUID | None,
        before: UUID | None,
        limit: int,
    ) -> MessagePage:
        """Messages of the user's chats (or of one chat) matching ``query``, newest first:
        PostgreSQL full text search (every word, any form of it: ``simple`` configuration, so
        any language); a case-insensitive substring on SQLite. Tombstones never match."""
        words = query.strip()
        if not words or "\x00" in words:
            raise InvalidInputError("The search needs some words (and no NUL characters).")
        if chat_id is not None:
            await self._membership(chat_id, user.id)
            scope = select(ChatMember.chat_id).where(
                ChatMember.user_id == user.id, ChatMember.chat_id == chat_id
            )
        else:
            scope = select(ChatMember.chat_id).where(ChatMember.user_id == user.id)
        if self.settings.is_sqlite:
            escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            matches = Message.text.ilike(f"%{escaped}%", escape="\\")
        else:
            matches = func.to_tsvector("simple", Message.text).op("@@")(
                func.plainto_tsquery("simple", words)
            )
        statement = select(Message).where(
            Message.chat_id.in_(scope),
            Message.deleted_at.is_(None),
            Message.type != "system",
            matches,
        )
        if before is not None:
            statement = statement.where(Message.id < before)
        found = list(
            await self.session.scalars(statement.order_by(Message.id.desc()).limit(limit + 1))
        )
        more = len(found) > limit
        found = found[:limit]
        return MessagePage(
            items=await self.message_views(found, user.id),
            next_cursor=found[-1].id if more and found else None,
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
