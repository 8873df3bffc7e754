"""One error shape for the whole application: RFC 9457 problem details.

Domains raise :class:`AppError` subclasses; Litestar's own HTTP exceptions (validation,
routing, auth) and unexpected exceptions are mapped here too. Requests for pages (HTML)
get the same information rendered as a page.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import structlog
from advanced_alchemy.exceptions import NotFoundError as RepositoryNotFoundError
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

logger = structlog.get_logger("app.errors")
PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """A failure the client can act on; carries its HTTP status and a readable detail."""

    status_code = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers


class NotFoundError(AppError):
    status_code = 404
    title = "Not found"


class ConflictError(AppError):
    status_code = 409
    title = "Conflict"


class ForbiddenError(AppError):
    status_code = 403
    title = "Forbidden"


class UnauthorizedError(AppError):
    status_code = 401
    title = "Unauthorized"


class InvalidInputError(AppError):
    status_code = 422
    title = "Unprocessable content"


class RequestTimeoutError(AppError):
    status_code = 408
    title = "Request timeout"


class PayloadTooLargeError(AppError):
    status_code = 413
    title = "Payload too large"


class UnsupportedMediaTypeError(AppError):
    status_code = 415
    title = "Unsupported media type"


class TooManyRequestsError(AppError):
    status_code = 429
    title = "Too many requests"


class UpstreamError(AppError):
    status_code = 502
    title = "Bad gateway"


class UpstreamTimeoutError(AppError):
    status_code = 504
    title = "Gateway timeout"


class ServiceUnavailableError(AppError):
    status_code = 503
    title = "Service unavailable"


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/docs", "/health", "/metrics", "/socket.io", "/record")):
        return False
    return "text/html" in request.headers.get("accept", "")


def problem_response(
    request: Request[Any, Any, Any],
    status_code: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    title = title or HTTPStatus(status_code).phrase
    if _wants_page(request):
        return Template(
            template_name="error.html",
            context={
                "status_code": status_code,
                "title": title,
                "detail": detail,
                "errors": errors,
            },
            status_code=status_code,
            headers=headers,
            media_type=MediaType.HTML,
        )
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status_code,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    return Response(body, status_code=status_code, headers=headers, media_type=PROBLEM_JSON)


# Text the schemas allow in names and titles: no control characters (NUL included, which
# PostgreSQL cannot store and SQLite would), and at least one visible character. No
# look-ahead, so schema-based generators (schemathesis) can use it.
VISIBLE_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
# Free text (descriptions): line breaks allowed, NUL not.
NO_NUL_PATTERN = r"^[^\x00]*$"
PATTERN_MESSAGES: dict[str, str] = {
    r"\S": "must contain a visible character",
    VISIBLE_TEXT_PATTERN: "must contain a visible character and no control characters "
    "(such as NUL or line breaks)",
    NO_NUL_PATTERN: "must not contain NUL characters",
}


def describe_pattern(pattern: str, message: str) -> str:
    """Register the plain words for a schema ``pattern``; returns the pattern, so a schema can
    write ``Meta(pattern=describe_pattern(r"...", "must be ..."))``."""
    PATTERN_MESSAGES[pattern] = message
    return pattern


_TYPE_WORDS = {
    "str": "text",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
    "datetime": "a date and time",
    "uuid": "a UUID",
}
_BOUND_WORDS = {">=": "at least", "<=": "at most", ">": "greater than", "<": "less than"}


def _kind(name: str) -> str:
    return _TYPE_WORDS.get(name, name)


def _plain_pattern(quoted: str) -> str:
    try:
        pattern = ast.literal_eval(quoted)
    except (ValueError, SyntaxError):
        pattern = quoted.strip("'")
    return PATTERN_MESSAGES.get(pattern, "is not in the accepted form (see the schema's pattern)")


_PLAIN: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"Expected `(\w+)` of length >= 1$"),
        lambda _: "must not be empty",
    ),
    (
        re.compile(r"Expected `(\w+)` of length (>=|<=) (\d+)$"),
        lambda m: (
            f"must be {_BOUND_WORDS[m[2]]} {m[3]} "
            + ("characters long" if m[1] == "str" else "items long")
        ),
    ),
    (
        re.compile(r"Expected `(\w+)` (>=|<=|>|<) (-?[\d.e+]+)$"),
        lambda m: f"must be {_BOUND_WORDS[m[2]]} {m[3]}",
    ),
    (re.compile(r"Expected `str` matching regex (.+)$"), lambda m: _plain_pattern(m[1])),
    (
        re.compile(r"Expected `(\w+)`, got `(\w+)`$"),
        lambda m: f"must be {_kind(m[1])}, not {_kind(m[2])}",
    ),
    (
        re.compile(r"Expected `(\w+) \| null`, got `(\w+)`$"),
        lambda m: f"must be {_kind(m[1])} or null, not {_kind(m[2])}",
    ),
    (re.compile(r"Invalid enum value (.+)$"), lambda m: f"{m[1]} is not one of the allowed values"),
    (re.compile(r"Invalid UUID$"), lambda _: "must be a UUID"),
    (
        re.compile(r"Invalid RFC3339 encoded datetime$"),
        lambda _: "must be an ISO 8601 date and time, e.g. 2026-01-31T09:30:00Z",
    ),
    (
        re.compile(r"Expected `datetime` with a timezone component$"),
        lambda _: "needs a time zone, e.g. 2026-01-31T09:30:00Z or +03:00",
    ),
    (re.compile(r"Object missing required field `(.+)`$"), lambda _: "is required"),
    (re.compile(r"Object contains unknown field `(.+)`$"), lambda _: "is not a known field"),
]
# For these, the field the message names is the one at fault (msgspec reports the object).
_NAMES_A_FIELD = re.compile(r"Object (?:missing required|contains unknown) field `(.+)`$")
_BODY_DECODING: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Input data was truncated$"), "The body is not valid JSON: it ends too early."),
    (
        re.compile(r"^JSON is malformed: (.+)$"),
        "The body is not valid JSON ({0}).",
    ),
    (re.compile(r"^Input data was not valid UTF-8"), "The body is not valid UTF-8 text."),
]


def plain_validation_message(message: str) -> str:
    """msgspec's and Litestar's validation text in plain words: "must be at most 64
    characters long" rather than "Expected `str` of length <= 64"."""
    text = re.sub(r" - at `[^`]*`$", "", message.strip())
    for pattern, words in _PLAIN:
        if match := pattern.search(text):
            return words(match)
    return text


