"""Which routes run the cookie session and its CSRF check is said by route options: the API,
the probes and the metrics opt out; every page keeps both."""

from __future__ import annotations

from litestar.routes import HTTPRoute

from app.asgi import NO_BROWSER_SESSION, create_app
from app.config import Settings


def _handlers(settings: Settings) -> list[tuple[str, dict[str, object]]]:
    app = create_app(settings)
    return [
        (route.path, handler.opt)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
    ]


def test_token_routes_skip_the_session_and_csrf_and_pages_keep_them(
    migrated_database: Settings,
) -> None:
    handlers = _handlers(migrated_database)
    token_paths = ("/api/", "/health", "/metrics")
    token_routes = [opt for path, opt in handlers if path.startswith(token_paths)]
    assert token_routes
    for opt in token_routes:
        assert {key: opt.get(key) for key in NO_BROWSER_SESSION} == NO_BROWSER_SESSION
    pages = [
        opt for path, opt in handlers if not path.startswith((*token_paths, "/static", "/docs"))
    ]
    assert any(True for _ in pages)
    for opt in pages:
        assert not any(opt.get(key) for key in NO_BROWSER_SESSION)
