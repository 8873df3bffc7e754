"""Bearer authentication: short-lived JWT access tokens, the token class and middleware that
Litestar's JWT backend (``litestar.security.jwt.JWTAuth``, built in the accounts domain)
checks them with.

Shared because both the REST API and the Socket.IO connection handshake accept the same
access token, decoded by one path (:func:`decode_access_claims`). Tokens are HS256-signed
with SECRET_KEY; decoding pins the algorithm, so a token claiming ``alg: none`` or another
algorithm is refused, as is one signed with another key, expired, or missing a claim.

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
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from uuid import UUID

import jwt
import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AuthenticationResult
from litestar.security.jwt import JWTAuthenticationMiddleware, Token
from litestar.security.jwt.token import JWTDecodeOptions
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.lib.errors import UnauthorizedError
from app.lib.ids import new_uuid7

logger = structlog.get_logger("app.auth")

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
REQUIRED_CLAIMS = ["exp", "iat", "sub", "typ", "jti"]
# The route option with which a route needs no access token (JWTAuth's ``exclude_opt_key``):
# every other route of the application is for signed-in users only.
EXCLUDE_FROM_AUTH = "exclude_from_auth"
PUBLIC_ROUTE: dict[str, Any] = {EXCLUDE_FROM_AUTH: True}


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


@dataclass
class AccessClaims(Token):
    """A verified access token, as Litestar's JWT backend hands it to the application (its
    ``token_cls``): who it speaks for, until when, and for which sign-in session. Decoding
    refuses a token signed with the key but of another ``typ`` with its own 401 detail."""

    typ: str = ACCESS_TOKEN_TYPE
    # The sign-in session; None only in tokens made without one (tests, older tokens).
    sid: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        UUID(self.sub)  # a ValueError here is msgspec's ValidationError: "not valid"
        if self.sid is not None:
            UUID(self.sid)

    @property
    def user_id(self) -> UUID:
        return UUID(self.sub)

    @property
    def session_id(self) -> UUID | None:
        return UUID(self.sid) if self.sid is not None else None

    @property
    def expires_at(self) -> float:
        """Seconds since the epoch."""
        return self.exp.timestamp()

    @classmethod
    def decode_payload(
        cls,
        encoded_token: str,
        secret: str,
        algorithms: list[str],
        issuer: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        options: JWTDecodeOptions | None = None,
    ) -> Any:
        try:
            payload = super().decode_payload(
                encoded_token, secret, algorithms, issuer, audience, options
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("The access token has expired; refresh it.") from exc
        except jwt.InvalidTokenError as exc:
            raise UnauthorizedError("The access token is not valid.") from exc
        if payload.get("typ") != ACCESS_TOKEN_TYPE:
            raise UnauthorizedError("The token is not an access token.")
        return payload

    @classmethod
    def decode(
        cls,
        encoded_token: str,
        secret: str,
        algorithm: str,
        audience: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        require_claims: Sequence[str] | None = None,
        verify_exp: bool = True,
        verify_nbf: bool = True,
        strict_audience: bool = False,
    ) -> Self:
        """The verified claims, from :data:`_verified_tokens` after the first time."""
        claims = _verified_tokens.get(secret, encoded_token)
        if not isinstance(claims, cls):
            try:
                claims = super().decode(
                    encoded_token,
                    secret,
                    algorithm,
                    audience,
                    issuer,
                    require_claims,
                    verify_exp,
                    verify_nbf,
                    strict_audience,
                )
            except NotAuthorizedException as exc:  # Litestar's "Invalid token": a bad claim
                raise UnauthorizedError("The access token is not valid.") from exc
            _verified_tokens.put(secret, encoded_token, claims)
        return claims


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
        self._claims: dict[tuple[str, str], tuple[float, AccessClaims]] = {}

    def get(self, secret_key: str, token: str) -> AccessClaims | None:
        entry = self._claims.get((secret_key, token))
        if entry is None:
            return None
        if entry[0] <= time.time():
            del self._claims[(secret_key, token)]
            raise UnauthorizedError("The access token has expired; refresh it.")
        return entry[1]

    def put(self, secret_key: str, token: str, claims: AccessClaims) -> None:
        if len(self._claims) >= self.max_entries:
            self._claims.clear()  # rare; cheaper than tracking the oldest
        self._claims[(secret_key, token)] = (claims.expires_at, claims)


_verified_tokens = _VerifiedTokens()


def decode_access_claims(secret_key: str, token: str) -> AccessClaims:
    """Who an access token speaks for and until when; :class:`UnauthorizedError` when it is
    not valid. The one decoding path of REST, Socket.IO and the write limiter."""
    return AccessClaims.decode(token, secret_key, ALGORITHM, require_claims=REQUIRED_CLAIMS)


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
    """The sign-in session of the authenticated request (its token is ``connection.auth``)."""
    claims = connection.scope.get("auth")
    return claims.session_id if isinstance(claims, AccessClaims) else None


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


class BearerTokenMiddleware(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware with this application's answers: the 401 details and
    ``WWW-Authenticate`` of :func:`bearer_token`, the revoked sessions checked before the
    account is read (a signed-out token costs no query), and "no longer exists" when the
    backend's ``retrieve_user_handler`` finds no account. ``connection.auth`` is the
    :class:`AccessClaims`."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(connection.headers.get(self.auth_header))
        return await self.authenticate_token(token, connection)

    async def authenticate_token(
        self, encoded_token: str, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        state = connection.app.state
        revocations = SessionRevocations(state.redis, state.settings.access_token_ttl_seconds)
        claims = await check_access_token(self.token_secret, encoded_token, revocations)
        user = await self.retrieve_user_handler(claims, connection)
        if user is None:
            raise UnauthorizedError("The account of this token no longer exists.")
        # Every line logged for the rest of the request (the access line included) says whose.
        structlog.contextvars.bind_contextvars(user_id=claims.sub)
        return AuthenticationResult(user=user, auth=claims)
