"""ALLOWED_HOSTS: requests naming another host in their Host header are refused.

Litestar's ``AllowedHostsConfig`` does the same matching, but answers outside the
application's error handling (a bare ``{"message": ...}``); this one raises, so the client
gets the one problem shape (a page for browsers).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from app.lib.errors import AppError

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send


class UnknownHostError(AppError):
    status_code = 400
    title = "Unknown host"


def allowed_hosts_pattern(hosts: tuple[str, ...]) -> re.Pattern[str]:
    """``example.org`` exactly, ``*.example.org`` any subdomain; an optional port."""
    alternatives = [
        rf"[^.]+(?:\.[^.]+)*\.{re.escape(host[2:])}" if host.startswith("*.") else re.escape(host)
        for host in hosts
    ]
    return re.compile(rf"(?:{'|'.join(alternatives)})(?::\d+)?", re.IGNORECASE)


class AllowedHostsMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)
    # Kubernetes probes and Prometheus call a pod by its address, not by the public name.
    exclude_path_pattern = ("^/health", "^/metrics")

    def __init__(self, hosts: tuple[str, ...]) -> None:
        self.pattern = allowed_hosts_pattern(hosts)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        host = MutableScopeHeaders(scope=scope).get("host", "")
        if not self.pattern.fullmatch(host):
            raise UnknownHostError(
                "This server does not answer for the host named in the request's Host header."
            )
        await next_app(scope, receive, send)
