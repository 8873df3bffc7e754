"""Bearer authentication: short-lived JWT access tokens and the middleware that checks them.

Shared because both the REST API and the Socket.IO connection handshake accept the same
access token. Tokens are HS256-signed with SECRET_KEY; decoding pins the algorithm, so a
token claiming ``alg: none`` or another algorithm is refused, as is one signed with another
key, expired, or missing a claim.

An access token names the sign-in session it belongs to (``sid``). Logging out or revoking
a session puts its id in a Redis set for as long as an access token can live
(:class:`SessionRevocations`), so the session's access tokens are refused at once rather than
when they expire. Each process also keeps the revoked ids in memory, fed by a Redis pub/sub
channel (:class:`RevokedSessionFeed`), so checking a token costs no Redis round trip; while
that subscription is down, every check asks Redis again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
import structlog
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Method, Scopes
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.lib.errors import UnauthorizedError
from app.lib.ids import new_uuid7

logger = structlog.get_logger("app.auth")

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
REQUIRED_CLAIMS = ["exp", "iat", "sub", "typ", "jti"]
SESSION_STATE_KEY = "auth_session_id"


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


def issue_access_token(
    secret_key: str, user_id: UUID, ttl_seconds: int, *, session_id: UUID | None = None
) -> AccessToken:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "typ": ACCESS_TOKEN_TYPE,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": str(new_uuid7()),
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    return AccessToken(jwt.encode(claims, secret_key, algorithm=ALGORITHM), ttl_seconds)


@dataclass(frozen=True)
class AccessClaims:
    user_id: UUID
    expires_at: float  # seconds since the epoch
    # The sign-in session; None only in tokens made without one (tests, older tokens).
    session_id: UUID | None = None


def decode_access_token(secret_key: str, token: str) -> UUID:
    """The user id an access token speaks for; :class:`UnauthorizedError` when it is not valid."""
    return decode_access_claims(secret_key, token).user_id


class _VerifiedTokens:
    """Claims of access tokens whose signature was checked already, keyed by the exact token
    and key: a client presents the same token for its whole life, and checking an HS256
    signature (PyJWT parses the key each time) is most of what decoding costs. Expiry is
    still checked on every use."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._claims: dict[tuple[str, str], AccessClaims] = {}

    def get(self, secret_key: str, token: str) -> AccessClaims | None:
        claims = self._claims.get((secret_key, token))
        if claims is not None and claims.expires_at <= time.time():
            del self._claims[(secret_key, token)]
            raise UnauthorizedError("The access token has expired; refresh it.")
        return claims

    def put(self, secret_key: str, token: str, claims: AccessClaims) -> None:
        if len(self._claims) >= self.max_entries:
            self._claims.clear()  # rare; cheaper than tracking the oldest
        self._claims[(secret_key, token)] = claims


_verified_tokens = _VerifiedTokens()


def decode_access_claims(secret_key: str, token: str) -> AccessClaims:
    """Who an access token speaks for and until when; :class:`UnauthorizedError` when it is
    not valid."""
    claims = _verified_tokens.get(secret_key, token)
    if claims is None:
        claims = _verify_access_token(secret_key, token)
        _verified_tokens.put(secret_key, token, claims)
    return claims


def _verify_access_token(secret_key: str, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token, secret_key, algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS}
        )
    except jwt.ExpiredSignatureError as exc:
        raise UnauthorizedError("The access token has expired; refresh it.") from exc
    except jwt.InvalidTokenError as exc:
        raise UnauthorizedError("The access token is not valid.") from exc
    if claims.get("typ") != ACCESS_TOKEN_TYPE:
        raise UnauthorizedError("The token is not an access token.")
    try:
        session = claims.get("sid")
        return AccessClaims(
            UUID(str(claims["sub"])),
            float(claims["exp"]),
            UUID(str(session)) if session is not None else None,
        )
    except ValueError as exc:
        raise UnauthorizedError("The access token is not valid.") from exc


