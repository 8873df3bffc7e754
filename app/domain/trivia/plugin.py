"""The trivia importer's lifetime: one per application, its upstream client closed on
shutdown.

The importer (its httpx client, its store) is built on the first import, not at start-up:
building an httpx client loads the CA bundle (a quarter of a second of CPU), which a
process that never imports (a worker, a CLI call) should not pay. It lives in
``state.trivia_importer``; the shutdown hook closes its client and so its keep-alive
connections to the upstream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.datastructures import State
from litestar.plugins import InitPluginProtocol
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.domain.trivia.services import TriviaImporter, create_upstream_client
from app.domain.trivia.sources import create_trivia_source
from app.domain.trivia.store import TriviaStore

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig

STATE_KEY = "trivia_importer"


def provide_trivia_importer(
    db_engine: AsyncEngine, settings: Settings, state: State
) -> TriviaImporter:
    """The application's importer, built on first use (synchronously: no await between the
    look-up and the store, so concurrent first requests cannot build two)."""
    importer: TriviaImporter | None = state.get(STATE_KEY)
    if importer is None:
        source = create_trivia_source(settings)
        importer = TriviaImporter(
            TriviaStore(db_engine, source.name), source, create_upstream_client(settings), settings
        )
        state[STATE_KEY] = importer
    return importer


async def close_trivia_importer(app: Litestar) -> None:
    importer: TriviaImporter | None = app.state.get(STATE_KEY)
    if importer is not None:
        await importer.http.aclose()
        del app.state[STATE_KEY]


class TriviaPlugin(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.on_shutdown.append(close_trivia_importer)
        return app_config
