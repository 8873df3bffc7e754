"""The /achievements page through the real server."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx

from app.asgi import create_asgi
from app.config import Settings
from tests.achievements.support import award, create_achievement, create_player
from tests.support import LiveServer, free_port, make_settings


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


async def test_the_page_itself_is_in_russian_with_lang_ru(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    await create_achievement(client, migrated_database, 10, ru="Сова", en="Night Owl")
    ru = await client.get("/achievements", params={"lang": "ru", "player": "никто"})
    assert ru.status_code == 200
    assert '<html lang="ru">' in ru.text
    for label in ("Достижения", "Найти игрока", "Таблица лидеров", "Статистика", "Каталог (1)"):
        assert label in ru.text, label
    assert "Игрока с именем «никто» нет." in ru.text
    for english in ("Find a player", "Leaderboard", "Statistics", "Catalogue", "No player named"):
        assert english not in ru.text, english
    en = await client.get("/achievements")
    assert '<html lang="en">' in en.text
    assert "Find a player" in en.text


async def test_the_catalogue_is_ordered_by_points_then_name(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    for points, en, ru in [(5, "beta", "Бета"), (5, "Alpha", "альфа"), (1, "Zed", "Зет")]:
        await create_achievement(client, migrated_database, points, en=en, ru=ru)
    api = (await client.get("/api/v1/achievements", params={"lang": "en"})).json()
    assert [item["name"] for item in api["items"]] == ["Zed", "Alpha", "beta"]
    page = (await client.get("/achievements", params={"lang": "ru"})).text
    catalogue = page.split('id="catalogue"', 1)[1]
    positions = [catalogue.index(name) for name in ("Зет", "альфа", "Бета")]
    assert positions == sorted(positions)


async def test_paging_and_language_links_keep_the_player(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    await create_player(client, migrated_database, "Фёдор Ф", "ru")
    for number in range(102):
        await create_achievement(client, migrated_database, 1 + number % 7)
    first = (await client.get("/achievements", params={"lang": "ru", "player": "Фёдор Ф"})).text
    assert (
        'rel="next" href="/achievements?lang=ru&amp;player=%D0%A4%D1%91%D0%B4%D0%BE%D1%80+%D0%A4&amp;offset=100"'
        in first
    )
    assert 'href="/achievements?lang=en&amp;player=%D0%A4%D1%91%D0%B4%D0%BE%D1%80+%D0%A4"' in first
    second = (
        await client.get("/achievements", params={"lang": "ru", "player": "Фёдор Ф", "offset": 100})
    ).text
    assert (
        'rel="prev" href="/achievements?lang=ru&amp;player=%D0%A4%D1%91%D0%B4%D0%BE%D1%80+%D0%A4"'
        in second
    )
    assert 'rel="next"' not in second
    assert "101–102 из 102" in second
    assert 'id="player-result"' in second


async def test_the_page_shows_a_leaderboard_and_a_chart_of_awards_per_day(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=1, microsecond=0)
    yesterday = today - timedelta(days=1)
    ann = await create_player(client, migrated_database, "Ann")
    bob = await create_player(client, migrated_database, "Bob")
    await create_player(client, migrated_database, "Carl")  # no awards: not on the board
    big = await create_achievement(client, migrated_database, 10)
    small = await create_achievement(client, migrated_database, 3)
    for player, thing, moment in [
        (ann, small, yesterday),
        (bob, big, yesterday),
        (bob, small, today),
    ]:
        response = await award(
            client, migrated_database, player["id"], thing["id"], moment.isoformat()
        )
        assert response.status_code == 201, response.text
    page = (await client.get("/achievements")).text
    board = page.split('id="leaderboard"', 1)[1].split("</section>", 1)[0]
    assert board.index("Bob") < board.index("Ann")
    assert "Carl" not in board
    assert '<td class="text-end">2</td><td class="text-end">13</td>' in board
    chart = page.split('id="awards-chart"', 1)[1].split("</section>", 1)[0]
    assert "<svg" in chart
    assert chart.count("<rect") == 30
    assert f"<title>{yesterday.date().isoformat()}: 2 awards</title>" in chart
    assert f"<title>{today.date().isoformat()}: 1 awards</title>" in chart
    assert "3 awards in the last 30 days; at most 2 on one day." in chart
    ru = (await client.get("/achievements", params={"lang": "ru"})).text
    assert f"<title>{yesterday.date().isoformat()}: наград — 2</title>" in ru


async def test_the_page_names_the_development_admin_key_only(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    page = (await client.get("/achievements")).text
    note = page.split('id="admin-key-note"', 1)[1].split("</p>", 1)[0]
    assert "X-API-Key" in note
    assert "<code>dev-admin-key</code>" in note
    settings = make_settings(admin_api_key=secrets.token_hex(20))
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            configured = (await http.get("/achievements")).text
    finally:
        server.stop()
    assert "X-API-Key" in configured
    assert "dev-admin-key" not in configured
    assert settings.admin_api_key not in configured
