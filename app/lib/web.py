"""Pages, static files and API docs: templates, local Bootstrap and Swagger UI assets.

Nothing is loaded from a CDN: Bootstrap comes from the ``bootstrap-wrapper`` wheel and Swagger
UI 5 from ``drf-spectacular-sidecar``, both installed with the Python dependencies.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

import bootstrap
import msgspec
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
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
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.config import BASE_DIR


def _package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it: drf-spectacular-sidecar's
    __init__ imports Django, which is not installed; only its static Swagger UI build is used."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


TEMPLATES_DIR = BASE_DIR / "app" / "templates"
STATIC_DIR = BASE_DIR / "app" / "static"
BOOTSTRAP_DIR = Path(next(iter(bootstrap.__path__)))  # a namespace package: css/ and js/
SWAGGER_DIR = (
    _package_dir("drf_spectacular_sidecar") / "static/drf_spectacular_sidecar/swagger-ui-dist"
)

API_DESCRIPTION = """
Quintet runs five services in one application. Errors everywhere are RFC 9457 problem
details (`application/problem+json`) with `type`, `title`, `status`, `detail` and, for
field validation, `errors`.

* **messenger**: authenticate with `POST /api/v1/auth/login`, then press *Authorize* and
  paste the `access_token` (Bearer).
  Its real-time events (Socket.IO) are described by the AsyncAPI 3 document at
  [/docs/asyncapi.json](/docs/asyncapi.json).
* **achievements**: writes need the admin key in `X-API-Key`.
* **audio**: uploads carry the user's id and UUID token in the form.
"""


def create_template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine)


def create_static_routers() -> list[Router]:
    return [
        create_static_files_router(
            path="/static/vendor/bootstrap",
            directories=[BOOTSTRAP_DIR],
            include_in_schema=False,
            name="bootstrap",
        ),
        create_static_files_router(
            path="/static/vendor/swagger-ui",
            directories=[SWAGGER_DIR],
            include_in_schema=False,
            name="swagger-ui",
        ),
        # Files vendored into app/static/vendor/ need their own router: Litestar matches the
        # longest mounted prefix, so /static/vendor/* never reaches the /static router.
        create_static_files_router(
            path="/static/vendor/socket.io",
            directories=[STATIC_DIR / "vendor" / "socket.io"],
            include_in_schema=False,
            name="socket.io-client",
        ),
        create_static_files_router(
            path="/static", directories=[STATIC_DIR], include_in_schema=False, name="static"
        ),
    ]


def create_openapi_config(tags: list[Tag] | None = None) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Quintet",
        version="1.0.0",
        description=API_DESCRIPTION,
        path="/docs",
        servers=[Server(url="/")],
        tags=tags,
        components=Components(
            security_schemes={
                "BearerToken": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="The access_token from /api/v1/auth/login or /register.",
                ),
                "AdminApiKey": SecurityScheme(
                    type="apiKey",
                    name="X-API-Key",
                    security_scheme_in="header",
                    description="ADMIN_API_KEY, for achievements writes.",
                ),
            }
        ),
        render_plugins=[
            SwaggerRenderPlugin(
                path="/",
                js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
                css_url="/static/vendor/swagger-ui/swagger-ui.css",
                standalone_preset_js_url="/static/vendor/swagger-ui/swagger-ui-standalone-preset.js",
                favicon="<link rel='icon' type='image/png' "
                "href='/static/vendor/swagger-ui/favicon-32x32.png'>",
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
