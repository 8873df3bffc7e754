"""The messenger's Socket.IO events (client to server).

Every client event goes through one wrapper (:func:`register_socket_handlers`'s
``handler``): it parses the payload into its msgspec struct, runs the action as the
connection's user in a fresh database session, and always answers the acknowledgement:
with the stored object, or with ``{"error": <problem>}`` where the problem is the same
RFC 9457 body REST answers (``type``, ``title``, ``status``, ``detail``, ``instance``):
422 for bad input (a NUL character included), 404 outside your chats, 429 past a rate
limit (with ``retry_after``), 503 while the database or Redis is down (and for
``message:send`` while the chat's announcements are behind: nothing is stored, the client
sends again), 500 for a bug.
Nothing is left unanswered and no handler's exception escapes into the event loop.

Logs carry the user id, the event and the status, never message text or tokens.

``message:send`` stores the message through the same service as the REST API; the other
members hear it as ``message:new`` once it is committed (with ``reply_to_id`` it quotes a
message of the chat; with ``forward_from_id`` it copies one from any chat of the user's).
``typing`` and ``read`` are relayed to the chat's members; ``message:delivered`` (the client
received the chat up to a message) reaches the other member of a direct chat when the marker
moves. Between two users one of whom blocked the other nothing of this is relayed: typing in
no chat, read and delivered markers not in their direct chat (where typing is refused with
403, as sending is). Online and offline changes reach everyone who shares a chat with the
user as ``presence``, except those the user blocked.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar
from uuid import UUID

import msgspec
import structlog
from litestar import Litestar

from app.domain.accounts.models import User
from app.domain.messenger.events import MessengerEvents, to_json
from app.domain.messenger.messages import is_plain_text
from app.domain.messenger.schemas import (
    AttachmentUpload,
    ClientId,
    ForwardFromId,
    NewMessage,
    ReplyToId,
    Text,
)
from app.domain.messenger.services import MessengerService
from app.lib.errors import (
    AppError,
    InvalidInputError,
    ServiceUnavailableError,
    UnauthorizedError,
    as_app_error,
    problem_body,
)
from app.lib.realtime import Realtime

logger = structlog.get_logger("app.messenger.sockets")


class SendEvent(msgspec.Struct, forbid_unknown_fields=True):
    chat_id: UUID
    type: Literal["text", "image", "file"] = "text"
    text: Text | None = None
    attachment: AttachmentUpload | None = None
    # Chosen by the client; a retried send with the same id answers the stored message
    # instead of storing it twice.
    client_id: ClientId | None = None
    reply_to_id: ReplyToId | None = None
    forward_from_id: ForwardFromId | None = None


class ChatEvent(msgspec.Struct):
    chat_id: UUID
    message_id: UUID | None = None


EventT = TypeVar("EventT", SendEvent, ChatEvent)
Action = Callable[[MessengerService, User, EventT], Awaitable[Any]]
# An action that checks the account itself (the one-statement send): it gets the user's id.
IdAction = Callable[[MessengerService, UUID, EventT], Awaitable[Any]]


def socket_problem(exc: BaseException, event: str) -> dict[str, Any]:
    """``{"error": problem}`` for any exception a handler raised."""
    error = as_app_error(exc)
    if error is None and isinstance(exc, OSError):
        error = ServiceUnavailableError(
            "A backing service (database or Redis) is unavailable; try again shortly."
        )
    if error is None:
        body = problem_body(
            500,
            "An unexpected error occurred; it has been logged.",
            instance=f"/socket.io/{event}",
        )
    else:
        body = problem_body(
            error.status_code,
            error.detail,
            title=error.title,
            instance=f"/socket.io/{event}",
            errors=error.errors,
        )
        retry_after = (error.headers or {}).get("Retry-After")
        if retry_after is not None:
            body["retry_after"] = int(retry_after)
    return {"error": body}


def _validation_detail(exc: msgspec.ValidationError) -> str:
    # msgspec names the field and the rule, never the value it was given.
    return f"Invalid event payload: {exc}"


def register_socket_handlers(app: Litestar) -> None:
    state = app.state
    realtime: Realtime = state.realtime
    sio = realtime.sio

    @asynccontextmanager
    async def messenger() -> AsyncIterator[MessengerService]:
        async with state.db_config.get_session() as session:
            yield MessengerService(session, state.settings, MessengerEvents(state))

    async def account_exists(user_id: UUID) -> bool:
        async with state.db_config.get_session() as session:
            user = await session.get(User, user_id)
            return user is not None and user.deleted_at is None

    realtime.account_exists = account_exists

    async def load_user(service: MessengerService, user_id: UUID) -> User:
        user = await service.session.get(User, user_id)
        if user is None or user.deleted_at is not None:
            raise UnauthorizedError("The account no longer exists.")
        return user

    def with_user(action: Action[EventT]) -> IdAction[EventT]:
        async def run(service: MessengerService, user_id: UUID, event: EventT) -> Any:
            return await action(service, await load_user(service, user_id), event)

        return run

    def handler(event: str, schema: type[EventT], action: IdAction[EventT]) -> None:
        """Register ``action`` for ``event``: the one place that parses, authenticates,
        answers every call and logs it."""

        async def handle(sid: str, data: Any = None) -> dict[str, Any]:
            started = time.perf_counter()
            user_id = await realtime.user_of(sid)
            try:
                if user_id is None:
                    raise UnauthorizedError("This connection is not signed in.")
                try:
                    parsed = msgspec.convert(data, schema)
                except msgspec.ValidationError as exc:
                    raise InvalidInputError(_validation_detail(exc)) from None
                async with messenger() as service:
                    answer = to_json(await action(service, user_id, parsed))
                    # The handler owns the transaction: commit, then announce.
                    await service.commit()
            except Exception as exc:
                problem = socket_problem(exc, event)
                status = problem["error"]["status"]
                log = logger.error if status >= 500 else logger.info
                log(
                    "socket_event_refused",
                    socket_event=event,
                    user_id=str(user_id) if user_id else None,
                    status=status,
                    exc_type=type(exc).__name__,
                    # The exception's text can hold SQL parameters (message text): only
                    # where it was raised, for a bug.
                    where=_origin(exc) if status >= 500 else None,
                )
                return problem
            logger.info(
                "socket_event",
                socket_event=event,
                user_id=str(user_id),
                status=200,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            return answer if isinstance(answer, dict) else {"result": answer}

        sio.on(event, handle)

    async def send(service: MessengerService, user_id: UUID, event: SendEvent) -> Any:
        data = NewMessage(
            type=event.type,
            text=event.text,
            attachment=event.attachment,
            client_id=event.client_id,
            reply_to_id=event.reply_to_id,
            forward_from_id=event.forward_from_id,
        )
        if is_plain_text(data) and not state.settings.is_sqlite:
            # One statement that checks the account too: no user loaded first.
            return await service.send_text(user_id, event.chat_id, data.text or "", data.client_id)
        return await service.send_message(await load_user(service, user_id), event.chat_id, data)

    async def typing(service: MessengerService, user: User, event: ChatEvent) -> Any:
        recipients = await service.typing(user, event.chat_id)
        await service.events.emit(
            "typing",
            {"chat_id": str(event.chat_id), "user_id": str(user.id), "name": user.name},
            recipients,
        )
        return {"chat_id": str(event.chat_id)}

    async def read(service: MessengerService, user: User, event: ChatEvent) -> Any:
        return await service.mark_read(user, event.chat_id, event.message_id)

    handler("message:send", SendEvent, send)
    handler("typing", ChatEvent, with_user(typing))
    handler("read", ChatEvent, with_user(read))

    async def delivered(service: MessengerService, user: User, event: ChatEvent) -> Any:
        return await service.mark_delivered(user, event.chat_id, event.message_id)

    handler("message:delivered", ChatEvent, with_user(delivered))

    async def announce_presence(user_id: UUID, online: bool) -> None:
        async def tell_contacts() -> None:
            async with messenger() as service:
                contacts = await service.contacts_of(user_id)
                await service.events.emit(
                    "presence", {"user_id": str(user_id), "online": online}, contacts
                )

        # In the announcer's few workers, one user's changes in order: thousands of
        # connections leaving at once must not each take a database connection.
        await state.announcer.submit(
            f"presence:{user_id}", tell_contacts, name="presence", may_drop=False
        )

    realtime.presence_listeners.append(announce_presence)


def _origin(exc: BaseException) -> str | None:
    """``file:line`` of the innermost frame, enough to find a bug without the message."""
    tb = exc.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"


__all__ = ["AppError", "ChatEvent", "SendEvent", "register_socket_handlers", "socket_problem"]
