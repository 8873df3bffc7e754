"""Which routes run the cookie session and its CSRF check is said by where they are
mounted: only the page router has the two middleware, so the API, the probes, the metrics,
the documents, downloads and static files never enter them; every page has both."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler
from litestar.middleware.session import SessionMiddleware
from litestar.routes import HTTPRoute

from app.asgi import create_app
from app.config import Settings
from app.lib.sessions import SessionBoundCSRFMiddleware

BROWSER_SESSION = {SessionMiddleware, SessionBoundCSRFMiddleware}


def _handlers(settings: Settings) -> list[tuple[str, HTTPRouteHandler]]:
    app = create_app(settings)
    return [
        (route.path, handler)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
    ]


def _session_middleware(handler: HTTPRouteHandler) -> set[type]:
    entered = {getattr(layer, "middleware", layer) for layer in handler.resolve_middleware()}
    return {kind for kind in BROWSER_SESSION if kind in entered}


def test_token_routes_skip_the_session_and_csrf_and_pages_keep_them(
    migrated_database: Settings,
) -> None:
    handlers = _handlers(migrated_database)
    token_paths = ("/api/", "/health", "/metrics")
    token_routes = [handler for path, handler in handlers if path.startswith(token_paths)]
    assert token_routes
    for handler in token_routes:
        assert _session_middleware(handler) == set(), handler
    pages = [
        handler
        for path, handler in handlers
        if not path.startswith((*token_paths, "/static", "/docs", "/record"))
    ]
    assert pages
    for handler in pages:
        assert _session_middleware(handler) == BROWSER_SESSION, handler
