"""The messenger's Socket.IO events (client to server).

``message:send`` stores the message through the same service as the REST API and answers
the acknowledgement with the stored message (or ``{"error": {"status", "detail"}}``); the
other members hear it as ``message:new`` once it is committed. ``typing`` and ``read`` are
relayed to the chat's members. Online and offline changes reach everyone who shares a chat
with the user as ``presence``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar
from uuid import UUID

import msgspec
import structlog
from litestar import Litestar

from app.domain.accounts.models import User
from app.domain.messenger.events import MessengerEvents, to_json
from app.domain.messenger.schemas import AttachmentUpload, NewMessage, Text
from app.domain.messenger.services import MessengerService
from app.lib.errors import AppError
from app.lib.realtime import Realtime

logger = structlog.get_logger("app.messenger.sockets")


class SendEvent(msgspec.Struct, forbid_unknown_fields=True):
    chat_id: UUID
    type: Literal["text", "image", "file"] = "text"
    text: Text | None = None
    attachment: AttachmentUpload | None = None


class ChatEvent(msgspec.Struct):
    chat_id: UUID
    message_id: UUID | None = None


EventT = TypeVar("EventT", SendEvent, ChatEvent)


def _error(status: int, detail: str) -> dict[str, Any]:
    return {"error": {"status": status, "detail": detail}}


def register_socket_handlers(app: Litestar) -> None:
    state = app.state
    realtime: Realtime = state.realtime
    sio = realtime.sio

    @asynccontextmanager
    async def messenger() -> AsyncIterator[MessengerService]:
        async with state.db_config.get_session() as session:
            yield MessengerService(session, state.settings, MessengerEvents(state))

    async def acting_user(service: MessengerService, sid: str) -> User | None:
        user_id = await realtime.user_of(sid)
        return await service.session.get(User, user_id) if user_id else None

    async def account_exists(user_id: UUID) -> bool:
        async with state.db_config.get_session() as session:
            return await session.get(User, user_id) is not None

    realtime.account_exists = account_exists

    async def acknowledged(
        sid: str,
        data: Any,
        schema: type[EventT],
        action: Callable[[MessengerService, User, EventT], Awaitable[Any]],
    ) -> dict[str, Any]:
        """Parse a client event, run it as its user, and answer the acknowledgement."""
        try:
            event = msgspec.convert(data, schema)
        except msgspec.ValidationError as exc:
            return _error(422, str(exc))
        async with messenger() as service:
            user = await acting_user(service, sid)
            if user is None:
                return _error(401, "The account no longer exists.")
            try:
                result = await action(service, user, event)
            except AppError as exc:
                return _error(exc.status_code, exc.detail)
        return to_json(result)

    async def on_send(sid: str, data: Any) -> dict[str, Any]:
        return await acknowledged(
            sid,
            data,
            SendEvent,
            lambda service, user, event: service.send_message(
                user,
                event.chat_id,
                NewMessage(type=event.type, text=event.text, attachment=event.attachment),
            ),
        )

    async def on_typing(sid: str, data: Any) -> None:
        try:
            event = msgspec.convert(data, ChatEvent)
        except msgspec.ValidationError:
            return
        async with messenger() as service:
            user = await acting_user(service, sid)
            if user is None or not await service.is_member(event.chat_id, user.id):
                return
            others = [m for m in await service.member_ids(event.chat_id) if m != user.id]
            await service.events.emit(
                "typing",
                {"chat_id": str(event.chat_id), "user_id": str(user.id), "name": user.name},
                others,
            )

    async def on_read(sid: str, data: Any) -> dict[str, Any]:
        return await acknowledged(
            sid,
            data,
            ChatEvent,
            lambda service, user, event: service.mark_read(user, event.chat_id, event.message_id),
        )

    async def announce_presence(user_id: UUID, online: bool) -> None:
        async with messenger() as service:
            contacts = await service.contacts_of(user_id)
            await service.events.emit(
                "presence", {"user_id": str(user_id), "online": online}, contacts
            )

    sio.on("message:send", on_send)
    sio.on("typing", on_typing)
    sio.on("read", on_read)
    realtime.presence_listeners.append(announce_presence)
