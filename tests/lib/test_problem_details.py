"""Domain errors are Litestar's own problem details: an application with nothing but
Litestar's ProblemDetailsPlugin answers them in the one error shape."""

from __future__ import annotations

from litestar import Litestar, get
from litestar.plugins.problem_details import ProblemDetailsPlugin
from litestar.testing import AsyncTestClient

from app.lib.errors import InvalidInputError, NotFoundError


@get("/things/missing", sync_to_thread=False)
def missing_thing() -> None:
    raise NotFoundError("No such thing.")


@get("/things/invalid", sync_to_thread=False)
def invalid_thing() -> None:
    raise InvalidInputError(
        "name: is required", errors=[{"field": "name", "source": "body", "message": "is required"}]
    )


async def test_a_domain_error_is_answered_by_litestars_problem_details_plugin() -> None:
    app = Litestar([missing_thing, invalid_thing], plugins=[ProblemDetailsPlugin()])
    async with AsyncTestClient(app) as client:
        missing = await client.get("/things/missing")
        invalid = await client.get("/things/invalid")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not found",
        "status": 404,
        "detail": "No such thing.",
        "instance": "/things/missing",
    }
    assert invalid.status_code == 422
    assert invalid.json() == {
        "type": "about:blank",
        "title": "Unprocessable content",
        "status": 422,
        "detail": "name: is required",
        "instance": "/things/invalid",
        "errors": [{"field": "name", "source": "body", "message": "is required"}],
    }
