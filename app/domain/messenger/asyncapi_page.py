"""The AsyncAPI document as a page for people: /docs/asyncapi, rendered on the server.

The page is built from :func:`app.domain.messenger.asyncapi.asyncapi_document` itself (the
JSON served at /docs/asyncapi.json), so both say the same: each event with its direction,
its payload as a table of fields (type, constraints, description), the acknowledgement of
client events, the problem shape of errors and how the handshake authenticates. Plain HTML
from a Jinja template: no script of its own, no asset from elsewhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from litestar import Controller, get
from litestar.response import Template

from app.domain.messenger.asyncapi import asyncapi_document
from app.lib.auth import PUBLIC_ROUTE
from app.lib.dependencies import SettingsDep
from app.lib.errors import NotFoundError

CLIENT_TO_SERVER = "client → server"
SERVER_TO_CLIENT = "server → client"
_REF = re.compile(r"^#/components/schemas/(?P<name>[^/]+)$")


@dataclass(frozen=True)
class TypePart:
    """A piece of a field's type: plain text, or the name of a schema to link to."""

    text: str
    schema: str | None = None


@dataclass(frozen=True)
class Span:
    """A piece of prose: plain text, or a `code` span of the document's markdown."""

    text: str
    code: bool = False


@dataclass(frozen=True)
class FieldRow:
    name: str
    type: list[TypePart]
    required: bool
    constraints: list[str]
    description: str


@dataclass(frozen=True)
class SchemaView:
    name: str
    description: str
    fields: list[FieldRow]
    closed: bool  # unknown fields are refused


@dataclass(frozen=True)
class EventView:
    event: str
    direction: str
    anchor: str
    summary: list[Span]
    payload: SchemaView
    # Client events: the schema answered on success (an error answers ErrorAck).
    ack: SchemaView | None
    ack_summary: list[Span]


def prose(text: str) -> list[Span]:
    """Text with its `code` spans marked, for the template to wrap in <code> without
    trusting any markup in the document (Jinja escapes every piece)."""
    return [
        Span(piece, code=index % 2 == 1) for index, piece in enumerate(text.split("`")) if piece
    ]


def _ref_name(node: dict[str, Any]) -> str | None:
    match = _REF.match(str(node.get("$ref", "")))
    return match.group("name") if match else None


def type_parts(node: dict[str, Any]) -> list[TypePart]:
    """``string (uuid)``, ``MessageOut or null``, ``array of MemberOut``, ``"a" | "b"``."""
    name = _ref_name(node)
    if name:
        return [TypePart(name, name)]
    if "anyOf" in node or "oneOf" in node:
        parts: list[TypePart] = []
        for option in node.get("anyOf") or node.get("oneOf") or []:
            if parts:
                parts.append(TypePart(" or "))
            parts.extend(type_parts(option))
        return parts
    if "enum" in node:
        return [TypePart(" | ".join(json.dumps(value) for value in node["enum"]))]
    kind = node.get("type", "any")
    if kind == "array":
        return [TypePart("array of "), *type_parts(node.get("items", {}))]
    if isinstance(kind, list):
        kind = " or ".join(kind)
    return [TypePart(f"{kind} ({node['format']})" if "format" in node else str(kind))]


