"""The AsyncAPI 3 document describes every Socket.IO event, with schemas from the structs."""

from __future__ import annotations

from typing import Any

import httpx

from tests.messenger.test_realtime import litestar_app
from tests.support import LiveServer


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


async def test_the_asyncapi_document_covers_every_event_and_resolves(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    response = await client.get("/docs/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["asyncapi"] == "3.0.0"
    for ref in refs(document):
        resolve(document, ref)  # raises KeyError when dangling
    names = {m["name"] for m in document["components"]["messages"].values()}
    handled = set(litestar_app(live_server).state.realtime.sio.handlers["/"]) - {
        "connect",
        "disconnect",
    }
    assert handled <= names, handled - names
    assert {"message:new", "presence", "chat:removed", "session:expired"} <= names
    schemas = document["components"]["schemas"]
    assert {"seq", "client_id"} <= set(schemas["MessageOut"]["properties"])
    assert "client_id" in schemas["SendEvent"]["properties"]
    assert {"type", "title", "status", "detail"} <= set(schemas["Problem"]["required"])
    docs = await client.get("/docs/openapi.json")
    assert "/docs/asyncapi.json" in docs.json()["info"]["description"]
