"""One error shape for the whole application: RFC 9457 problem details.

Domains raise :class:`AppError` subclasses of Litestar's ``ProblemDetailsException``,
answered by Litestar's ``ProblemDetailsPlugin``. What Litestar lacks is here: its own HTTP
exceptions (validation, routing) translated into plain words, and the errors of our
dependencies (an outage is a 503, a value the database refuses a 422). The page routers
render the same problem as the error page (``page_exception_handlers``).
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
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from litestar.response import Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

logger = structlog.get_logger("app.errors")
PROBLEM_JSON = "application/problem+json"


class AppError(ProblemDetailsException):
    """A failure the client can act on: Litestar's problem-details exception with our
    defaults (``type`` about:blank, the class's status and title, ``instance`` the path)."""

    status_code = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        status_code: int | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(
            detail,
            detail=detail,
            status_code=status_code,
            headers=headers,
            extra={"errors": errors} if errors else None,
            type_="about:blank",
            title=title or type(self).title,
        )
        self.errors = errors

    def to_response(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        if self.instance is None:
            self.instance = request.url.path
        return super().to_response(request)


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


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _error_page(problem: AppError) -> Response[Any]:
    return Template(
        template_name="error.html",
        context={
            "status_code": problem.status_code,
            "title": problem.title,
            "detail": problem.detail,
            "errors": problem.errors,
        },
        status_code=problem.status_code,
        headers=problem.headers,
        media_type=MediaType.HTML,
    )


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


def _from_http_exception(exc: HTTPException) -> AppError:
    """Litestar's own HTTP exceptions (routing, validation, body decoding) as our problems."""
    if isinstance(exc, ValidationException):
        errors = _validation_errors(exc)
        # Litestar reports unparsable bodies as 400 and invalid fields as 400 too; a body
        # that parsed but broke a constraint is 422 for our clients.
        status = 422 if errors and any(e.get("field") for e in errors) else 400
        detail = "; ".join(
            f"{e['field']}: {e['message']}" if e.get("field") else str(e.get("message"))
            for e in errors
        ) or str(exc.detail)
        return AppError(detail, status_code=status, title="Invalid request", errors=errors)
    if exc.status_code >= 500:
        logger.error("http_exception", status=exc.status_code, detail=exc.detail)
    detail = str(exc.detail)
    if exc.status_code == 400:
        detail = plain_body_message(detail)
    return AppError(
        detail,
        status_code=exc.status_code,
        title=HTTPStatus(exc.status_code).phrase,
        headers=exc.headers,
    )


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


OUTAGE = "A backing service (database or Redis) is unavailable; try again shortly."
RETRY_SOON = {"Retry-After": "5"}
UNSTORABLE_VALUE = (
    "A value cannot be stored: text must not contain NUL characters and numbers "
    "must fit their documented range."
)


def as_problem(exc: Exception) -> AppError:
    """The problem any exception amounts to for the client: ours as raised, Litestar's
    translated, a refused value 422, an outage 503, anything else a logged 500."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, HTTPException):
        return _from_http_exception(exc)
    if isinstance(exc, RepositoryNotFoundError):  # a repository service's ``get``
        return NotFoundError(exc.detail)
    if _is_unstorable_value(exc):
        logger.info("unstorable_value", exc_type=type(exc).__name__)
        return InvalidInputError(UNSTORABLE_VALUE)
    if _is_outage(exc):
        logger.warning("dependency_unavailable", exc_type=type(exc).__name__, error=str(exc))
        return ServiceUnavailableError(
            OUTAGE, headers=dict(RETRY_SOON), title=HTTPStatus.SERVICE_UNAVAILABLE.phrase
        )
    logger.exception("unhandled_exception", exc_type=type(exc).__name__)
    return AppError(
        "An unexpected error occurred; it has been logged with this request's id.",
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        title=HTTPStatus.INTERNAL_SERVER_ERROR.phrase,
    )


def problem_json(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The application's exception handler: problem+json. A request no route answered
    (an unknown path, a wrong method) has no controller to choose HTML for it, so there
    the browser's Accept header does."""
    problem = as_problem(exc)
    if "route_handler" not in request.scope and _wants_html(request):
        return _error_page(problem)
    return problem.to_response(request)


def problem_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The pages' exception handler: the error page for a browser, problem+json for a
    script that asked for JSON."""
    problem = as_problem(exc)
    return _error_page(problem) if _wants_html(request) else problem.to_response(request)


def problem_details_plugin() -> ProblemDetailsPlugin:
    """Litestar's problem-details plugin answering our :class:`AppError` and, through the
    same translation, Litestar's HTTP exceptions and unexpected ones."""
    return ProblemDetailsPlugin(ProblemDetailsConfig(exception_handler=problem_json))


# The handlers Litestar has no equivalent for: its HTTP exceptions in our words (plain
# validation messages, 400/422 split) and the errors of our dependencies (outages, refused
# values). The plugin registers the one for AppError.
exception_handlers: dict[Any, Any] = {HTTPException: problem_json, Exception: problem_json}
# Given to the page routers: the same problems, rendered as the error page for browsers.
page_exception_handlers: dict[Any, Any] = {
    ProblemDetailsException: problem_page,
    HTTPException: problem_page,
    Exception: problem_page,
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
    a dependency outage), as :func:`as_problem` answers it; None for a bug."""
    if isinstance(exc, AppError):
        return exc
    if _is_unstorable_value(exc):
        return InvalidInputError(UNSTORABLE_VALUE)
    if _is_outage(exc):
        return ServiceUnavailableError(OUTAGE, headers=dict(RETRY_SOON))
    return None