def plain_body_message(detail: str) -> str:
    """A body the decoder could not read, in plain words."""
    for pattern, words in _BODY_DECODING:
        if match := pattern.search(detail):
            return words.format(*match.groups())
    return detail


def _error_field(item: dict[str, Any]) -> str | None:
    key = item.get("key")
    named = _NAMES_A_FIELD.search(str(item.get("message", "")))
    if named:
        parent = key if key not in (None, "", "data") else None
        return f"{parent}.{named[1]}" if parent else named[1]
    return key


def _validation_errors(exc: ValidationException) -> list[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else [exc.extra] if exc.extra else []
    return [
        {
            "field": _error_field(item),
            "source": item.get("source"),
            "message": plain_validation_message(str(item.get("message", ""))),
        }
        if isinstance(item, dict)
        else {"message": plain_validation_message(str(item))}
        for item in extra
    ]


def handle_app_error(request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
    return problem_response(
        request,
        exc.status_code,
        exc.detail,
        title=exc.title,
        errors=exc.errors,
        headers=exc.headers,
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        errors = _validation_errors(exc)
        # Litestar reports unparsable bodies as 400 and invalid fields as 400 too; a body
        # that parsed but broke a constraint is 422 for our clients.
        status = 422 if errors and any(e.get("field") for e in errors) else 400
        detail = "; ".join(
            f"{e['field']}: {e['message']}" if e.get("field") else str(e.get("message"))
            for e in errors
        ) or str(exc.detail)
        return problem_response(request, status, detail, title="Invalid request", errors=errors)
    if exc.status_code >= 500:
        logger.error("http_exception", status=exc.status_code, detail=exc.detail)
    detail = str(exc.detail)
    if exc.status_code == 400:
        detail = plain_body_message(detail)
    return problem_response(request, exc.status_code, detail, headers=exc.headers)


def _is_outage(exc: BaseException) -> bool:
    """A dependency (database, Redis) is down or unreachable, rather than a bug of ours."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        RedisConnectionError
        | RedisTimeoutError
        | OperationalError
        | InterfaceError
        | PoolTimeoutError
        | ConnectionError
        | TimeoutError,
    )


def _is_unstorable_value(exc: BaseException) -> bool:
    """The database refused a value (a NUL character, a number out of range): bad input
    that slipped past the schema, so a 422 rather than a 500."""
    from asyncpg.exceptions import DataError as PostgresDataError
    from sqlalchemy.exc import DataError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DataError | PostgresDataError):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def handle_unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if _is_unstorable_value(exc):
        logger.info("unstorable_value", exc_type=type(exc).__name__)
        return problem_response(
            request,
            422,
            "A value cannot be stored: text must not contain NUL characters and numbers "
            "must fit their documented range.",
            title="Unprocessable content",
        )
    if _is_outage(exc):
        logger.warning("dependency_unavailable", exc_type=type(exc).__name__, error=str(exc))
        return problem_response(
            request,
            503,
            "A backing service (database or Redis) is unavailable; try again shortly.",
            headers={"Retry-After": "5"},
        )
    logger.exception("unhandled_exception", exc_type=type(exc).__name__)
    return problem_response(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "An unexpected error occurred; it has been logged with this request's id.",
    )


def handle_repository_not_found(
    request: Request[Any, Any, Any], exc: RepositoryNotFoundError
) -> Response[Any]:
    """advanced-alchemy's look-up of a missing row (a service's ``get``): our 404."""
    return handle_app_error(request, NotFoundError(exc.detail))


exception_handlers: dict[Any, Any] = {
    AppError: handle_app_error,
    RepositoryNotFoundError: handle_repository_not_found,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected_error,
}


def problem_body(
    status_code: int,
    detail: str,
    *,
    title: str | None = None,
    instance: str = "",
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The problem+json body REST answers, for transports without HTTP (Socket.IO acks)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = errors
    return body


def as_app_error(exc: BaseException) -> AppError | None:
    """The client-facing error an unexpected exception amounts to (an unstorable value,
    a dependency outage), as :func:`handle_unexpected_error` answers it; None for a bug."""
    if isinstance(exc, AppError):
        return exc
    if _is_unstorable_value(exc):
        return InvalidInputError(
            "A value cannot be stored: text must not contain NUL characters and numbers "
            "must fit their documented range."
        )
    if _is_outage(exc):
        return ServiceUnavailableError(
            "A backing service (database or Redis) is unavailable; try again shortly.",
            headers={"Retry-After": "5"},
        )
    return None
