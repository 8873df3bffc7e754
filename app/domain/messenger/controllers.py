"""The messenger API: /api/v1/chats, /api/v1/messages and /api/v1/attachments."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from app.domain.accounts.authentication import BEARER_SECURITY
from app.domain.accounts.models import User
from app.domain.messenger.events import MessengerEvents
from app.domain.messenger.schemas import (
    ChatOut,
    ChatUpdate,
    DeliveredOut,
    GroupChatOut,
    InvitationOut,
    LikeOut,
    MessageEdit,
    MessageOut,
    MessagePage,
    NewChat,
    NewDirectChat,
    NewMembers,
    NewMessage,
    ReadMarker,
    ReadOut,
)
from app.domain.messenger.services import MessengerService, group_change
from app.lib.auth import AccessClaims
from app.lib.dependencies import DbSessionDep, SettingsDep
from app.lib.errors import InvalidInputError
from app.lib.images import THUMBNAIL_TYPE
from app.lib.inflight import LIMIT_USER_WRITES
from app.lib.storage import blob_response

MessengerDep = NamedDependency[MessengerService]
UserRequest = Request[User, AccessClaims, Any]
ChatId = FromPath[UUID]
# The chat list comes in pages of this many chats (the first page is what a client shows).
CHAT_PAGE = 50
CHAT_PAGE_MAX = 200
NEXT_OFFSET_HEADER = "X-Next-Offset"


def parse_cursor(raw: str | None, name: str) -> UUID | int | None:
    """A history cursor: a message id, or a message's ``seq`` (a non-negative integer)."""
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit():
        return int(raw)
    try:
        return UUID(raw)
    except ValueError:
        raise InvalidInputError(
            f"{name} must be a message id or a seq number.",
            errors=[{"field": name, "source": "query", "message": "not a message id or seq"}],
        ) from None


def provide_messenger(
    request: Request[Any, Any, Any], db_session: DbSessionDep, settings: SettingsDep
) -> MessengerService:
    return MessengerService(db_session, settings, MessengerEvents(request.app.state))


class _MessengerController(Controller):
    opt = LIMIT_USER_WRITES
    security = BEARER_SECURITY
    dependencies = {"messenger": Provide(provide_messenger, sync_to_thread=False)}