def _flatten(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The node and, for a union, each of its options (where constraints are written)."""
    options = node.get("anyOf") or node.get("oneOf") or []
    return [node, *(option for option in options if isinstance(option, dict))]


def constraints(node: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for part in _flatten(node):
        if "minLength" in part or "maxLength" in part:
            low, high = part.get("minLength"), part.get("maxLength")
            if low is not None and high is not None:
                found.append(f"{low} to {high} characters")
            elif low is not None:
                found.append(f"at least {low} characters")
            else:
                found.append(f"at most {high} characters")
        if "pattern" in part:
            found.append(f"matches {part['pattern']}")
        for key, label in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("exclusiveMaximum", "<"),
        ):
            if key in part:
                found.append(f"{label} {part[key]}")
        if "minItems" in part or "maxItems" in part:
            found.append(f"{part.get('minItems', 0)} to {part.get('maxItems', '∞')} items")
        if part.get("examples"):
            found.append(f"example: {json.dumps(part['examples'][0], ensure_ascii=False)}")
    if "default" in node:
        found.append(f"default: {json.dumps(node['default'])}")
    return found


def _description(node: dict[str, Any]) -> str:
    return next((str(p["description"]) for p in _flatten(node) if p.get("description")), "")


def schema_view(name: str, schema: dict[str, Any]) -> SchemaView:
    required = set(schema.get("required", []))
    return SchemaView(
        name=name,
        description=str(schema.get("description", "")),
        fields=[
            FieldRow(
                name=field,
                type=type_parts(node),
                required=field in required,
                constraints=constraints(node),
                description=_description(node),
            )
            for field, node in schema.get("properties", {}).items()
        ],
        closed=schema.get("additionalProperties") is False,
    )


def _resolve(document: dict[str, Any], ref: str) -> Any:
    """What a local ``$ref`` points at, following references to references."""
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        return _resolve(document, node["$ref"])
    return node


def event_views(document: dict[str, Any]) -> list[EventView]:
    """Every operation of the document: client events first, then server events."""
    schemas = document["components"]["schemas"]
    views = []
    for key, operation in document["operations"].items():
        message = _resolve(document, operation["messages"][0]["$ref"])
        payload = _ref_name(message["payload"]) or ""
        client = operation["action"] == "receive"
        ack: SchemaView | None = None
        ack_summary: list[Span] = []
        if "reply" in operation:
            reply = _resolve(document, operation["reply"]["messages"][0]["$ref"])
            options = reply["payload"].get("oneOf", [reply["payload"]])
            success = next((n for n in map(_ref_name, options) if n and n != "ErrorAck"), None)
            ack = schema_view(success, schemas[success]) if success else None
            ack_summary = prose(reply.get("summary", ""))
        views.append(
            EventView(
                event=message["name"],
                direction=CLIENT_TO_SERVER if client else SERVER_TO_CLIENT,
                anchor=key,
                summary=prose(operation.get("summary", "")),
                payload=schema_view(payload, schemas[payload]),
                ack=ack,
                ack_summary=ack_summary,
            )
        )
    views.sort(key=lambda view: view.direction != CLIENT_TO_SERVER)
    return views


def page_context(document: dict[str, Any]) -> dict[str, Any]:
    server = next(iter(document["servers"].values()))
    scheme = next(iter(document["components"]["securitySchemes"].values()))
    events = event_views(document)
    return {
        "title": document["info"]["title"],
        "version": document["info"]["version"],
        "description": prose(document["info"]["description"]),
        "server": server,
        "auth": prose(scheme.get("description", "")),
        "client_events": [e for e in events if e.direction == CLIENT_TO_SERVER],
        "server_events": [e for e in events if e.direction == SERVER_TO_CLIENT],
        "problem": schema_view("Problem", document["components"]["schemas"]["Problem"]),
        "error_ack": schema_view("ErrorAck", document["components"]["schemas"]["ErrorAck"]),
        "schemas": [
            schema_view(name, schema)
            for name, schema in sorted(document["components"]["schemas"].items())
        ],
    }


class AsyncAPIPageController(Controller):
    path = "/docs/asyncapi"
    opt = PUBLIC_ROUTE
    include_in_schema = False

    @get("/", summary="The Socket.IO events, rendered for people")
    async def page(self, settings: SettingsDep) -> Template:
        """The AsyncAPI document as HTML (404 with DOCS_ENABLED=false, like /docs/)."""
        if not settings.docs_enabled:
            raise NotFoundError("Not found")
        return Template(
            template_name="messenger/asyncapi.html", context=page_context(asyncapi_document())
        )
