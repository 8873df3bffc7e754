"""The messenger's service, as the controllers and Socket.IO handlers use it.

The rules live in four modules, the way Netflix Dispatch keeps a large domain readable:
:mod:`.chats` (membership, groups, pins; :mod:`.invitations` for the adds a user's
privacy setting refuses), :mod:`.messages` (send, edit, delete, likes,
history), :mod:`.views` (the read model: chat list and per-viewer fields) and
:mod:`.flows` (rate limits, the per-chat sequence, then emitting and notifying after the
commit). :class:`MessengerService` is all of them over one session.
"""

from __future__ import annotations

from app.domain.messenger.chats import (
    ChatService,
    clean_title,
    direct_key,
    group_change,
)
from app.domain.messenger.messages import Cursor, MessageService, clean_text
from app.domain.messenger.models import MAX_GROUP_MEMBERS
from app.domain.messenger.views import CHAT_NOT_FOUND, MESSAGE_NOT_FOUND


class MessengerService(ChatService, MessageService):
    """Every method takes the acting user and answers 404 for a chat (or a message, or an
    attachment) the user is not a member of."""


__all__ = [
    "CHAT_NOT_FOUND",
    "MAX_GROUP_MEMBERS",
    "MESSAGE_NOT_FOUND",
    "Cursor",
    "MessengerService",
    "clean_text",
    "clean_title",
    "direct_key",
    "group_change",
]
