"""Bearer authentication: short-lived JWT access tokens and the middleware that checks them.

Shared because both the REST API and the Socket.IO connection handshake accept the same
access token. Tokens are HS256-signed with SECRET_KEY; decoding pins the algorithm, so a
token claiming ``alg: none`` or another algorithm is refused, as is one signed with another
key, expired, or missing a claim.

An access token names the sign-in session it belongs to (``sid``). Logging out or revoking
a session puts its id in a Redis set for as long as an access token can live
(:class:`SessionRevocations`), so the session's access tokens are refused at once rather than
when they expire.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
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
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.set(f"{self.PREFIX}{session_id}", "1", ex=self.ttl_seconds)
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
