"""Socket.IO plumbing: the server, its Redis fan-out, token authentication and presence.

Domains register their event handlers on :attr:`Realtime.sio` and send through
:meth:`Realtime.emit_to_users`. Every connection joins one room per user (``user:<id>``)
rather than one room per chat: whoever is a member at the moment of an event receives it,
on any replica, so membership changes need no cross-replica room bookkeeping and a removed
member stops receiving at once.

Presence: each live connection is a member of the user's sorted set in Redis, scored with
the time it expires. Replicas refresh the scores of their connections on a heartbeat; when
a replica dies its entries expire, so its users go offline without anyone cleaning up.

Each replica also keeps a heartbeat key with a TTL (``presence:replica:<id>``) and the list
of its connections. On every heartbeat each replica looks for replicas whose key has
lapsed (killed, frozen); the first to claim one with ``SET NX`` removes that replica's
connections and announces ``presence`` offline for the users who have no connection left,
so contacts hear it once, from whichever replica noticed first, within about 4/3 of
``PRESENCE_TTL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlparse
from uuid import UUID

import msgspec
import structlog
from litestar import Litestar
from litestar.types import ASGIApp
from redis.asyncio import Redis

from app.config import Settings
from app.lib.auth import SessionRevocations, check_access_token
from app.lib.errors import UnauthorizedError
from app.lib.ids import new_uuid7
from app.lib.lazy_imports import defer_import

# python-socketio's package imports its clients, and they import aiohttp and requests at module
# level (~30 MB, ~0.8 s at start-up) though the server never uses them: load those on first use.
defer_import("aiohttp", "requests")
import socketio  # noqa: E402

logger = structlog.get_logger("app.realtime")

PresenceListener = Callable[[UUID, bool], Awaitable[None]]
AccountCheck = Callable[[UUID], Awaitable[bool]]


def user_room(user_id: UUID) -> str:
    return f"user:{user_id}"


def _client_address(environ: dict[str, Any]) -> str:
    """The peer's address as the ASGI server saw it (the proxy's, behind one: the per-address
    cap then counts per proxy, which the per-user cap complements)."""
    scope = environ.get("asgi.scope") or {}
    client = scope.get("client") if isinstance(scope, dict) else None
    if client:
        return str(client[0])
    return str(environ.get("REMOTE_ADDR", "unknown"))


def redis_channel(redis_url: str) -> str:
    """Pub/sub ignores Redis database numbers, so include it: deployments that share one
    Redis server on different databases must not hear each other's events."""
    database = urlparse(redis_url).path.strip("/") or "0"
    return f"quintet:socketio:{database}"


class MsgspecJson:
    """The ``json`` module Socket.IO encodes packets with, as msgspec (several times
    faster than the standard library on message payloads; the same JSON)."""

    @staticmethod
    def dumps(data: Any, **_: Any) -> str:
        return msgspec.json.encode(data).decode()

    @staticmethod
    def loads(data: str | bytes, **_: Any) -> Any:
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise ValueError(str(exc)) from None  # what the standard library raises


# ARGV: ttl seconds, now, replica id, then sid, user id pairs. The keys a connection touches
# are derived here from the user ids (one Redis, never a cluster: see the README).
_REFRESH_LUA = """
local ttl, now, replica = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i = 4, #ARGV, 2 do
  local key = 'presence:' .. ARGV[i + 1]
  redis.call('ZADD', key, now + ttl, replica .. ':' .. ARGV[i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  redis.call('EXPIRE', key, ttl * 2)
end
"""
_REFRESH_SCRIPT = _REFRESH_LUA + "return 1"
# KEYS: the replica's alive key, the replica set, its swept claim, its connection hash.
_BEAT_SCRIPT = (
    """
redis.call('SET', KEYS[1], '1', 'PX', math.floor(tonumber(ARGV[1]) * 1000))
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('DEL', KEYS[3])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
end
"""
    + _REFRESH_LUA
    + "return 1"
)


