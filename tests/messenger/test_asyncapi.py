"""The AsyncAPI 3 document describes every Socket.IO event, with schemas from the structs."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx

from tests.support import LiveServer, litestar_app


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


class EventSections(HTMLParser):
    """The events a page lists (each ``<section data-event data-direction>``), with the
    field names of the tables inside each, and the page's links and scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[tuple[str, str], set[str]] = {}
        self.links: list[str] = []
        self.inline_scripts = 0
        self._current: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section" and found.get("data-event"):
            self._current = (str(found["data-event"]), str(found["data-direction"]))
            self.events[self._current] = set()
        elif tag == "section":
            self._current = None
        if tag == "td" and found.get("data-field") and self._current:
            self.events[self._current].add(str(found["data-field"]))
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if tag == "script" and not found.get("src"):
            self.inline_scripts += 1


def expected_events(document: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(event, direction) -> the payload's field names, read from the JSON document."""
    expected = {}
    for operation in document["operations"].values():
        message = resolve(document, operation["messages"][0]["$ref"])
        if "$ref" in message:
            message = resolve(document, message["$ref"])
        payload = resolve(document, message["payload"]["$ref"])
        direction = "client → server" if operation["action"] == "receive" else "server → client"
        expected[(message["name"], direction)] = set(payload["properties"])
    return expected


async def test_the_rendered_page_lists_every_event_of_the_document_with_its_fields(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/docs/asyncapi.json")).json()
    page = await client.get("/docs/asyncapi")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    parsed = EventSections()
    parsed.feed(page.text)
    expected = expected_events(document)
    assert len(expected) == len(document["operations"])
    assert set(parsed.events) == set(expected)
    for key, fields in expected.items():
        assert fields <= parsed.events[key], (key, fields - parsed.events[key])
    # The acknowledgement, the problem shape and the handshake are described.
    assert "ReadOut" in page.text
    assert 'data-schema="Problem"' in page.text
    assert "connect_error" in page.text
    assert parsed.inline_scripts == 0
    assert all(not link.startswith(("http:", "https:", "//")) for link in parsed.links)
    assert "/docs/" in parsed.links  # back to Swagger UI
    docs = (await client.get("/docs/openapi.json")).json()
    assert "(/docs/asyncapi)" in docs["info"]["description"]
