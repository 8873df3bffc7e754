"""`litestar achievements ...`: the domain's command line, registered as a CLI plugin.

    litestar --app app.asgi:create_app achievements seed
    litestar --app app.asgi:create_app achievements seed --synthetic-players 100000 \
        --awards-per-player 10
"""

from __future__ import annotations

import asyncio

import click
from litestar import Litestar
from litestar.cli._utils import LitestarGroup
from litestar.plugins import CLIPluginProtocol
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.config import Settings
from app.domain.achievements.seed import finish_seed, load_catalogue, load_synthetic
from app.lib.db import create_sqlalchemy_config


@click.group(cls=LitestarGroup, name="achievements")
def achievements_group() -> None:
    """The achievements service: seed data."""


@achievements_group.command(name="seed")  # type: ignore[untyped-decorator]  # LitestarGroup
@click.option(
    "--synthetic-players",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also add this many synthetic players with awards (for benchmarks).",
)
@click.option(
    "--awards-per-player",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Average awards per synthetic player (capped by the catalogue's size).",
)
@click.option("--random-seed", type=int, default=2026, show_default=True)
def seed_command(
    app: Litestar, synthetic_players: int, awards_per_player: int, random_seed: int
) -> None:
    """Load the bilingual catalogue (idempotent) and, optionally, synthetic players."""
    settings: Settings = app.state.settings
    asyncio.run(seed(settings, synthetic_players, awards_per_player, random_seed))


async def seed(
    settings: Settings, synthetic_players: int, awards_per_player: int, random_seed: int
) -> None:
    console = Console()
    engine = create_sqlalchemy_config(settings, pooled=False).get_engine()
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessions() as session:
            added = await load_catalogue(session)
            await session.commit()
            console.print(f"catalogue: {added} achievements added")
            if synthetic_players:
                with Progress(
                    "[progress.description]{task.description}",
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console,
                ) as progress:
                    tasks = {
                        "players": progress.add_task("players", total=synthetic_players),
                        "awards": progress.add_task(
                            "awards (about)", total=synthetic_players * awards_per_player
                        ),
                    }
                    players, awards = await load_synthetic(
                        session,
                        players=synthetic_players,
                        awards_per_player=awards_per_player,
                        random_seed=random_seed,
                        progress=lambda kind, n: progress.advance(tasks[kind], n),
                    )
                    await session.commit()
                console.print(f"synthetic: {players} players, {awards} awards added")
            await finish_seed(session)
    finally:
        await engine.dispose()


class AchievementsCLIPlugin(CLIPluginProtocol):
    """Adds the ``achievements`` command group to the ``litestar`` CLI."""

    def on_cli_init(self, cli: click.Group) -> None:
        cli.add_command(achievements_group)
