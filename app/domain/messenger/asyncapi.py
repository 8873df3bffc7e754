"""The messenger's real-time API as an AsyncAPI 3 document, served at /docs/asyncapi.json
(and rendered for people at /docs/asyncapi, see :mod:`.asyncapi_page`).

Payload schemas are generated from the same msgspec structs the handlers parse and answer
with, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, get

from app.domain.messenger.schemas import ChatOut, DeliveredOut, InvitationOut, MessageOut, ReadOut
from app.domain.messenger.sockets import ChatEvent, SendEvent
from app.lib.auth import PUBLIC_ROUTE
from app.lib.dependencies import SettingsDep
from app.lib.errors import NotFoundError


class Problem(msgspec.Struct):
    """The RFC 9457 body REST answers; ``retry_after`` (seconds) on 429 and 503."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None
    retry_after: int | None = None


class ErrorAck(msgspec.Struct):
    """How every client event's acknowledgement says it failed."""

    error: Problem


class TypingAck(msgspec.Struct):
    chat_id: UUID


class MessageDeleted(msgspec.Struct):
    id: UUID
    chat_id: UUID


class MessageLiked(msgspec.Struct):
    message_id: UUID
    chat_id: UUID
    user_id: UUID
    liked: bool
    likes: int


class ChatRemoved(msgspec.Struct):
    id: UUID


class Typing(msgspec.Struct):
    chat_id: UUID
    user_id: UUID
    name: str


class Read(msgspec.Struct):
    chat_id: UUID
    user_id: UUID
    message_id: UUID
    # The read message's seq: a direct chat's messages up to it show the "read" tick.
    seq: int


class Presence(msgspec.Struct):
    user_id: UUID
    online: bool


class SessionExpired(msgspec.Struct):
    detail: str


# name: (payload, summary)
SERVER_EVENTS: dict[str, tuple[type[Any], str]] = {
    "message:new": (MessageOut, "A message was stored in one of your chats."),
    "message:updated": (MessageOut, "A message was edited (without `liked_by_me`)."),
    "message:deleted": (MessageDeleted, "A message became a tombstone."),
    "message:liked": (MessageLiked, "A like was given or taken back."),
    "chat:new": (ChatOut, "You are in a new chat (your view of it)."),
    "chat:updated": (ChatOut, "A chat's title or members changed (your view of it)."),
    "chat:removed": (ChatRemoved, "You left or were removed from a group."),
    "invitation:new": (
        InvitationOut,
        "You were invited into a group (your `group_adds` setting refused a direct add); "
        "accept or decline it through `/api/v1/invitations/{id}`.",
    ),
    "typing": (
        Typing,
        "Another member is typing (never relayed between two users one of whom blocked the other).",
    ),
    "read": (
        Read,
        "A member's read marker moved (in a direct chat with a block, not to the other side).",
    ),
    "message:delivered": (
        DeliveredOut,
        "The other member of a direct chat received it up to `seq` (the delivered tick; "
        "not sent in a direct chat with a block).",
    ),
    "presence": (
        Presence,
        "A contact came online or went offline (once per change). A user who blocked you "
        "looks offline: you hear `online: false` when they block you, `true` again when "
        "they unblock you while online.",
    ),
    "session:expired": (SessionExpired, "Your access token expired; refresh and reconnect."),
}
# name: (payload, acknowledgement on success, summary)
CLIENT_EVENTS: dict[str, tuple[type[Any], type[Any], str]] = {
    "message:send": (
        SendEvent,
        MessageOut,
        "Store a message (idempotent on `client_id`); members hear `message:new`. "
        "`reply_to_id` quotes a message of the chat (422 otherwise); `forward_from_id` "
        "alone forwards one you can read (404 otherwise, 409 once deleted).",
    ),
    "typing": (
        ChatEvent,
        TypingAck,
        "Tell the chat's other members you are typing (403 in a direct chat with a block).",
    ),
    "read": (ChatEvent, ReadOut, "Move your read marker (to `message_id` or the newest)."),
    "message:delivered": (
        ChatEvent,
        DeliveredOut,
        "Your client received the chat up to `message_id` (or the newest): send it on "
        "`message:new` and after catching up; in a direct chat the other member hears "
        "`message:delivered`.",
    ),
}


