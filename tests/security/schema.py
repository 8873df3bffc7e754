"""The operations of ``/docs/openapi.json``, for tests that must cover every one of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # the schema's template, e.g. /api/v1/chats/{chat_id}
    path_params: tuple[str, ...]
    security: tuple[str, ...]  # names of the security schemes it requires

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def operations(schema: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in schema["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "path")
            security = tuple(name for req in op.get("security") or [] for name in req)
            found.append(Operation(method.upper(), path, params, security))
    return found


async def fetch_operations(client: httpx.AsyncClient) -> list[Operation]:
    response = await client.get("/docs/openapi.json")
    assert response.status_code == 200
    return operations(response.json())


def is_problem(response: httpx.Response, status: int) -> bool:
    """An RFC 9457 problem document with this status."""
    if response.status_code != status:
        return False
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return False
    body = response.json()
    return isinstance(body, dict) and body.get("status") == status and bool(body.get("title"))