class ChatController(_MessengerController):
    path = "/api/v1/chats"
    tags = ["messenger: chats"]

    @get(
        "/",
        summary="My chats",
        response_headers=[
            ResponseHeader(
                name=NEXT_OFFSET_HEADER,
                description="The offset of the next page; absent on the last page.",
                documentation_only=True,
            )
        ],
    )
    async def list_chats(
        self,
        request: UserRequest,
        messenger: MessengerDep,
        limit: Annotated[int, Parameter(ge=1, le=CHAT_PAGE_MAX)] = CHAT_PAGE,
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
    ) -> Response[list[ChatOut]]:
        """Pinned chats first (most recently pinned first), then the others by last
        activity; each with its last message, my unread count and its members. ``limit``
        chats from ``offset`` on; while more follow, the ``X-Next-Offset`` header gives the
        next page's ``offset``."""
        chats = await messenger.list_chats(request.user.id, limit=limit + 1, offset=offset)
        headers = {}
        if len(chats) > limit:
            chats = chats[:limit]
            headers[NEXT_OFFSET_HEADER] = str(offset + limit)
        return Response(chats, headers=headers)

    @post("/", summary="Start a direct chat or create a group", status_code=HTTP_201_CREATED)
    async def create_chat(
        self, request: UserRequest, data: JSONBody[NewChat], messenger: MessengerDep
    ) -> Response[GroupChatOut]:
        """``{"type": "direct", "member_id": ...}`` is idempotent: it answers the existing
        chat of the pair (200) or creates it (201). ``{"type": "group", "title": ...,
        "member_ids": [...]}`` creates a group owned by the caller: those whose
        ``group_adds`` setting lets the caller add them are members at once (``added``),
        the others get a pending invitation (``invited``); 403 naming anyone who blocked
        the caller (and nothing is created). Both lists are empty for a direct chat."""
        if isinstance(data, NewDirectChat):
            chat, created = await messenger.create_direct_chat(request.user, data.member_id)
            await messenger.commit()
            return Response(
                group_change(chat, [], []),
                status_code=HTTP_201_CREATED if created else HTTP_200_OK,
            )
        group = await messenger.create_group_chat(request.user, data.title, data.member_ids)
        await messenger.commit()
        return Response(group, status_code=HTTP_201_CREATED)

    @get("/{chat_id:uuid}", summary="One chat")
    async def get_chat(
        self, request: UserRequest, chat_id: ChatId, messenger: MessengerDep
    ) -> ChatOut:
        """A chat I belong to, with its members (404 for any other chat)."""
        return await messenger.chat_view(chat_id, request.user.id)

    @patch("/{chat_id:uuid}", summary="Rename a group (owner only)")
    async def update_chat(
        self,
        request: UserRequest,
        chat_id: ChatId,
        data: JSONBody[ChatUpdate],
        messenger: MessengerDep,
    ) -> ChatOut:
        """Changes a group's title; only its owner may."""
        return await messenger.committed(messenger.rename_chat(request.user, chat_id, data.title))

    @post(
        "/{chat_id:uuid}/members",
        summary="Add members to a group (owner only)",
        status_code=HTTP_200_OK,
    )
    async def add_members(
        self,
        request: UserRequest,
        chat_id: ChatId,
        data: JSONBody[NewMembers],
        messenger: MessengerDep,
    ) -> GroupChatOut:
        """Adds users to a group; only its owner may. Those whose ``group_adds`` setting
        does not let the owner add them get a pending invitation instead (``invited``);
        403 naming anyone who blocked the owner (and nobody is added). Answers the chat
        with its members."""
        return await messenger.committed(
            messenger.add_members(request.user, chat_id, data.user_ids)
        )

    @delete(
        "/{chat_id:uuid}/members/{user_id:uuid}",
        summary="Remove a member (owner) or leave (yourself)",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def remove_member(
        self,
        request: UserRequest,
        chat_id: ChatId,
        user_id: FromPath[UUID],
        messenger: MessengerDep,
    ) -> None:
        """The owner removes a member; a member removes themself to leave the group."""
        await messenger.remove_member(request.user, chat_id, user_id)
        await messenger.commit()

    @put("/{chat_id:uuid}/pin", summary="Pin a chat (for me)")
    async def pin(self, request: UserRequest, chat_id: ChatId, messenger: MessengerDep) -> ChatOut:
        """Pins the chat to the top of my chat list; the other members see no change."""
        return await messenger.committed(messenger.set_pinned(request.user, chat_id, True))

    @delete("/{chat_id:uuid}/pin", summary="Unpin a chat", status_code=HTTP_200_OK)
    async def unpin(
        self, request: UserRequest, chat_id: ChatId, messenger: MessengerDep
    ) -> ChatOut:
        """Takes my pin off the chat."""
        return await messenger.committed(messenger.set_pinned(request.user, chat_id, False))

    @put("/{chat_id:uuid}/mute", summary="Mute a chat's notifications (for me)")
    async def mute(self, request: UserRequest, chat_id: ChatId, messenger: MessengerDep) -> ChatOut:
        """No Telegram notifications about this chat for me; messages still arrive."""
        return await messenger.committed(messenger.set_muted(request.user, chat_id, True))

    @delete("/{chat_id:uuid}/mute", summary="Unmute a chat", status_code=HTTP_200_OK)
    async def unmute(
        self, request: UserRequest, chat_id: ChatId, messenger: MessengerDep
    ) -> ChatOut:
        """Telegram notifications about this chat resume for me."""
        return await messenger.committed(messenger.set_muted(request.user, chat_id, False))

    @get("/{chat_id:uuid}/messages", summary="Message history (cursor pages)")
    async def history(
        self,
        request: UserRequest,
        chat_id: ChatId,
        messenger: MessengerDep,
        before: Annotated[
            str | None,
            Parameter(description="a message id or a seq: older than it", max_length=40),
        ] = None,
        after: Annotated[
            str | None,
            Parameter(
                description="a message id or a seq: newer than it, oldest first", max_length=40
            ),
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 50,
    ) -> MessagePage:
        """Newest first; pass ``next_cursor`` (or ``next_seq``) as ``before`` for the previous
        page. With ``after`` (catching up after a reconnect) the order is oldest first; follow
        ``next_cursor`` as ``after`` until it is null. Pages are cut on each message's
        ``seq`` (its chat's commit order), so a message that committed while you read is
        never skipped, even when its id sorts earlier."""
        if before is not None and after is not None:
            raise InvalidInputError("Pass either before or after, not both.")
        return await messenger.history(
            request.user,
            chat_id,
            before=parse_cursor(before, "before"),
            after=parse_cursor(after, "after"),
            limit=limit,
        )

    @get("/{chat_id:uuid}/messages/search", summary="Search one chat's messages")
    async def search_chat(
        self,
        request: UserRequest,
        chat_id: ChatId,
        messenger: MessengerDep,
        q: Annotated[str, Parameter(min_length=1, max_length=200, description="words")],
        before: Annotated[
            UUID | None, Parameter(description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> MessagePage:
        """Newest first; every word must occur (PostgreSQL full text; a substring on
        SQLite). Deleted messages and system notices never match."""
        return await messenger.search(request.user, q, chat_id=chat_id, before=before, limit=limit)

    @post("/{chat_id:uuid}/messages", summary="Send a message", status_code=HTTP_201_CREATED)
    async def send_message(
        self,
        request: UserRequest,
        chat_id: ChatId,
        data: JSONBody[NewMessage],
        messenger: MessengerDep,
    ) -> MessageOut:
        """Types: ``text`` (text), ``image`` (attachment: base64 or data URL of a JPEG, PNG
        or WebP; a 320 px preview is made) and ``file`` (attachment with name and content
        type). Members receive it over Socket.IO as ``message:new`` once it is stored.

        ``reply_to_id`` quotes a message of this chat (422 otherwise): the view carries its
        preview as ``reply_to``. ``forward_from_id`` alone forwards a message of any chat of
        mine here (404 when I cannot read it, 409 once deleted), sharing its attachment; the
        view names the original's author in ``forwarded_from``."""
        return await messenger.committed(messenger.send_message(request.user, chat_id, data))

    @post("/{chat_id:uuid}/read", summary="Mark messages as read", status_code=HTTP_200_OK)
    async def mark_read(
        self,
        request: UserRequest,
        chat_id: ChatId,
        messenger: MessengerDep,
        data: JSONBody[ReadMarker | None] = None,
    ) -> ReadOut:
        """Moves my read marker forward (never back) to ``message_id``, or to the newest
        message when the body is empty."""
        return await messenger.committed(
            messenger.mark_read(request.user, chat_id, data.message_id if data else None)
        )

    @post(
        "/{chat_id:uuid}/delivered",
        summary="Acknowledge received messages",
        status_code=HTTP_200_OK,
    )
    async def mark_delivered(
        self,
        request: UserRequest,
        chat_id: ChatId,
        messenger: MessengerDep,
        data: JSONBody[ReadMarker | None] = None,
    ) -> DeliveredOut:
        """My client has received the chat up to ``message_id`` (or its newest message):
        the delivered marker moves forward, never back, and the other members hear
        ``message:delivered`` (direct chats only). It is the other side's "delivered" tick
        (``peer_delivered_seq`` of the chat view)."""
        return await messenger.committed(
            messenger.mark_delivered(request.user, chat_id, data.message_id if data else None)
        )


class MessageController(_MessengerController):
    path = "/api/v1/messages"
    tags = ["messenger: messages"]

    @get("/search", summary="Search the messages of all my chats")
    async def search(
        self,
        request: UserRequest,
        messenger: MessengerDep,
        q: Annotated[str, Parameter(min_length=1, max_length=200, description="words")],
        before: Annotated[
            UUID | None, Parameter(description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> MessagePage:
        """Newest first, across every chat I am a member of; see the one-chat search."""
        return await messenger.search(request.user, q, chat_id=None, before=before, limit=limit)

    @patch("/{message_id:uuid}", summary="Edit my message")
    async def edit(
        self,
        request: UserRequest,
        message_id: FromPath[UUID],
        data: JSONBody[MessageEdit],
        messenger: MessengerDep,
    ) -> MessageOut:
        """404 outside your chats, 403 when you are not the author, 409 once deleted (or for
        a forward, which keeps the original's words)."""
        return await messenger.committed(
            messenger.edit_message(request.user, message_id, data.text)
        )

    @delete("/{message_id:uuid}", summary="Delete my message", status_code=HTTP_204_NO_CONTENT)
    async def remove(
        self, request: UserRequest, message_id: FromPath[UUID], messenger: MessengerDep
    ) -> None:
        """Leaves a tombstone (``deleted: true``, no text or attachment) in history."""
        await messenger.delete_message(request.user, message_id)
        await messenger.commit()

    @put("/{message_id:uuid}/like", summary="Like a message")
    async def like(
        self, request: UserRequest, message_id: FromPath[UUID], messenger: MessengerDep
    ) -> LikeOut:
        """Likes a message in one of my chats; liking again changes nothing. 403 in a direct
        chat where either of the two blocked the other."""
        return await messenger.committed(messenger.set_like(request.user, message_id, True))

    @delete("/{message_id:uuid}/like", summary="Take a like back", status_code=HTTP_200_OK)
    async def unlike(
        self, request: UserRequest, message_id: FromPath[UUID], messenger: MessengerDep
    ) -> LikeOut:
        """Takes my like off a message (403 in a direct chat with a block, as liking)."""
        return await messenger.committed(messenger.set_like(request.user, message_id, False))


class InvitationController(_MessengerController):
    path = "/api/v1/invitations"
    tags = ["messenger: chats"]

    @get("/", summary="My pending group invitations")
    async def list_invitations(
        self, request: UserRequest, messenger: MessengerDep
    ) -> list[InvitationOut]:
        """Newest first: invitations into groups whose owner my ``group_adds`` setting does
        not let add me directly. Each new one also arrives as ``invitation:new``."""
        return await messenger.list_invitations(request.user)

    @post(
        "/{invitation_id:uuid}/accept",
        summary="Accept an invitation (join the group)",
        status_code=HTTP_200_OK,
    )
    async def accept(
        self, request: UserRequest, invitation_id: FromPath[UUID], messenger: MessengerDep
    ) -> ChatOut:
        """Joins the group and answers it; its members hear ``chat:updated``. 404 for an
        invitation that is not mine (or no longer exists), 409 while the group is full."""
        return await messenger.committed(messenger.accept_invitation(request.user, invitation_id))

    @post(
        "/{invitation_id:uuid}/decline",
        summary="Decline an invitation",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def decline(
        self, request: UserRequest, invitation_id: FromPath[UUID], messenger: MessengerDep
    ) -> None:
        """Drops the invitation; 404 for one that is not mine."""
        await messenger.decline_invitation(request.user, invitation_id)
        await messenger.commit()


class AttachmentController(_MessengerController):
    path = "/api/v1/attachments"
    tags = ["messenger: messages"]

    @get(
        "/{attachment_id:uuid}",
        summary="A message's image or file",
        media_type="application/octet-stream",
    )
    async def original(
        self, request: UserRequest, attachment_id: FromPath[UUID], messenger: MessengerDep
    ) -> Response[bytes]:
        """Members only (404 otherwise). Files are sent as downloads."""
        attachment, blob, data = await messenger.attachment_blob(
            request.user, attachment_id, preview=False
        )
        return blob_response(
            request,
            blob,
            data,
            cache_control="private, max-age=31536000, immutable",
            download_name=attachment.name if attachment.kind == "file" else None,
        )

    @get("/{attachment_id:uuid}/preview", summary="An image's preview", media_type=THUMBNAIL_TYPE)
    async def preview(
        self, request: UserRequest, attachment_id: FromPath[UUID], messenger: MessengerDep
    ) -> Response[bytes]:
        """The small WebP preview of an image attachment; members only (404 otherwise)."""
        _, blob, data = await messenger.attachment_blob(request.user, attachment_id, preview=True)
        return blob_response(
            request, blob, data, cache_control="private, max-age=31536000, immutable"
        )
