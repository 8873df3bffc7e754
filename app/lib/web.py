"""Pages, static files and API docs: templates, local Bootstrap and Swagger UI assets.

Nothing is loaded from a CDN: Bootstrap, Swagger UI and the Socket.IO client are vendored under
``app/static/vendor/<library>/``, each with its ``VERSION`` and ``LICENSE``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
    Server,
    Tag,
)
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import Scope

from app.config import BASE_DIR
from app.lib.errors import PROBLEM_JSON

TEMPLATES_DIR = BASE_DIR / "app" / "templates"
STATIC_DIR = BASE_DIR / "app" / "static"
SWAGGER_UI_URL = "/static/vendor/swagger-ui"

API_DESCRIPTION = """
Quintet runs five services in one application. Errors everywhere are RFC 9457 problem
details (`application/problem+json`) with `type`, `title`, `status`, `detail` and, for
field validation, `errors`.

* **messenger**: authenticate with `POST /api/v1/auth/login`, then press *Authorize* and
  paste the `access_token` (Bearer).
  Its real-time events (Socket.IO) are described by the AsyncAPI 3 document at
  [/docs/asyncapi.json](/docs/asyncapi.json), rendered as a page at
  [/docs/asyncapi: the Socket.IO events](/docs/asyncapi).
* **achievements**: writes need the admin key in `X-API-Key`: press *Authorize* and paste
  `ADMIN_API_KEY` into *AdminApiKey*. The embedded default (`make run`) uses `dev-admin-key`.
* **audio**: uploads carry the user's id and UUID token in the form.
"""


# The board owner's login, in the session; every page's navigation bar names the owner.
BOARD_SESSION_KEY = "board_owner"


def page(
    request: Request[Any, Any, Any],
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """A page of the site, with the board owner's name and the session's one-time flash."""
    context.setdefault("board_user", request.session.get(BOARD_SESSION_KEY))
    context.setdefault("flash", request.session.pop("flash", None) if request.session else None)
    return Template(
        template_name=template, context=context, status_code=status_code, headers=headers
    )


def describe_duration(seconds: int) -> str:
    """300 -> "5 minutes", 90 -> "90 seconds", 7200 -> "2 hours"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def create_template_config() -> TemplateConfig[JinjaTemplateEngine]:
    def register_callables(engine: JinjaTemplateEngine) -> None:
        # {{ csp_nonce() }}: for a page that must have an inline <script nonce="...">.
        engine.register_template_callable(
            "csp_nonce", lambda context: csp_nonce(context["request"].scope)
        )

    return TemplateConfig(
        directory=TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=register_callables
    )


# --- security headers -------------------------------------------------------------------------

CSP_NONCE_STATE = "csp_nonce"
# Everything the pages use is served by the app itself: scripts and styles from /static (and
# Swagger UI's one inline script, which carries the request's nonce), images from here or
# data:/blob: URLs (avatars, Swagger's icons), fetch and Socket.IO (ws/wss) to this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "media-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HSTS = "max-age=31536000"


def csp_nonce(scope: Scope) -> str:
    """This request's CSP nonce (set by :func:`security_headers`)."""
    nonce = scope.get("state", {}).get(CSP_NONCE_STATE)
    return nonce if isinstance(nonce, str) else ""


_CSP_PARTS = [part.encode() for part in CONTENT_SECURITY_POLICY.split("{nonce}")]
_FIXED_SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]


def security_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The browser-security headers of this HTTP request's response, sent for every response
    of the app (by :class:`app.lib.edge.EdgeMiddleware`): a Content Security Policy without
    inline scripts (a fresh nonce, put on the scope for the one page that has one), no
    framing, no MIME sniffing, a referrer that stays on the site, and HSTS when the request
    came over https (directly or, through a trusted proxy, as forwarded)."""
    nonce = secrets.token_urlsafe(16)
    scope.setdefault("state", {})[CSP_NONCE_STATE] = nonce
    headers = [(b"content-security-policy", nonce.encode().join(_CSP_PARTS))]
    headers += _FIXED_SECURITY_HEADERS
    if scope.get("scheme") == "https":
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers


class NoncedSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI whose inline start-up script and style carry the request's CSP nonce."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        nonce = csp_nonce(request.scope).encode()
        page = super().render(request, openapi_schema)
        page = page.replace(b"<script type='text/javascript'>", b'<script nonce="' + nonce + b'">')
        return page.replace(b"<style>", b'<style nonce="' + nonce + b'">')


def create_static_routers() -> list[Router]:
    return [
        create_static_files_router(
            path="/static", directories=[STATIC_DIR], include_in_schema=False, name="static"
        )
    ]


def create_openapi_config(
    tags: list[Tag] | None = None, *, security_backends: Sequence[Components] = ()
) -> OpenAPIConfig:
    """``security_backends``: the security schemes documented by the authentication backends
    (JWTAuth's ``openapi_components``)."""
    return OpenAPIConfig(
        title="Quintet",
        version="1.0.0",
        description=API_DESCRIPTION,
        use_handler_docstrings=True,
        path="/docs",
        servers=[Server(url="/")],
        tags=tags,
        components=[
            *security_backends,
            Components(
                security_schemes={
                    "AdminApiKey": SecurityScheme(
                        type="apiKey",
                        name="X-API-Key",
                        security_scheme_in="header",
                        description="ADMIN_API_KEY, for achievements writes. The embedded default "
                        "(make run, no APP_ENV=production) uses dev-admin-key; a deployment has its "
                        "own (docs/kubernetes.md, docker/.env).",
                    ),
                }
            ),
        ],
        render_plugins=[
            NoncedSwaggerRenderPlugin(
                path="/",
                js_url=f"{SWAGGER_UI_URL}/swagger-ui-bundle.js",
                css_url=f"{SWAGGER_UI_URL}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER_UI_URL}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_UI_URL}/favicon-32x32.png'>",
            )
        ],
    )


PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="ProblemDetails",
    description="RFC 9457 problem details: the one error shape of every route.",
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, examples=["about:blank"]),
        "title": Schema(type=OpenAPIType.STRING, examples=["Not found"]),
        "status": Schema(type=OpenAPIType.INTEGER, examples=[404]),
        "detail": Schema(type=OpenAPIType.STRING, examples=["No such chat."]),
        "instance": Schema(type=OpenAPIType.STRING, examples=["/api/v1/chats/0190..."]),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            description="Field validation failures (400/422).",
            items=Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "field": Schema(
                        one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)]
                    ),
                    "source": Schema(
                        one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)]
                    ),
                    "message": Schema(type=OpenAPIType.STRING),
                },
            ),
        ),
    },
)


