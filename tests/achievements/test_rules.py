"""The same rules on PostgreSQL and on the embedded SQLite, in plain words: bounded pages,
no NUL characters, no awards from before 2000, one achievement per name and language."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.asgi import create_asgi
from app.config import Settings
from tests.achievements.support import admin, award, create_achievement, create_player
from tests.support import LiveServer, free_port, make_settings

HUGE = "100000000000000000000"
_names = itertools.count(1)


def unique(prefix: str) -> str:
    """Names differ from test to test: the SQLite server keeps its data for the module."""
    return f"{prefix} {next(_names)}"


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: Settings

    @property
    def admin(self) -> dict[str, str]:
        return admin(self.settings)


@pytest.fixture(scope="module")
def embedded_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, Settings]]:
    """The embedded default: SQLite file, in-process Redis stand-in."""
    path: Path = tmp_path_factory.mktemp("embedded") / "quintet.db"
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{path}", redis_url=None)
    server = LiveServer(create_asgi(settings), free_port()).start()
    yield server, settings
    server.stop()


@pytest.fixture(params=["postgresql", "sqlite"])
def served(request: pytest.FixtureRequest) -> tuple[LiveServer, Settings]:
    """Each test runs against the shared PostgreSQL server and the embedded SQLite one."""
    if request.param == "postgresql":
        return request.getfixturevalue("live_server"), request.getfixturevalue("migrated_database")
    server, settings = request.getfixturevalue("embedded_server")
    return server, settings


@pytest.fixture
async def api(served: tuple[LiveServer, Settings]) -> AsyncIterator[Api]:
    server, settings = served
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        yield Api(client, settings)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert "Expected `" not in response.text, body  # msgspec's own words stay inside
    return body


async def test_huge_offsets_and_limits_are_refused_in_plain_words(api: Api) -> None:
    player = await create_player(api.client, api.settings, unique("Offset"))
    for path in (
        "/api/v1/players",
        "/api/v1/achievements",
        f"/api/v1/players/{player['id']}/achievements",
    ):
        body = problem(await api.client.get(path, params={"offset": HUGE}), 422)
        assert body["errors"] == [
            {"field": "offset", "source": "query", "message": "must be at most 1000000000"}
        ]
        body = problem(await api.client.get(path, params={"limit": 101}), 422)
        assert body["detail"] == "limit: must be at most 100"
        far = await api.client.get(path, params={"offset": 1_000_000_000})
        assert far.status_code == 200, far.text
        assert far.json()["items"] == []
    page = await api.client.get(
        "/achievements", params={"offset": HUGE}, headers={"accept": "text/html"}
    )
    assert page.status_code == 422
    assert "must be at most 1000000000" in page.text


async def test_lists_are_pages_of_one_shape(api: Api) -> None:
    player = await create_player(api.client, api.settings, unique("Shape"))
    thing = await create_achievement(api.client, api.settings, 5)
    assert (await award(api.client, api.settings, player["id"], thing["id"])).status_code == 201
    players = (await api.client.get("/api/v1/players", params={"limit": 1})).json()
    catalogue = (await api.client.get("/api/v1/achievements", params={"limit": 1})).json()
    held = (await api.client.get(f"/api/v1/players/{player['id']}/achievements")).json()
    for page in (players, catalogue, held):
        assert {"items", "limit", "offset", "total"} <= set(page)
    assert players["limit"] == 1
    assert len(players["items"]) == 1
    assert players["total"] >= 1
    assert catalogue["language"] == "en"
    assert held["total"] == 1
    assert held["total_points"] == 5
    assert held["player"]["id"] == player["id"]


@pytest.mark.parametrize("name", ["Nul\x00Byte", "\x00", "Tab\there", "Line\nbreak"])
async def test_control_characters_in_a_player_name_are_refused(api: Api, name: str) -> None:
    response = await api.client.post(
        "/api/v1/players", json={"name": name, "language": "en"}, headers=api.admin
    )
    body = problem(response, 422)
    assert body["errors"][0]["field"] == "name"
    assert "no control characters" in body["errors"][0]["message"]


async def test_nul_characters_in_achievements_and_lookups_are_refused(api: Api) -> None:
    for translation in ({"name": "Nul\x00"}, {"name": unique("Fine"), "description": "a\x00b"}):
        response = await api.client.post(
            "/api/v1/achievements",
            json={"points": 3, "translations": {"en": translation}},
            headers=api.admin,
        )
        assert "NUL" in problem(response, 422)["detail"]
    lookup = await api.client.get("/api/v1/players", params={"name": "a\x00b"})
    assert problem(lookup, 422)["errors"][0]["field"] == "name"
    # Multi-line descriptions stay allowed.
    ok = await api.client.post(
        "/api/v1/achievements",
        json={
            "points": 3,
            "translations": {"en": {"name": unique("Lines"), "description": "a\nb"}},
        },
        headers=api.admin,
    )
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        ("0001-01-01T00:00:00Z", 422),
        ("1999-12-31T23:59:59Z", 422),
        ("2000-01-01T02:59:59+03:00", 422),  # 1999-12-31 in UTC
        ("2000-01-01T00:00:00Z", 201),
    ],
)
async def test_awards_dated_before_2000_are_refused(api: Api, moment: str, status: int) -> None:
    player = await create_player(api.client, api.settings, unique("Dated"))
    thing = await create_achievement(api.client, api.settings, 5)
    response = await award(api.client, api.settings, player["id"], thing["id"], moment)
    assert response.status_code == status, response.text
    if status == 422:
        body = problem(response, 422)
        assert "before 2000-01-01" in body["detail"]
        assert body["errors"] == [{"field": "awarded_at", "message": "must be 2000-01-01 or later"}]


async def test_an_achievement_name_is_unique_within_its_language(api: Api) -> None:
    name = unique("Early Bird")
    first = await create_achievement(api.client, api.settings, 5, en=name, ru=unique("Жаворонок"))

    async def add(translations: dict[str, Any]) -> httpx.Response:
        return await api.client.post(
            "/api/v1/achievements",
            json={"points": 7, "translations": translations},
            headers=api.admin,
        )

    again = await add({"en": {"name": f"  {name.upper()} "}})
    body = problem(again, 409)
    assert body["detail"] == f"An achievement named {name!r} already exists in en."
    assert body["errors"] == [{"field": "translations.en.name", "message": "already taken"}]
    # The same words in the other language are another name.
    other_language = await add({"ru": {"name": name}})
    assert other_language.status_code == 201, other_language.text
    catalogue = (await api.client.get("/api/v1/achievements", params={"limit": 100})).json()
    assert sum(item["id"] == first["id"] for item in catalogue["items"]) <= 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": " ", "language": "en"}, "name", "must contain a visible character"),
        ({"name": "", "language": "en"}, "name", "must not be empty"),
        ({"name": "x" * 65, "language": "en"}, "name", "must be at most 64 characters long"),
        ({"name": "Ok", "language": "de"}, "language", "'de' is not one of the allowed values"),
        ({"name": 5, "language": "en"}, "name", "must be text, not an integer"),
        ({"language": "en"}, "name", "is required"),
        ({"name": "Ok", "language": "en", "age": 3}, "age", "is not a known field"),
    ],
)
async def test_validation_errors_are_in_plain_words(
    api: Api, body: dict[str, Any], field: str, message: str
) -> None:
    response = await api.client.post("/api/v1/players", json=body, headers=api.admin)
    errors = problem(response, 422)["errors"]
    assert errors[0]["field"] == field
    assert errors[0]["message"].startswith(message), errors


@pytest.mark.parametrize(("points", "kind"), [("3", "text"), (2.0, "a number")])
async def test_points_must_be_a_json_integer(api: Api, points: object, kind: str) -> None:
    """The schema says integer: a string or a float is refused, not coerced to 3 or 2."""
    name = unique("Coerced")
    body = {"points": points, "translations": {"en": {"name": name}}}
    response = await api.client.post("/api/v1/achievements", json=body, headers=api.admin)
    errors = problem(response, 422)["errors"]
    assert errors == [{"field": "points", "message": f"must be an integer, not {kind}"}]
    # Nothing was stored: the name is still free.
    body["points"] = 3
    stored = await api.client.post("/api/v1/achievements", json=body, headers=api.admin)
    assert stored.status_code == 201, stored.text
    assert stored.json()["points"] == 3


async def test_unreadable_bodies_are_explained(api: Api) -> None:
    headers = {**api.admin, "content-type": "application/json"}
    cut = await api.client.post("/api/v1/players", content=b'{"name":', headers=headers)
    assert problem(cut, 400)["detail"] == "The body is not valid JSON: it ends too early."
    bad = await api.client.post("/api/v1/players", content=b'{"name":x}', headers=headers)
    assert problem(bad, 400)["detail"].startswith("The body is not valid JSON (invalid character")
