"""The /achievements page through the real server."""

from __future__ import annotations

import httpx

from app.config import Settings
from tests.achievements.support import award, create_achievement, create_player


async def test_home_and_nav_link_the_achievements_page(client: httpx.AsyncClient) -> None:
    home = await client.get("/")
    assert home.text.count('href="/achievements"') >= 2  # the nav and the card


async def test_the_page_shows_the_catalogue_in_the_chosen_language(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    await create_achievement(client, migrated_database, 10, ru="Сова-полуночница", en="Night Owl")
    await create_achievement(client, migrated_database, 3, ru="Авоська", en=None)
    ru = await client.get("/achievements", params={"lang": "ru"})
    assert ru.status_code == 200
    assert "Сова-полуночница" in ru.text
    assert "Night Owl" not in ru.text
    en = await client.get("/achievements", params={"lang": "en"})
    assert "Night Owl" in en.text
    assert "Авоська" in en.text
    assert "no translation; shown in ru" in en.text
    assert "Сова-полуночница" not in en.text


async def test_a_player_looked_up_by_name_is_shown_in_their_language(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    player = await create_player(client, migrated_database, "Фёдор", "ru")
    thing = await create_achievement(client, migrated_database, 10, ru="Сова", en="Night Owl")
    await award(client, migrated_database, player["id"], thing["id"])
    page = await client.get("/achievements", params={"player": "фёДОР", "lang": "en"})
    assert page.status_code == 200
    result = page.text.split('id="player-result"', 1)[1].split("</section>", 1)[0]
    assert "Фёдор" in result
    assert "Сова" in result
    assert "Night Owl" not in result
    assert "1 achievements · 10 points" in result
    assert "Most points" in page.text


async def test_an_unknown_player_and_a_bad_language_are_shown_gently(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/achievements", params={"player": "nobody", "lang": "xx"})
    assert page.status_code == 200
    assert "No player named" in page.text
    assert "The catalogue is empty" in page.text