class RevokedSessionFeed:
    """This process's copy of the revoked sessions, kept current by a Redis subscription.

    It is trusted only while ``live``: subscribed, the ids already in Redis loaded after the
    subscription was confirmed (so none published in between is missed), and the connection
    answering pings. A revocation in any process publishes its ids, and the revoking process
    adds them here before it answers, so the next request to any process is refused.
    """

    CHANNEL = "auth:revoked-sessions"
    PING_SECONDS = 5.0
    RETRY_SECONDS = 1.0

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.live = False
        self._revoked: dict[UUID, float] = {}  # session id -> when its entry may go

    def __contains__(self, session_id: UUID) -> bool:
        return session_id in self._revoked

    def add(self, session_ids: Iterable[UUID], ttl_seconds: float | None = None) -> None:
        now = time.monotonic()
        until = now + (self.ttl_seconds if ttl_seconds is None else ttl_seconds)
        if len(self._revoked) > 10_000:  # rare: forget entries no token can outlive
            self._revoked = {sid: end for sid, end in self._revoked.items() if end > now}
        for session_id in session_ids:
            self._revoked[session_id] = max(until, self._revoked.get(session_id, 0.0))

    @contextlib.asynccontextmanager
    async def running(self, _app: object = None) -> AsyncIterator[None]:
        """A lifespan: follow the channel until the application stops."""
        _feeds[self.redis] = self
        task = asyncio.create_task(self._follow(), name="revoked-session-feed")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            _feeds.pop(self.redis, None)

    async def _follow(self) -> None:
        while True:
            try:
                await self._subscribe_and_listen()
            except Exception as exc:  # Redis down or restarting: ask it per request meanwhile
                logger.warning("revoked_session_feed_down", error=type(exc).__name__)
            finally:
                self.live = False
            await asyncio.sleep(self.RETRY_SECONDS)

    async def _subscribe_and_listen(self) -> None:
        async with self.redis.pubsub() as pubsub:
            await pubsub.subscribe(self.CHANNEL)
            while (await pubsub.get_message(timeout=self.PING_SECONDS) or {}).get(
                "type"
            ) != "subscribe":
                pass
            await self._load_stored()
            self.live = True
            waiting_for_pong = False
            while True:
                message = await pubsub.get_message(timeout=self.PING_SECONDS)
                if message is None:
                    if waiting_for_pong:  # a connection that went quiet may have lost some
                        raise TimeoutError("no answer on the revocation channel")
                    await pubsub.ping()
                    waiting_for_pong = True
                elif message["type"] == "pong":
                    waiting_for_pong = False
                elif message["type"] == "message":
                    self.add(_session_ids(message["data"]))

    async def _load_stored(self) -> None:
        keys = [key async for key in self.redis.scan_iter(match=f"{SessionRevocations.PREFIX}*")]
        if not keys:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.pttl(key)
            ttls = await pipe.execute()
        for key, ttl_ms in zip(keys, ttls, strict=True):
            name = key.decode() if isinstance(key, bytes) else str(key)
            self.add(_session_ids(name.removeprefix(SessionRevocations.PREFIX)), ttl_ms / 1000)


# The feed of each Redis client whose application runs one (see RevokedSessionFeed.running).
_feeds: weakref.WeakKeyDictionary[Redis, RevokedSessionFeed] = weakref.WeakKeyDictionary()


def feed_of(redis: Redis) -> RevokedSessionFeed | None:
    """The running feed of the application that uses this Redis client, if any."""
    return _feeds.get(redis)


def _session_ids(data: bytes | str) -> list[UUID]:
    text = data.decode() if isinstance(data, bytes) else data
    ids = []
    for part in text.split(","):
        with contextlib.suppress(ValueError):
            ids.append(UUID(part))
    return ids