def _message_name(direction: str, event: str) -> str:
    return f"{direction}_{event.replace(':', '_')}"


def asyncapi_document() -> dict[str, Any]:
    types = [
        *(payload for payload, _ in SERVER_EVENTS.values()),
        *(payload for payload, _, _ in CLIENT_EVENTS.values()),
        *(ack for _, ack, _ in CLIENT_EVENTS.values()),
        ErrorAck,
    ]
    _, schemas = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")

    def ref(kind: str, name: str) -> dict[str, str]:
        return {"$ref": f"#/components/{kind}/{name}"}

    messages: dict[str, Any] = {}
    channel_messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event, (payload, summary) in SERVER_EVENTS.items():
        name = _message_name("server", event)
        messages[name] = {
            "name": event,
            "summary": summary,
            "payload": ref("schemas", payload.__name__),
        }
        channel_messages[name] = ref("messages", name)
        operations[f"emit_{name}"] = {
            "action": "send",
            "channel": {"$ref": "#/channels/socketio"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/socketio/messages/{name}"}],
        }
    for event, (payload, ack, summary) in CLIENT_EVENTS.items():
        name = _message_name("client", event)
        ack_name = f"{name}_ack"
        messages[name] = {
            "name": event,
            "summary": summary,
            "payload": ref("schemas", payload.__name__),
        }
        messages[ack_name] = {
            "name": f"{event} acknowledgement",
            "summary": "The stored or resulting object, or `{error: <problem>}` (422 bad "
            "input, 401, 403 refused (a block), 404 outside your chats, 429 with "
            "`retry_after`, 503 with `retry_after` while the database or Redis is down or, for "
            "`message:send`, while the chat's deliveries are behind: nothing was stored, "
            "send again).",
            "payload": {"oneOf": [ref("schemas", ack.__name__), ref("schemas", "ErrorAck")]},
        }
        channel_messages[name] = ref("messages", name)
        channel_messages[ack_name] = ref("messages", ack_name)
        operations[f"on_{name}"] = {
            "action": "receive",
            "channel": {"$ref": "#/channels/socketio"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/socketio/messages/{name}"}],
            "reply": {
                "channel": {"$ref": "#/channels/socketio"},
                "messages": [{"$ref": f"#/channels/socketio/messages/{ack_name}"}],
            },
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Quintet messenger: real time (Socket.IO)",
            "version": "1.0.0",
            "description": "Socket.IO 5 (Engine.IO 4) at `/socket.io/`. Connect with "
            "`auth: {token: <access JWT>}`; a connection lives as long as its token. Every "
            "client event is acknowledged. Frames are limited to 1 MB: send media through "
            "REST (`POST /api/v1/chats/{id}/messages`).",
        },
        "servers": {
            "quintet": {
                "host": "localhost:8000",
                "pathname": "/socket.io/",
                "protocol": "ws",
                "description": "The API's own host; every replica serves it.",
                "security": [ref("securitySchemes", "accessToken")],
            }
        },
        "defaultContentType": "application/json",
        "channels": {
            "socketio": {
                "address": "/",
                "title": "The default Socket.IO namespace",
                "messages": channel_messages,
            }
        },
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "accessToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The access_token from /api/v1/auth/login, passed in "
                    "the Socket.IO connect `auth` object as `token` (not in a header): "
                    "`io({auth: {token}})`. A missing, invalid, expired or signed-out token "
                    "is refused at the handshake (`connect_error`, its `message` says why). "
                    "At the token's expiry the server emits `session:expired` and "
                    "disconnects: refresh the token and connect again.",
                }
            },
        },
    }


class AsyncAPIController(Controller):
    path = "/docs/asyncapi.json"
    opt = PUBLIC_ROUTE
    include_in_schema = False

    @get("/", summary="The AsyncAPI 3 document of the Socket.IO events")
    async def document(self, settings: SettingsDep) -> dict[str, Any]:
        """Rendered for people at /docs/asyncapi; 404 with DOCS_ENABLED=false, like /docs/."""
        if not settings.docs_enabled:
            raise NotFoundError("Not found")
        return asyncapi_document()
