"""Every achievements route through the real server on PostgreSQL: happy and unhappy paths."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.achievements.support import admin, award, create_achievement, create_player

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    return body


async def test_registering_a_player_returns_it(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    player = await create_player(client, migrated_database, "  Алиса ", "ru")
    assert player["name"] == "Алиса"
    assert player["language"] == "ru"
    uuid.UUID(player["id"])
    assert datetime.fromisoformat(player["created_at"]).tzinfo is not None
    fetched = await client.get(f"/api/v1/players/{player['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == player


@pytest.mark.parametrize(("first", "second"), [("Bob", "bOB"), ("Иван", "иВАН")])
async def test_a_name_that_differs_only_in_case_is_taken(
    client: httpx.AsyncClient, migrated_database: Settings, first: str, second: str
) -> None:
    await create_player(client, migrated_database, first)
    response = await client.post(
        "/api/v1/players",
        json={"name": second, "language": "en"},
        headers=admin(migrated_database),
    )
    body = assert_problem(response, 409)
    assert "already exists" in body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Carol", "language": "de"},
        {"name": "", "language": "en"},
        {"name": "   ", "language": "en"},
        {"name": "x" * 65, "language": "en"},
        {"language": "en"},
    ],
)
async def test_an_invalid_player_is_refused_with_422(
    client: httpx.AsyncClient, migrated_database: Settings, body: dict[str, Any]
) -> None:
    response = await client.post("/api/v1/players", json=body, headers=admin(migrated_database))
    assert_problem(response, 422)


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
async def test_writes_without_the_admin_key_are_refused_with_401(
    client: httpx.AsyncClient, migrated_database: Settings, headers: dict[str, str]
) -> None:
    player = await create_player(client, migrated_database, "Dora")
    thing = await create_achievement(client, migrated_database, 5)
    attempts = [
        client.post("/api/v1/players", json={"name": "Eve", "language": "en"}, headers=headers),
        client.post(
            "/api/v1/achievements",
            json={"points": 5, "translations": {"en": {"name": "X"}}},
            headers=headers,
        ),
        client.post(
            f"/api/v1/players/{player['id']}/achievements",
            json={"achievement_id": thing["id"]},
            headers=headers,
        ),
    ]
    for attempt in attempts:
        response = await attempt
        assert_problem(response, 401)
        assert "X-API-Key" in response.json()["detail"]
    listed = await client.get("/api/v1/players")
    assert [p["name"] for p in listed.json()["items"]] == ["Dora"]


async def test_unknown_player_is_404(client: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    assert_problem(await client.get(f"/api/v1/players/{missing}"), 404)
    assert_problem(await client.get(f"/api/v1/players/{missing}/achievements"), 404)


async def test_a_player_id_that_is_not_a_uuid_is_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/players/not-a-uuid")
    assert response.status_code in (400, 404)
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_players_are_found_by_name_ignoring_case_and_paginated(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    for name in ("Anna", "Boris", "Вера"):
        await create_player(client, migrated_database, name)
    found = (await client.get("/api/v1/players", params={"name": "вЕРА"})).json()
    assert [p["name"] for p in found["items"]] == ["Вера"]
    assert found["total"] == 1
    none = (await client.get("/api/v1/players", params={"name": "nobody"})).json()
    assert none == {"items": [], "total": 0, "limit": 50, "offset": 0}
    page = (await client.get("/api/v1/players", params={"limit": 2, "offset": 1})).json()
    assert [p["name"] for p in page["items"]] == ["Boris", "Вера"]
    assert page["total"] == 3
    assert_problem(await client.get("/api/v1/players", params={"limit": 101}), 422)
    assert_problem(await client.get("/api/v1/players", params={"offset": -1}), 422)


async def test_the_catalogue_is_shown_in_the_chosen_language_with_fallback(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    both = await create_achievement(client, migrated_database, 10, ru="Сова", en="Night Owl")
    ru_only = await create_achievement(client, migrated_database, 3, ru="Авоська", en=None)
    assert both["points"] == 10
    assert both["name"] == "Night Owl"
    assert ru_only["language"] == "ru"

    ru = (await client.get("/api/v1/achievements", params={"lang": "ru"})).json()
    assert ru["language"] == "ru"
    # Fewest points first.
    assert [(a["name"], a["language"]) for a in ru["items"]] == [("Авоська", "ru"), ("Сова", "ru")]
    en = (await client.get("/api/v1/achievements", params={"lang": "en"})).json()
    assert [(a["name"], a["language"]) for a in en["items"]] == [
        ("Авоська", "ru"),
        ("Night Owl", "en"),
    ]
    assert en["items"][1]["description"] == "Night Owl (description)"
    one = await client.get(f"/api/v1/achievements/{both['id']}", params={"lang": "ru"})
    assert one.json()["name"] == "Сова"


async def test_a_bad_language_is_refused_with_422(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/achievements", params={"lang": "de"}), 422)
    assert body["errors"][0]["field"] == "lang"


@pytest.mark.parametrize(
    "body",
    [
        {"points": 0, "translations": {"en": {"name": "Zero"}}},
        {"points": -5, "translations": {"en": {"name": "Negative"}}},
        {"points": 5, "translations": {}},
        {"points": 5, "translations": {"de": {"name": "Deutsch"}}},
        {"points": 5, "translations": {"en": {"name": ""}}},
        {"points": "many", "translations": {"en": {"name": "Text"}}},
    ],
)
async def test_an_invalid_achievement_is_refused_with_422(
    client: httpx.AsyncClient, migrated_database: Settings, body: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/v1/achievements", json=body, headers=admin(migrated_database)
    )
    assert_problem(response, 422)


async def test_unknown_achievement_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"/api/v1/achievements/{uuid.uuid4()}"), 404)


async def test_awarding_answers_in_the_players_language_and_keeps_the_time(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    player = await create_player(client, migrated_database, "Глеб", "ru")
    owl = await create_achievement(client, migrated_database, 10, ru="Сова", en="Night Owl")
    duck = await create_achievement(client, migrated_database, 4, ru=None, en="Rubber Duck")
    before = datetime.now(UTC)
    now_award = await award(client, migrated_database, player["id"], owl["id"])
    assert now_award.status_code == 201, now_award.text
    body = now_award.json()
    assert (body["name"], body["language"], body["points"]) == ("Сова", "ru", 10)
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(body["awarded_at"])
    past = await award(
        client, migrated_database, player["id"], duck["id"], "2025-12-31T23:30:00-02:00"
    )
    assert past.status_code == 201
    assert datetime.fromisoformat(past.json()["awarded_at"]) == datetime(
        2026, 1, 1, 1, 30, tzinfo=UTC
    )

    listed = (await client.get(f"/api/v1/players/{player['id']}/achievements")).json()
    assert listed["language"] == "ru"
    assert listed["player"]["name"] == "Глеб"
    assert listed["total"] == 2
    assert listed["total_points"] == 14
    assert [(a["name"], a["language"]) for a in listed["items"]] == [
        ("Сова", "ru"),
        ("Rubber Duck", "en"),
    ]


async def test_a_repeated_award_is_refused_with_409(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    player = await create_player(client, migrated_database, "Hank")
    thing = await create_achievement(client, migrated_database, 5)
    assert (await award(client, migrated_database, player["id"], thing["id"])).status_code == 201
    again = await award(
        client, migrated_database, player["id"], thing["id"], "2020-01-01T00:00:00Z"
    )
    assert_problem(again, 409)
    listed = (await client.get(f"/api/v1/players/{player['id']}/achievements")).json()
    assert listed["total"] == 1


async def test_an_award_in_the_future_is_refused_with_422(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    player = await create_player(client, migrated_database, "Iris")
    thing = await create_achievement(client, migrated_database, 5)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = assert_problem(
        await award(client, migrated_database, player["id"], thing["id"], tomorrow), 422
    )
    assert "future" in body["detail"]
    naive = await award(client, migrated_database, player["id"], thing["id"], "2020-01-01T00:00:00")
    assert_problem(naive, 422)
    listed = (await client.get(f"/api/v1/players/{player['id']}/achievements")).json()
    assert listed["total"] == 0


async def test_awarding_to_unknown_ids_is_404(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    player = await create_player(client, migrated_database, "Jack")
    thing = await create_achievement(client, migrated_database, 5)
    assert_problem(await award(client, migrated_database, str(uuid.uuid4()), thing["id"]), 404)
    assert_problem(await award(client, migrated_database, player["id"], str(uuid.uuid4())), 404)


async def test_openapi_documents_the_key_and_the_statistics(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/docs/openapi.json")).json()
    assert "AdminApiKey" in spec["components"]["securitySchemes"]
    for path in ("/api/v1/players", "/api/v1/achievements"):
        assert spec["paths"][path]["post"]["security"] == [{"AdminApiKey": []}]
    assert spec["paths"]["/api/v1/players/{player_id}/achievements"]["post"]["security"] == [
        {"AdminApiKey": []}
    ]
    assert "security" not in spec["paths"]["/api/v1/players"]["get"]
    described = spec["paths"]["/api/v1/achievements/stats"]["get"]["description"]
    for phrase in ("0 points", "unordered pair", "consecutive", "UTC", "smaller id"):
        assert phrase in described
