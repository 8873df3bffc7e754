"""Seed data: the bilingual catalogue and, for benchmarks, a large synthetic data set."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.achievements.catalogue import CATALOGUE
from app.domain.achievements.models import Achievement, AchievementTranslation, Award, Player
from app.domain.achievements.services import name_key, rebuild_player_stats
from app.lib.ids import new_uuid7

BATCH_ROWS = 5_000
ADJECTIVES = [
    "Brave",
    "Sleepy",
    "Witty",
    "Quiet",
    "Lucky",
    "Swift",
    "Gentle",
    "Fierce",
    "Curious",
    "Cosmic",
    "Rusty",
    "Golden",
    "Бодрый",
    "Тихий",
    "Хитрый",
    "Весёлый",
    "Смелый",
    "Ловкий",
    "Сонный",
    "Мудрый",
]
CREATURES = [
    "Otter",
    "Falcon",
    "Badger",
    "Lynx",
    "Heron",
    "Walrus",
    "Moose",
    "Fox",
    "Owl",
    "Yak",
    "Ёж",
    "Барсук",
    "Филин",
    "Лось",
    "Морж",
    "Кот",
    "Бобр",
    "Сокол",
]

Progress = Callable[[str, int], None]


async def load_catalogue(session: AsyncSession) -> int:
    """Insert the catalogue entries that are not there yet; returns how many were added."""
    existing = set((await session.scalars(select(Achievement.id))).all())
    # A name is unique within its language: an entry whose name someone already gave to
    # another achievement is left out rather than failing the whole load.
    taken = set(
        (
            await session.execute(
                select(AchievementTranslation.language, AchievementTranslation.name_key)
            )
        )
        .tuples()
        .all()
    )
    missing = [
        entry
        for entry in CATALOGUE
        if entry.id not in existing
        and not any(
            text is not None and (language, name_key(text[0])) in taken
            for language, text in (("ru", entry.ru), ("en", entry.en))
        )
    ]
    if not missing:
        return 0
    # created_at and updated_at are the audit base's column defaults.
    await session.execute(insert(Achievement), [{"id": e.id, "points": e.points} for e in missing])
    translations = [
        {
            "achievement_id": e.id,
            "language": language,
            "name": text[0],
            "name_key": name_key(text[0]),
            "description": text[1],
        }
        for e in missing
        for language, text in (("ru", e.ru), ("en", e.en))
        if text is not None
    ]
    await session.execute(insert(AchievementTranslation), translations)
    return len(missing)


async def load_synthetic(
    session: AsyncSession,
    *,
    players: int,
    awards_per_player: int,
    random_seed: int,
    progress: Progress,
) -> tuple[int, int]:
    """Add ``players`` players with about ``awards_per_player`` awards each over the last
    year; three awards in five come the day after the previous one, so long streaks occur.
    Returns (players added, awards added)."""
    rng = random.Random(random_seed)  # noqa: S311 - synthetic data, reproducible on purpose
    achievement_ids = list((await session.scalars(select(Achievement.id))).all())
    if not achievement_ids:
        raise RuntimeError("load the catalogue first: no achievements to award")
    batch_tag = f"{rng.getrandbits(24):06x}"
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    per_player = min(awards_per_player, len(achievement_ids))
    player_rows: list[dict[str, Any]] = []
    award_rows: list[dict[str, Any]] = []
    added_players = added_awards = 0

    async def flush(force: bool = False) -> None:
        nonlocal player_rows, award_rows, added_players, added_awards
        if not force and len(award_rows) < BATCH_ROWS:
            return
        # Players first: the awards refer to them.
        if player_rows:
            await session.execute(insert(Player), player_rows)
            added_players += len(player_rows)
            progress("players", len(player_rows))
            player_rows = []
        if award_rows:
            await session.execute(insert(Award), award_rows)
            added_awards += len(award_rows)
            progress("awards", len(award_rows))
            award_rows = []

    for index in range(players):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(CREATURES)} {batch_tag}-{index}"
        player_id = new_uuid7()
        player_rows.append(
            {
                "id": player_id,
                "name": name,
                "name_key": name_key(name),
                "language": rng.choice(("ru", "en")),
            }
        )
        count = min(len(achievement_ids), max(0, round(rng.gauss(per_player, per_player / 3))))
        day = today - timedelta(days=rng.randrange(0, 365))
        for achievement_id in rng.sample(achievement_ids, count):
            moment = day + timedelta(seconds=rng.randrange(86_400))
            award_rows.append(
                {
                    "player_id": player_id,
                    "achievement_id": achievement_id,
                    "awarded_at": min(moment, now),
                }
            )
            step = 1 if rng.random() < 0.6 else rng.randrange(0, 15)
            day = min(day + timedelta(days=step), today)
        await flush()
    await flush(force=True)
    return added_players, added_awards


async def finish_seed(session: AsyncSession) -> None:
    """Fill every player's ``PlayerStats`` from the awards; refresh PostgreSQL's planner
    figures."""
    await session.execute(rebuild_player_stats(session.get_bind().dialect.name))
    await session.commit()
    if session.get_bind().dialect.name == "postgresql":
        tables = (
            "achievement_player",
            "achievement_award",
            "achievement",
            "achievement_player_stats",
        )
        for table in tables:
            await session.execute(text(f"ANALYZE {table}"))
        await session.commit()
