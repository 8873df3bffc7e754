"""Ending a user's live Socket.IO connections when their sign-in ends (account deleted,
logged out everywhere).

The connections of one user may sit on any replica. Their ids are in the user's presence set
in Redis (members ``<replica>:<sid>``, see :class:`app.lib.realtime.Presence`), and
python-socketio's Redis manager forwards ``disconnect(sid)`` to whichever replica holds it.
"""

from __future__ import annotations

import contextlib
from uuid import UUID

import structlog

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
    for sid in sids:
        with contextlib.suppress(Exception):  # already gone
            await realtime.sio.disconnect(sid)
    logger.info("user_sockets_closed", user_id=str(user_id), count=len(sids))
    return len(sids)
