"""Request and response bodies of the chats and messages API (and its Socket.IO events)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct

Title = Annotated[str, Meta(min_length=1, max_length=128, examples=["Weekend trip"])]
Text = Annotated[str, Meta(min_length=1, max_length=4000, examples=["Hello!"])]


class NewDirectChat(Struct, tag="direct", tag_field="type", forbid_unknown_fields=True):
    member_id: UUID


class NewGroupChat(Struct, tag="group", tag_field="type", forbid_unknown_fields=True):
    title: Title
    member_ids: Annotated[list[UUID], Meta(max_length=200)] = []


NewChat = NewDirectChat | NewGroupChat


class ChatUpdate(Struct, forbid_unknown_fields=True):
    title: Title


class NewMembers(Struct, forbid_unknown_fields=True):
    user_ids: Annotated[list[UUID], Meta(min_length=1, max_length=200)]


class AttachmentUpload(Struct, forbid_unknown_fields=True):
    data: Annotated[
        str, Meta(min_length=1, description="base64 or a data URL", examples=["aGVsbG8="])
    ]
    name: Annotated[str, Meta(min_length=1, max_length=255, examples=["notes.txt"])] | None = None
    content_type: (
        Annotated[
            str, Meta(max_length=100, pattern=r"^[\w.+-]+/[\w.+-]+$", examples=["text/plain"])
        ]
        | None
    ) = None


ClientId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        description="chosen by the client: sending again with the same id answers the "
        "message already stored instead of storing a second one",
        examples=["3f1c2a9e-7b1d-4c55-9a41-0d6f7e2b8c10"],
    ),
]


ReplyToId = Annotated[
    UUID, Meta(description="the message of the same chat this one replies to (quotes)")
]
ForwardFromId = Annotated[
    UUID,
    Meta(
        description="forward this message (of any chat of mine) here: its text and "
        "attachment are copied; give no text or attachment of your own"
    ),
]


class NewMessage(Struct, forbid_unknown_fields=True):
    """``text`` needs ``text``; ``image`` and ``file`` need ``attachment`` (text is a caption).
    ``forward_from_id`` alone copies another message (``type`` is then the original's)."""

    type: Literal["text", "image", "file"] = "text"
    text: Text | None = None
    attachment: AttachmentUpload | None = None
    client_id: ClientId | None = None
    reply_to_id: ReplyToId | None = None
    forward_from_id: ForwardFromId | None = None


class MessageEdit(Struct, forbid_unknown_fields=True):
    text: Text


class ReadMarker(Struct, forbid_unknown_fields=True):
    """Without ``message_id`` everything up to the newest message counts as read."""

    message_id: UUID | None = None


class AttachmentOut(Struct):
    id: UUID
    kind: str
    name: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    url: str
    preview_url: str | None


class ReplyPreview(Struct):
    """The quoted message, short: no text once it was deleted (``deleted: true``)."""

    id: UUID
    sender_id: UUID | None
    sender_name: str | None
    type: str
    text: str | None
    deleted: bool


class ForwardedFrom(Struct):
    """Who wrote the original of a forwarded message."""

    user_id: UUID | None
    name: str | None


class MessageOut(Struct):
    id: UUID
    chat_id: UUID
    sender_id: UUID | None
    type: str
    text: str | None
    attachment: AttachmentOut | None
    likes: int
    liked_by_me: bool
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    # The message's number in its chat, in commit order: the catch-up cursor.
    seq: int = 0
    client_id: str | None = None
    reply_to: ReplyPreview | None = None
    forwarded_from: ForwardedFrom | None = None


class MessagePage(Struct):
    """``next_cursor`` is what to pass as ``before`` (or ``after``) for the next page: the
    last item's id; ``next_seq`` is the same position as a number (both are accepted)."""

    items: list[MessageOut]
    next_cursor: UUID | None
    next_seq: int | None = None


class MemberOut(Struct):
    id: UUID
    name: str
    username: str | None
    role: str
    online: Annotated[
        bool, Meta(description="Connected now; always false for a member who blocked you")
    ]
    avatar_url: str | None


class ChatOut(Struct):
    id: UUID
    type: str
    title: str
    owner_id: UUID | None
    created_at: datetime
    last_activity_at: datetime
    pinned: bool
    pinned_at: datetime | None
    muted: bool
    unread_count: int
    last_message: MessageOut | None
    members: list[MemberOut]
    # Direct chats: how far the other member got (seq), for my messages' ticks: delivered
    # when ``seq <= peer_delivered_seq``, read when ``seq <= peer_read_seq``. Null in groups.
    peer_delivered_seq: int | None = None
    peer_read_seq: int | None = None


class LikeOut(Struct):
    message_id: UUID
    chat_id: UUID
    likes: int
    liked_by_me: bool


class ReadOut(Struct):
    chat_id: UUID
    last_read_message_id: UUID | None
    unread_count: int


class DeliveredOut(Struct):
    """How far a member's client has received a chat (the ``message:delivered`` event and
    its acknowledgement)."""

    chat_id: UUID
    user_id: UUID
    seq: int


class GroupChatOut(ChatOut):
    """A group as its owner sees it after creating it or adding members: ``added`` joined
    at once; ``invited`` do not let the owner add them directly (their ``group_adds``
    setting) and got a pending invitation instead, which they may accept or decline."""

    added: list[UUID] = []
    invited: list[UUID] = []


class InvitationOut(Struct):
    """A pending invitation into a group, as its invitee sees it."""

    id: UUID
    chat_id: UUID
    chat_title: str
    member_count: int
    inviter_id: UUID | None
    inviter_name: str
    created_at: datetime