def problem_spec(description: str) -> ResponseSpec:
    """An error response a route documents by its status and description; its content is
    the ProblemDetails schema, as for every error response (document_problem_responses)."""
    return ResponseSpec(
        data_container=None,
        description=description,
        media_type=PROBLEM_JSON,
        generate_examples=False,
    )


def document_problem_responses(app: Litestar) -> None:
    """Make the OpenAPI document say what every route really does on failure.

    Every error leaves through app.lib.errors as ``application/problem+json``; this states it
    once for all operations: documented 4xx/5xx responses get the problem schema, and a
    ``default`` response covers the other error statuses (401, 404, 409, 413, 429, 503...).
    """
    schema = app.openapi_schema
    components = schema.components
    if isinstance(components, list):  # Litestar allows a list; ours is one object
        components = components[0]
    components.schemas = {**(components.schemas or {}), "ProblemDetails": PROBLEM_SCHEMA}
    _forbid_documented_extra_fields(components.schemas)
    problem = OpenAPIMediaType(schema=Reference(ref="#/components/schemas/ProblemDetails"))
    for path_item in (schema.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation: Operation | None = getattr(path_item, method, None)
            if operation is None:
                continue
            responses = operation.responses or {}
            for status, response in responses.items():
                if status[0] in "45" and isinstance(response, OpenAPIResponse):
                    response.content = {"application/problem+json": problem}
            responses.setdefault(
                "default",
                OpenAPIResponse(
                    description="An error, as RFC 9457 problem details",
                    content={"application/problem+json": problem},
                ),
            )
            operation.responses = responses


# Path and query parameters that mean the same everywhere, described once.
PARAMETER_DESCRIPTIONS = {
    "chat_id": "The chat's id (a UUID)",
    "user_id": "The user's id (a UUID)",
    "message_id": "The message's id (a UUID)",
    "attachment_id": "The attachment's id (a UUID)",
    "player_id": "The player's id (a UUID)",
    "achievement_id": "The achievement's id (a UUID)",
    "session_id": "The session's id (a UUID, from GET /api/v1/auth/sessions)",
    "invitation_id": "The invitation's id (a UUID, from GET /api/v1/invitations)",
    "size": "50, 100 or 400 (a square WebP of that many pixels), or original",
    "search": "Part of a name, the start of an @username, or a phone number",
    "limit": "Page size",
    "offset": "Items to skip",
}


def describe_parameters(app: Litestar) -> None:
    """Give every documented parameter a description: the handler's own, else the common
    one of ``PARAMETER_DESCRIPTIONS`` (ids in paths mean the same in every route)."""
    for path_item in (app.openapi_schema.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation: Operation | None = getattr(path_item, method, None)
            for parameter in (operation.parameters or []) if operation else []:
                if isinstance(parameter, Reference) or parameter.description:
                    continue
                schema = parameter.schema
                if isinstance(schema, Schema) and schema.description:
                    parameter.description = schema.description
                elif parameter.name in PARAMETER_DESCRIPTIONS:
                    parameter.description = PARAMETER_DESCRIPTIONS[parameter.name]


def _forbid_documented_extra_fields(schemas: Mapping[str, Schema | Reference]) -> None:
    """Structs declared with ``forbid_unknown_fields`` refuse extra fields (a typo in a field
    name is an error, not silently ignored); Litestar does not say so in the schema."""
    strict = {
        cls.__name__ for cls in _struct_classes() if cls.__struct_config__.forbid_unknown_fields
    }
    for schema in schemas.values():
        if isinstance(schema, Schema) and schema.title in strict:
            schema.additional_properties = False


def _struct_classes() -> list[type[msgspec.Struct]]:
    found: list[type[msgspec.Struct]] = []
    pending = list(msgspec.Struct.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
