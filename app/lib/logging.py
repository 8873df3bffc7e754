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
from litestar.types import Scope

from app.config import Settings

REQUEST_ID_HEADER = b"x-request-id"
# The route option by which a route writes no access line (probes, scrapes, static files).
ACCESS_LOG_OPT_OUT = "skip_access_log"
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


def bind_request_id(scope: Scope) -> str:
    """This HTTP request's id (kept from X-Request-ID when sane), bound to the log context
    for every line logged while it runs."""
    request_id = _incoming_request_id(scope) or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


def log_request(scope: Scope, status: int, started: float) -> None:
    """The request's one access line (none for a route with the ``ACCESS_LOG_OPT_OUT``
    option), and the end of its log context."""
    route_handler = scope.get("route_handler")
    if route_handler is None or not route_handler.opt.get(ACCESS_LOG_OPT_OUT):
        access_logger.info(
            "request",
            method=scope.get("method"),
            path=scope.get("path", ""),
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
