"""Structured logging: structlog for our lines, stdlib loggers (uvicorn, SQLAlchemy) routed
through the same renderer, and a request id bound to every line logged while a request runs.
"""

from __future__ import annotations

import logging
import logging.config
import time
import uuid
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings

REQUEST_ID_HEADER = b"x-request-id"
access_logger = structlog.get_logger("app.access")


def configure_logging(settings: Settings) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            # First, so a line below the level costs a comparison, not the whole chain.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structured": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "foreign_pre_chain": shared,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info,
                        renderer,
                    ],
                }
            },
            "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "structured"}},
            "root": {"handlers": ["default"], "level": settings.log_level},
            "loggers": {
                # Our middleware logs each request with its id; uvicorn's access log would
                # only repeat it without one.
                "uvicorn.access": {"level": "WARNING", "propagate": True},
                "uvicorn.error": {"handlers": [], "propagate": True},
                "uvicorn": {"handlers": [], "propagate": True},
                "sqlalchemy.engine": {"level": "WARNING"},
                "aiogram": {"level": settings.log_level},
                # litestar-saq 0.8 stops its HeartbeatManager's loop inside
                # run_until_complete and logs the resulting RuntimeError as "thread crashed"
                # at every worker shutdown. We do not use that manager (jobs are touched by
                # app.lib.worker.with_heartbeat), so its only line is that false alarm.
                "litestar_saq.heartbeat": {"level": "CRITICAL"},
            },
        }
    )


class RequestContextMiddleware:
    """Gives every HTTP request an id (kept from X-Request-ID when sane), binds it to the
    log context, returns it in the response headers and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            if not path.startswith(("/health", "/metrics", "/static")):
                access_logger.info(
                    "request",
                    method=scope.get("method"),
                    path=path,
                    route=scope.get("path_template"),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    client=_client_address(scope),
                )
            # user_id is bound by the bearer authentication once it knows the caller.
            structlog.contextvars.unbind_contextvars("request_id", "user_id")


def _client_address(scope: Scope) -> str | None:
    """The caller as the trusted proxy reports it (the proxy middleware rewrites the scope)."""
    client = scope.get("client")
    return client[0] if client else None


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if 8 <= len(candidate) <= 64 and all(c.isalnum() or c in "-_" for c in candidate):
                return candidate
    return None
