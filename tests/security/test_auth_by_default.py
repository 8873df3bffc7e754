"""Every route needs an access token unless it says it is public: the authentication is
Litestar's JWT backend at the application level, and a route opts out with the route option
``PUBLIC_ROUTE``. A controller that forgets to choose is for signed-in users only (it was
public when each controller had to list the bearer middleware), and the OpenAPI document
marks exactly the routes that need a token.
"""

from __future__ import annotations

from typing import Any

import httpx
from litestar import Litestar, get
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.domain.accounts.authentication import BEARER_SCHEME, create_bearer_auth
from app.lib.auth import EXCLUDE_FROM_AUTH, PUBLIC_ROUTE
from app.lib.errors import exception_handlers


@get("/forgotten", sync_to_thread=False)
def forgotten() -> str:
    return "secret"


@get("/open", opt=PUBLIC_ROUTE, sync_to_thread=False)
def open_route() -> str:
    return "hello"


async def test_a_route_that_does_not_say_it_is_public_refuses_an_anonymous_caller(
    migrated_database: Settings,
) -> None:
    backend = create_bearer_auth(migrated_database)
    app = Litestar(
        route_handlers=[forgotten, open_route],
        middleware=[backend.middleware],
        exception_handlers=exception_handlers,
    )
    async with AsyncTestClient(app) as client:
        refused = await client.get("/forgotten")
        opened = await client.get("/open")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "secret" not in refused.text
    assert (opened.status_code, opened.text) == (200, "hello")


def _documented_security(schema: dict[str, Any]) -> dict[tuple[str, str], bool]:
    return {
        (path, method.upper()): any(BEARER_SCHEME in item for item in operation.get("security", []))
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete", "head"}
    }


async def test_the_docs_mark_exactly_the_routes_that_need_a_token(
    migrated_database: Settings, client: httpx.AsyncClient
) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    documented = _documented_security(schema)
    app = create_app(migrated_database)
    signed_in_only: dict[tuple[str, str], bool] = {
        (route.path_format, method): not handler.opt.get(EXCLUDE_FROM_AUTH)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.include_in_schema
        for method in handler.http_methods
        if method != "OPTIONS"
    }
    assert documented == {key: signed_in_only[key] for key in documented}
    assert sum(documented.values()) >= 25
    scheme = schema["components"]["securitySchemes"][BEARER_SCHEME]
    assert (scheme["type"], scheme["scheme"].lower(), scheme["bearerFormat"]) == (
        "http",
        "bearer",
        "JWT",
    )
