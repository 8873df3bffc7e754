"""Ending live Socket.IO connections when their sign-in ends: all of a user's (account
deleted, signed out everywhere) or those of one session (logout, session revoked); and
telling a user's open pages when a block changes what they may see of someone's presence.

The connections of one user may sit on any replica. Their ids are in the user's presence set
in Redis (members ``<replica>:<sid>``, see :class:`app.lib.realtime.Presence`); those of one
session in the set :meth:`SessionRevocations.remember_socket` keeps, which the Socket.IO
handshake fills. python-socketio's Redis manager forwards ``disconnect(sid)`` to whichever
replica holds the connection.
"""

from __future__ import annotations

import contextlib
from uuid import UUID

import structlog

from app.lib.auth import SessionRevocations
from app.lib.realtime import Realtime, user_room

logger = structlog.get_logger("app.accounts")

SIGNED_OUT_DETAIL = "This session has been signed out; sign in again."


async def close_user_sockets(realtime: Realtime, user_id: UUID) -> int:
    """Tells every connection of the user that its session is over (``session:expired``,
    which the page already answers by refreshing, and then by showing the login form), then
    disconnects them on every replica. Answers how many connections were asked to close."""
    sids = {sid for sid, owner in realtime.local_connections.items() if owner == user_id}
    with contextlib.suppress(Exception):  # Redis down: the local ones still close
        members = await realtime.presence.redis.zrange(f"presence:{user_id}", 0, -1)
        for member in members:
            text = member.decode() if isinstance(member, bytes) else str(member)
            sids.add(text.rpartition(":")[2])
    with contextlib.suppress(Exception):
        await realtime.sio.emit(
            "session:expired", {"detail": SIGNED_OUT_DETAIL}, to=user_room(user_id)
        )
    await _disconnect(realtime, sids)
    logger.info("user_sockets_closed", user_id=str(user_id), count=len(sids))
    return len(sids)


async def close_session_sockets(realtime: Realtime, session_ids: list[UUID]) -> int:
    """The same for the connections opened with tokens of these sessions only."""
    revocations = SessionRevocations(
        realtime.presence.redis, realtime.settings.access_token_ttl_seconds
    )
    sids: set[str] = set()
    with contextlib.suppress(Exception):  # Redis down: the tokens expire on their own
        sids = await revocations.sockets_of(session_ids)
    for sid in sids:
        with contextlib.suppress(Exception):
            await realtime.sio.emit("session:expired", {"detail": SIGNED_OUT_DETAIL}, to=sid)
    await _disconnect(realtime, sids)
    if sids:
        logger.info("session_sockets_closed", count=len(sids))
    return len(sids)


async def _disconnect(realtime: Realtime, sids: set[str]) -> None:
    for sid in sids:
        with contextlib.suppress(Exception):  # already gone
            await realtime.sio.disconnect(sid)


async def show_presence_to(
    realtime: Realtime, subject_id: UUID, viewer_id: UUID, *, visible: bool
) -> None:
    """After ``subject_id`` blocked (``visible=False``) or unblocked ``viewer_id``: when the
    subject is online, the viewer's pages hear ``presence`` offline (a blocker looks offline
    to the one they blocked) or online again. Nothing changes when the subject is offline."""
    with contextlib.suppress(Exception):  # Redis down: the next page load shows the truth
        if await realtime.presence.online([subject_id]):
            await realtime.emit_to_users(
                "presence", {"user_id": str(subject_id), "online": visible}, [viewer_id]
            )
