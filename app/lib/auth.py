"""Bearer authentication: short-lived JWT access tokens and the middleware that checks them.

Shared because both the REST API and the Socket.IO connection handshake accept the same
access token. Tokens are HS256-signed with SECRET_KEY; decoding pins the algorithm, so a
token claiming ``alg: none`` or another algorithm is refused, as is one signed with another
key, expired, or missing a claim.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Method, Scopes

from app.lib.errors import UnauthorizedError
from app.lib.ids import new_uuid7

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
REQUIRED_CLAIMS = ["exp", "iat", "sub", "typ", "jti"]


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


def issue_access_token(secret_key: str, user_id: UUID, ttl_seconds: int) -> AccessToken:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "typ": ACCESS_TOKEN_TYPE,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": str(new_uuid7()),
    }
    return AccessToken(jwt.encode(claims, secret_key, algorithm=ALGORITHM), ttl_seconds)


@dataclass(frozen=True)
class AccessClaims:
    user_id: UUID
    expires_at: float  # seconds since the epoch


def decode_access_token(secret_key: str, token: str) -> UUID:
    """The user id an access token speaks for; :class:`UnauthorizedError` when it is not valid."""
    return decode_access_claims(secret_key, token).user_id


def decode_access_claims(secret_key: str, token: str) -> AccessClaims:
    """Who an access token speaks for and until when; :class:`UnauthorizedError` when it is
    not valid."""
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
        return AccessClaims(UUID(str(claims["sub"])), float(claims["exp"]))
    except ValueError as exc:
        raise UnauthorizedError("The access token is not valid.") from exc


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
        settings = connection.app.state.settings
        user_id = decode_access_token(settings.secret_key, token)
        user = await self.load_user(connection, user_id)
        if user is None:
            raise UnauthorizedError("The account of this token no longer exists.")
        return AuthenticationResult(user=user, auth=token)
