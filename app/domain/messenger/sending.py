"""A plain text message stored in one statement (PostgreSQL).

The hot path of the messenger: ``message:send`` and ``POST /chats/{id}/messages`` with
text only (no reply, forward or attachment). One autocommit statement checks the sender's
account and membership and a block in a direct chat, takes the chat's next ``seq`` (``UPDATE
chat ... RETURNING``: the row lock orders the writers of one chat, as in
:meth:`app.domain.messenger.flows.MessengerFlows._next_seq`), inserts the message, moves the
sender's read marker, and returns what the announcement needs (the members, who muted the
chat, the chat's title and the sender's name). No ORM object is loaded or flushed.

Everything else (replies, forwards, attachments, and SQLite, the embedded default) takes
the general path in :mod:`app.domain.messenger.messages`, which enforces the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.messenger.models import DIRECT
from app.lib.rawsql import fetch_row

# The data-modifying CTEs run exactly once whether or not the final SELECT reads them; each
# writes only when the ones before it let it (member, no block, not sent before).
STORE_TEXT_MESSAGE = """
WITH sender AS (
    SELECT id, name FROM user_account
    WHERE id = $1::uuid AND deleted_at IS NULL
), membership AS (
    SELECT m.id, c.type, c.title
    FROM chat_member m JOIN chat c ON c.id = m.chat_id
    WHERE m.chat_id = $2::uuid AND m.user_id = $1::uuid
      AND EXISTS (SELECT 1 FROM sender)
), blocked AS (
    SELECT 1 FROM membership
    JOIN chat_member peer
      ON peer.chat_id = $2::uuid AND peer.user_id <> $1::uuid
    JOIN user_block b
      ON (b.blocker_id = $1::uuid AND b.blocked_id = peer.user_id)
      OR (b.blocker_id = peer.user_id AND b.blocked_id = $1::uuid)
    WHERE membership.type = $7::varchar
), previous AS (
    SELECT id FROM message
    WHERE chat_id = $2::uuid AND sender_id = $1::uuid
      AND client_id = $3::varchar
), bumped AS (
    UPDATE chat SET last_seq = last_seq + 1, last_activity_at = $4::timestamptz
    WHERE id = $2::uuid
      AND EXISTS (SELECT 1 FROM membership)
      AND NOT EXISTS (SELECT 1 FROM blocked)
      AND NOT EXISTS (SELECT 1 FROM previous)
    RETURNING last_seq
), inserted AS (
    INSERT INTO message (id, chat_id, seq, sender_id, client_id, type, text, created_at)
    SELECT $5::uuid, $2::uuid, last_seq, $1::uuid,
           $3::varchar, 'text', $6::text,
           $4::timestamptz
    FROM bumped
    RETURNING seq
), marked AS (
    UPDATE chat_member SET last_read_message_id = $5::uuid
    WHERE id = (SELECT id FROM membership) AND EXISTS (SELECT 1 FROM inserted)
)
SELECT
    (SELECT name FROM sender) AS sender_name,
    EXISTS (SELECT 1 FROM membership) AS member,
    (SELECT type FROM membership) AS chat_type,
    (SELECT title FROM membership) AS chat_title,
    EXISTS (SELECT 1 FROM blocked) AS blocked,
    EXISTS (SELECT 1 FROM previous) AS sent_before,
    (SELECT seq FROM inserted) AS seq,
    ARRAY(SELECT user_id FROM chat_member WHERE chat_id = $2::uuid) AS members,
    ARRAY(
        SELECT user_id FROM chat_member WHERE chat_id = $2::uuid AND muted
    ) AS muted
"""


@dataclass(frozen=True, slots=True)
class StoredText:
    """What the statement found, and the message's ``seq`` when it stored it."""

    sender_name: str | None
    member: bool
    chat_type: str | None
    chat_title: str | None
    blocked: bool
    sent_before: bool
    seq: int | None
    members: list[UUID]
    muted: set[UUID]

    @property
    def account(self) -> bool:
        return self.sender_name is not None

    @property
    def direct(self) -> bool:
        return self.chat_type == DIRECT


async def store_text_message(
    engine: AsyncEngine,
    *,
    message_id: UUID,
    chat_id: UUID,
    user_id: UUID,
    client_id: str | None,
    text_: str,
    now: datetime,
) -> StoredText | None:
    """None when a concurrent send with the same ``client_id`` stored it first.

    The statement goes to asyncpg as written, in autocommit (:func:`app.lib.rawsql.fetch_row`):
    it is its own transaction, committed when it returns (no BEGIN/COMMIT round trips, no
    connection left idle in a transaction, no SQLAlchemy execution around it)."""
    try:
        row = await fetch_row(
            engine, STORE_TEXT_MESSAGE, user_id, chat_id, client_id, now, message_id, text_, DIRECT
        )
    except IntegrityError:
        return None  # the same client id, stored by a concurrent send
    assert row is not None  # the SELECT always answers one row
    return StoredText(
        sender_name=row["sender_name"],
        member=bool(row["member"]),
        chat_type=row["chat_type"],
        chat_title=row["chat_title"],
        blocked=bool(row["blocked"]),
        sent_before=bool(row["sent_before"]),
        seq=None if row["seq"] is None else int(row["seq"]),
        members=list(row["members"]),
        muted=set(row["muted"]),
    )