# Connections per script call: Redis runs nothing else while a script runs.
SCRIPT_BATCH = 1000


def _batches(connections: dict[str, UUID]) -> list[list[str]]:
    """``sid, user id, sid, user id, ...`` in slices of at most SCRIPT_BATCH connections."""
    flat = [item for sid, user_id in connections.items() for item in (sid, str(user_id))]
    return [flat[i : i + 2 * SCRIPT_BATCH] for i in range(0, len(flat), 2 * SCRIPT_BATCH)]


class Presence:
    """Who is online, across replicas (see the module docstring)."""

    def __init__(self, redis: Redis, replica_id: str, ttl_seconds: int) -> None:
        self.redis = redis
        self.replica_id = replica_id
        self.ttl_seconds = ttl_seconds
        # One round trip and no per-connection command building in Python, whatever the
        # number of connections: a heartbeat of 2,500 connections was 7,500 pipelined
        # commands, most of an idle replica's CPU.
        self._refresh_script = redis.register_script(_REFRESH_SCRIPT)
        self._beat_script = redis.register_script(_BEAT_SCRIPT)

    @staticmethod
    def _key(user_id: UUID) -> str:
        return f"presence:{user_id}"

    def _member(self, sid: str) -> str:
        return f"{self.replica_id}:{sid}"

    async def connection_count(self, user_id: UUID) -> int:
        """The user's live connections on every replica."""
        return await self._live_count(user_id)

    async def _live_count(self, user_id: UUID) -> int:
        return int(await self.redis.zcount(self._key(user_id), time.time(), "+inf"))

    async def connected(self, user_id: UUID, sid: str) -> bool:
        """Record a connection; True when this made the user come online."""
        was_online = await self._live_count(user_id) > 0
        await self.refresh({sid: user_id})
        return not was_online

    async def disconnected(self, user_id: UUID, sid: str) -> bool:
        """Forget a connection; True when the user has no live connection left."""
        await self.redis.zrem(self._key(user_id), self._member(sid))
        return await self._live_count(user_id) == 0

    async def refresh(self, connections: dict[str, UUID]) -> None:
        for batch in _batches(connections):
            await self._refresh_script(
                args=[self.ttl_seconds, time.time(), self.replica_id, *batch]
            )

    # --- replicas and their heartbeats ---------------------------------------------------

    REPLICAS_KEY = "presence:replicas"

    @staticmethod
    def _alive_key(replica_id: str) -> str:
        return f"presence:replica:{replica_id}"

    @staticmethod
    def _connections_key(replica_id: str) -> str:
        return f"presence:replica:{replica_id}:connections"

    @staticmethod
    def _claim_key(replica_id: str) -> str:
        return f"presence:replica:{replica_id}:swept"

    async def beat(self, connections: dict[str, UUID]) -> None:
        """This replica is alive, with these connections (written in full each time, so a
        replica that was swept while frozen is whole again)."""
        keys = [
            self._alive_key(self.replica_id),
            self.REPLICAS_KEY,
            self._claim_key(self.replica_id),
            self._connections_key(self.replica_id),
        ]
        for batch in _batches(connections) or [[]]:
            await self._beat_script(
                keys=keys, args=[self.ttl_seconds, time.time(), self.replica_id, *batch]
            )

    async def remember(self, sid: str, user_id: UUID) -> None:
        await self.redis.hset(self._connections_key(self.replica_id), sid, str(user_id))

    async def forget(self, sid: str) -> None:
        await self.redis.hdel(self._connections_key(self.replica_id), sid)

    async def leave(self) -> None:
        """A clean shutdown: this replica's heartbeat and connection list go now."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._alive_key(self.replica_id), self._connections_key(self.replica_id))
            pipe.srem(self.REPLICAS_KEY, self.replica_id)
            await pipe.execute()

    async def sweep(self) -> list[UUID]:
        """Claim every replica whose heartbeat lapsed, drop its connections, and return the
        users who have no live connection left (to announce offline, once)."""
        gone: list[UUID] = []
        for raw in await self.redis.smembers(self.REPLICAS_KEY):
            replica_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if replica_id == self.replica_id or await self.redis.exists(
                self._alive_key(replica_id)
            ):
                continue
            claimed = await self.redis.set(
                self._claim_key(replica_id), self.replica_id, nx=True, ex=3600
            )
            if not claimed:
                continue  # another replica is sweeping it
            connections = await self.redis.hgetall(self._connections_key(replica_id))
            users: dict[UUID, None] = {}
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid, user in connections.items():
                    sid_text = sid.decode() if isinstance(sid, bytes) else str(sid)
                    user_id = UUID(user.decode() if isinstance(user, bytes) else str(user))
                    users[user_id] = None
                    pipe.zrem(self._key(user_id), f"{replica_id}:{sid_text}")
                pipe.delete(self._connections_key(replica_id))
                pipe.srem(self.REPLICAS_KEY, replica_id)
                await pipe.execute()
            still_online = await self.online(users)
            gone += [user_id for user_id in users if user_id not in still_online]
            logger.info(
                "presence_replica_swept",
                replica_id=replica_id,
                connections=len(connections),
                offline=len(users) - len(still_online),
            )
        return gone

    async def online(self, user_ids: Iterable[UUID]) -> set[UUID]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return set()
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in ids:
                pipe.zcount(self._key(user_id), now, "+inf")
            counts = await pipe.execute()
        return {user_id for user_id, count in zip(ids, counts, strict=True) if int(count) > 0}


SESSION_EXPIRED_DETAIL = "The access token has expired; refresh it and connect again."


class Realtime:
    """The Socket.IO server of this process and what the domains need from it."""

    def __init__(
        self, settings: Settings, redis: Redis, account_exists: AccountCheck | None = None
    ) -> None:
        self.settings = settings
        manager: socketio.AsyncManager | None = None
        # The Redis manager relays every event through pub/sub so that each process reaches
        # its own sockets; one process alone (said so explicitly) needs no relay.
        if settings.redis_url and not settings.socketio_single_process:
            manager = socketio.AsyncRedisManager(
                settings.redis_url, channel=redis_channel(settings.redis_url)
            )
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=manager,
            # Same-origin browsers only; non-browser clients send no Origin.
            cors_allowed_origins=settings.socketio_cors_origins or None,
            logger=False,
            engineio_logger=False,
            json=MsgspecJson,
        )
        self.replica_id = new_uuid7().hex
        self.presence = Presence(redis, self.replica_id, settings.presence_ttl_seconds)
        self.local_connections: dict[str, UUID] = {}
        # How many of those connections each user has (who is online here, without Redis).
        self.local_users: dict[UUID, int] = {}
        self.presence_listeners: list[PresenceListener] = []
        # From the accounts owner (the messenger domain): whether a token's subject still
        # exists, so a validly signed token of a deleted account cannot connect.
        self.account_exists = account_exists
        # A connection lives no longer than the access token it was opened with.
        self.expiry_timers: dict[str, asyncio.TimerHandle] = {}
        self.expiring: set[asyncio.Task[None]] = set()
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self._log_oversized_frames()
        self._deadline_handshakes()
        self.connections_by_address: dict[str, int] = {}
        self.address_of: dict[str, str] = {}

    def _deadline_handshakes(self) -> None:
        """An Engine.IO connection that has not signed in (Socket.IO ``connect`` with a valid
        token) within ``SOCKETIO_HANDSHAKE_TIMEOUT_SECONDS`` is closed: idle half-open
        sockets cost memory and file descriptors and prove nothing."""
        eio = self.sio.eio
        original = eio.handlers["connect"]
        timeout = self.settings.socketio_handshake_timeout_seconds

        async def on_eio_connect(eio_sid: str, environ: dict[str, Any]) -> Any:
            result = await original(eio_sid, environ)
            asyncio.get_running_loop().call_later(timeout, self._check_handshake, eio_sid)
            return result

        eio.on("connect", on_eio_connect)

    def _check_handshake(self, eio_sid: str) -> None:
        sid = self.sio.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is not None and sid in self.local_connections:
            return
        if eio_sid not in self.sio.eio.sockets:
            return

        async def close() -> None:
            with contextlib.suppress(Exception):
                await self.sio.eio.disconnect(eio_sid)
            logger.info("socket_handshake_timeout", eio_sid=eio_sid)

        task = asyncio.create_task(close())
        self.expiring.add(task)
        task.add_done_callback(self.expiring.discard)

    def _log_oversized_frames(self) -> None:
        """Engine.IO drops a WebSocket whose frame is over ``max_http_buffer_size`` without
        a word; log who it was (media goes through REST, never through the socket)."""
        eio = self.sio.eio
        base: Any = eio._async["websocket"]
        limit = eio.max_http_buffer_size
        realtime = self

        class SizeCheckedWebSocket(base):  # type: ignore[misc]  # engine.io's class, untyped
            async def wait(self) -> Any:
                data = await super().wait()
                if data is not None and len(data) > limit:
                    socket = getattr(self.handler, "__self__", None)
                    eio_sid = getattr(socket, "sid", None)
                    sid = realtime.sio.manager.sid_from_eio_sid(eio_sid, "/") if eio_sid else None
                    user_id = realtime.local_connections.get(sid) if sid else None
                    logger.warning(
                        "socket_frame_too_large",
                        user_id=str(user_id) if user_id else None,
                        sid=sid,
                        size=len(data),
                        limit=limit,
                    )
                return data

        # A copy: the module's table is shared by every server in the process.
        eio._async = {**eio._async, "websocket": SizeCheckedWebSocket}

    def asgi_app(self, other: ASGIApp) -> ASGIApp:
        """Socket.IO at /socket.io/, everything else to ``other`` (lifespan included)."""
        app: ASGIApp = socketio.ASGIApp(self.sio, other_asgi_app=other, socketio_path="socket.io")
        return app

    def connected_here(self, user_ids: Iterable[UUID]) -> set[UUID]:
        """Those of ``user_ids`` with a connection to this process."""
        return {user_id for user_id in user_ids if user_id in self.local_users}

    async def user_of(self, sid: str) -> UUID | None:
        return self.local_connections.get(sid)

    async def emit_to_users(
        self,
        event: str,
        data: Any,
        user_ids: Iterable[UUID],
        *,
        skip_sid: str | None = None,
    ) -> None:
        rooms = [user_room(user_id) for user_id in dict.fromkeys(user_ids)]
        if rooms:
            await self.sio.emit(event, data, to=rooms, skip_sid=skip_sid)

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            logger.info("socket_refused", reason="no token", address=_client_address(environ))
            raise socketio.exceptions.ConnectionRefusedError("authentication required")
        revocations = SessionRevocations(
            self.presence.redis, self.settings.access_token_ttl_seconds
        )
        try:
            # The same answer as REST: a signed-out session's token opens no connection.
            claims = await check_access_token(self.settings.secret_key, token, revocations)
        except UnauthorizedError as exc:
            # The reason only: never the token.
            logger.info("socket_refused", reason=exc.detail, address=_client_address(environ))
            raise socketio.exceptions.ConnectionRefusedError(exc.detail) from exc
        user_id = claims.user_id
        address = _client_address(environ)
        if self.connections_by_address.get(address, 0) >= (
            self.settings.socketio_max_connections_per_address
        ):
            logger.warning("socket_refused_address_cap", address=address, user_id=str(user_id))
            raise socketio.exceptions.ConnectionRefusedError(
                "too many connections from this address"
            )
        try:
            exists = self.account_exists is None or await self.account_exists(user_id)
            if not exists:
                raise socketio.exceptions.ConnectionRefusedError(
                    "The account of this token no longer exists."
                )
            if await self.presence.connection_count(user_id) >= (
                self.settings.socketio_max_connections_per_user
            ):
                logger.warning("socket_refused_user_cap", user_id=str(user_id))
                raise socketio.exceptions.ConnectionRefusedError(
                    "too many connections for this account; close another tab or device"
                )
            came_online = await self.presence.connected(user_id, sid)
            await self.presence.remember(sid, user_id)
            # So that signing this session out closes this connection (accounts.connections).
            await revocations.remember_socket(claims.session_id, sid)
        except socketio.exceptions.ConnectionRefusedError:
            raise
        except Exception as exc:
            # The database or Redis is down: refuse with a reason the client can show and
            # retry on, rather than half-register a connection whose presence would then
            # never expire.
            logger.warning("socket_refused_unavailable", sid=sid, error=str(exc))
            raise socketio.exceptions.ConnectionRefusedError(
                "temporarily unavailable, try again shortly"
            ) from exc
        self.local_connections[sid] = user_id
        self.local_users[user_id] = self.local_users.get(user_id, 0) + 1
        self.address_of[sid] = address
        self.connections_by_address[address] = self.connections_by_address.get(address, 0) + 1
        self.expiry_timers[sid] = asyncio.get_running_loop().call_later(
            max(claims.expires_at - time.time(), 0.0), self._expire, sid
        )
        await self.sio.enter_room(sid, user_room(user_id))
        if came_online:
            await self._announce(user_id, online=True)
        logger.info("socket_connected", sid=sid, user_id=str(user_id))

    def _expire(self, sid: str) -> None:
        """The connection's access token has expired: tell the client, then close it; the
        client refreshes its token and connects again."""

        async def close() -> None:
            with contextlib.suppress(Exception):  # the client may be gone already
                await self.sio.emit("session:expired", {"detail": SESSION_EXPIRED_DETAIL}, to=sid)
            await self.sio.disconnect(sid)
            logger.info("socket_token_expired", sid=sid)

        task = asyncio.create_task(close())
        self.expiring.add(task)
        task.add_done_callback(self.expiring.discard)

    async def _on_disconnect(self, sid: str, *_: Any) -> None:
        timer = self.expiry_timers.pop(sid, None)
        if timer is not None:
            timer.cancel()
        user_id = self.local_connections.pop(sid, None)
        address = self.address_of.pop(sid, None)
        if address is not None:
            left = self.connections_by_address.get(address, 1) - 1
            if left > 0:
                self.connections_by_address[address] = left
            else:
                self.connections_by_address.pop(address, None)
        if user_id is None:
            return
        if self.local_users.get(user_id, 1) > 1:
            self.local_users[user_id] -= 1
        else:
            self.local_users.pop(user_id, None)
        logger.info("socket_disconnected", sid=sid, user_id=str(user_id))
        try:
            await self.presence.forget(sid)
            if await self.presence.disconnected(user_id, sid):
                await self._announce(user_id, online=False)
        except Exception as exc:
            # Redis is down: the entry expires by itself; never an unretrieved task error.
            logger.warning("presence_disconnect_failed", user_id=str(user_id), error=str(exc))

    async def _announce(self, user_id: UUID, *, online: bool) -> None:
        for listener in self.presence_listeners:
            try:
                await listener(user_id, online)
            except Exception:
                logger.exception("presence_listener_failed", user_id=str(user_id))

    async def _heartbeat(self) -> None:
        interval = max(self.settings.presence_ttl_seconds / 3, 0.5)
        while True:
            try:
                await self.presence.beat(dict(self.local_connections))
                for user_id in await self.presence.sweep():
                    await self._announce(user_id, online=False)
            except Exception:
                logger.warning("presence_heartbeat_failed", exc_info=True)
            await asyncio.sleep(interval)

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(self._heartbeat(), name="presence-heartbeat")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # A clean shutdown takes its users offline now rather than when the TTL runs out.
            for sid, user_id in list(self.local_connections.items()):
                with contextlib.suppress(Exception):
                    await self.presence.disconnected(user_id, sid)
            with contextlib.suppress(Exception):
                await self.presence.leave()
            self.local_connections.clear()
            self.local_users.clear()