class SessionRevocations:
    """Ids of revoked sign-in sessions, kept in Redis for as long as one of their access
    tokens can still be unexpired (every replica sees them at once)."""

    PREFIX = "auth:revoked-session:"
    SOCKETS_PREFIX = "auth:session-sockets:"

    def __init__(self, redis: Redis, access_token_ttl_seconds: int) -> None:
        self.redis = redis
        # A few seconds more than a token's life, for clocks that differ between replicas.
        self.ttl_seconds = access_token_ttl_seconds + 30

    async def revoke(self, session_ids: Iterable[UUID]) -> None:
        ids = list(session_ids)
        if not ids:
            return
        feed = _feeds.get(self.redis)
        if feed is not None:  # this process refuses them before the call returns
            feed.add(ids)
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.set(f"{self.PREFIX}{session_id}", "1", ex=self.ttl_seconds)
            pipe.publish(RevokedSessionFeed.CHANNEL, ",".join(str(sid) for sid in ids))
            await pipe.execute()

    async def remember_socket(self, session_id: UUID | None, sid: str) -> None:
        """Records that Socket.IO connection ``sid`` was opened with a token of this session,
        so that revoking the session can close it (see :meth:`sockets_of`). For the
        Socket.IO handshake to call once it has accepted the token."""
        if session_id is None:
            return
        key = f"{self.SOCKETS_PREFIX}{session_id}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(key, sid)
            pipe.expire(key, self.ttl_seconds)
            await pipe.execute()

    async def sockets_of(self, session_ids: Iterable[UUID]) -> set[str]:
        """The Socket.IO connection ids opened with tokens of these sessions (some may be
        closed already)."""
        found: set[str] = set()
        for session_id in session_ids:
            for sid in await self.redis.smembers(f"{self.SOCKETS_PREFIX}{session_id}"):
                found.add(sid.decode() if isinstance(sid, bytes) else str(sid))
        return found

    async def is_revoked(self, session_id: UUID | None) -> bool:
        """Whether the session was revoked. With Redis unreachable the answer is False
        (logged): a signed, unexpired token keeps working for the rest of its short life
        rather than every signed-in request failing during the outage."""
        if session_id is None:
            return False
        feed = _feeds.get(self.redis)
        if feed is not None and feed.live:
            return session_id in feed
        try:
            return bool(await self.redis.exists(f"{self.PREFIX}{session_id}"))
        except (RedisError, OSError) as exc:
            logger.warning("session_revocation_check_unavailable", error=type(exc).__name__)
            return False


async def check_access_token(
    secret_key: str, token: str, revocations: SessionRevocations
) -> AccessClaims:
    """The claims of a token that is valid and whose session is not revoked; 401 otherwise.
    The Socket.IO handshake should use this too (it needs the same answer as REST)."""
    claims = decode_access_claims(secret_key, token)
    if await revocations.is_revoked(claims.session_id):
        raise UnauthorizedError("This session has been signed out; sign in again.")
    return claims


def session_id_of(connection: ASGIConnection[Any, Any, Any, Any]) -> UUID | None:
    """The sign-in session of the authenticated request (set by the bearer middleware)."""
    value = connection.scope.get("state", {}).get(SESSION_STATE_KEY)
    return value if isinstance(value, UUID) else None


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise UnauthorizedError(
            "Authentication required: send 'Authorization: Bearer <access token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError(
            "The Authorization header must be 'Bearer <access token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


UserLoader = Callable[[ASGIConnection[Any, Any, Any, Any], UUID], Awaitable[Any | None]]


class BearerAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Puts the authenticated user on ``request.user``; 401 problem details otherwise.

    ``load_user`` (given by the accounts domain) turns the token's subject into the user, so
    a token of an account that no longer exists is refused too.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        load_user: UserLoader,
        exclude: str | list[str] | None = None,
        exclude_from_auth_key: str = "exclude_from_auth",
        exclude_http_methods: Sequence[Method] | None = None,
        scopes: Scopes | None = None,
    ) -> None:
        super().__init__(app, exclude, exclude_from_auth_key, exclude_http_methods, scopes)
        self.load_user = load_user

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(connection.headers.get("authorization"))
        state = connection.app.state
        revocations = SessionRevocations(state.redis, state.settings.access_token_ttl_seconds)
        claims = await check_access_token(state.settings.secret_key, token, revocations)
        user = await self.load_user(connection, claims.user_id)
        if user is None:
            raise UnauthorizedError("The account of this token no longer exists.")
        connection.scope.setdefault("state", {})[SESSION_STATE_KEY] = claims.session_id
        # Every line logged for the rest of the request (the access line included) says whose.
        structlog.contextvars.bind_contextvars(user_id=str(claims.user_id))
        return AuthenticationResult(user=user, auth=token)
