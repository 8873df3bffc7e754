"""Prometheus request metrics at a fraction of the plugin middleware's cost per request.

Litestar's ``PrometheusMiddleware`` builds a ``Request``, its URL and a labels dict on every
call and looks each metric's child up by its label values four times. This one reads the
method and route template straight from the ASGI scope and keeps the children per
(method, route template, status). The metrics, their names, labels and values are the same
(``<prefix>_requests_total``, ``_request_duration_seconds``, ``_requests_in_progress``,
``_requests_error_total``; labels ``method``, ``path``, ``status_code``, ``app_name``),
except that a request that ends in an exception is counted with the status its handler
answers instead of 200.
"""

from __future__ import annotations

import time
from typing import Any

from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ASGIApp, Message, Receive, Scope, Send

# The route option by which a route stays out of the request metrics (the scrape itself,
# static files): PrometheusConfig.exclude_opt_key.
METRICS_OPT_OUT = "exclude_from_metrics"


class LeanPrometheusMiddleware(PrometheusMiddleware):
    """The plugin's middleware with the per-request work cut to dictionary look-ups.
    Falls back to the plugin's own code for what it does not cover (extra labels,
    exemplars, excluded methods)."""

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._plain = not (config.labels or config.exemplars or config.excluded_http_methods)
        template: dict[str, str | int | float] = {
            "method": "",
            "path": "",
            "status_code": 200,
            "app_name": config.app_name,
        }
        # The plugin creates each metric once per process, named by the labels it is given.
        self._count = self.request_count(template)
        self._time = self.request_time(template)
        self._in_progress = self.requests_in_progress(template)
        self._errors = self.requests_error_count(template)
        self._finished: dict[tuple[str, str, int], tuple[Any, Any, Any | None]] = {}
        self._running: dict[tuple[str, str], Any] = {}

    def _running_child(self, method: str, path: str) -> Any:
        child = self._running.get((method, path))
        if child is None:
            # The plugin labels the in-progress gauge with status 200, as it is unknown yet.
            child = self._in_progress.labels(method, path, 200, self._config.app_name)
            self._running[(method, path)] = child
        return child

    def _finished_children(self, method: str, path: str, status: int) -> tuple[Any, Any, Any]:
        children = self._finished.get((method, path, status))
        if children is None:
            values = (method, path, status, self._config.app_name)
            children = (
                self._count.labels(*values),
                self._time.labels(*values),
                self._errors.labels(*values) if status >= HTTP_500_INTERNAL_SERVER_ERROR else None,
            )
            self._finished[(method, path, status)] = children
        return children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._plain:
            await super().__call__(scope, receive, send)
            return
        method = str(scope.get("method", scope["type"]))  # a websocket has none: its type
        path: str = scope["path_template"] if self._config.group_path else scope["path"]
        started = time.perf_counter()
        status = 200
        duration = 0.0

        async def timed_send(message: Message) -> None:
            nonlocal status, duration
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                duration = time.perf_counter() - started
            await send(message)

        running = self._running_child(method, path)
        running.inc()
        try:
            await self.app(scope, receive, timed_send)
        except Exception as exc:
            # Answered by the exception handlers outside this middleware (a 401 of the
            # bearer authentication, a 404, a crash): count the status they will send,
            # where the plugin counted 200.
            code = getattr(exc, "status_code", None)  # HTTP exceptions; others are 5xx
            status = code if isinstance(code, int) else HTTP_500_INTERNAL_SERVER_ERROR
            duration = time.perf_counter() - started
            raise
        finally:
            running.dec()
            count, timing, errors = self._finished_children(method, path, status)
            if errors is not None:
                errors.inc()
            count.inc()
            timing.observe(duration)
