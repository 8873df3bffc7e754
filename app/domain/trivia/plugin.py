"""The trivia importer's lifetime: one per application, built with its lifespan.

The importer (its httpx client to the upstream, its store) is created when the application
starts and lives in ``state.trivia_importer``; when the application stops its client is
closed, and with it the keep-alive connections to the upstream. Only a serving process
pays for building the client (it loads the CA bundle): the worker and the CLI commands do
not run the application's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from litestar.datastructures import State
from litestar.plugins import InitPluginProtocol

from app.config import Settings
from app.domain.trivia.services import TriviaImporter, create_upstream_client
from app.domain.trivia.sources import create_trivia_source
from app.domain.trivia.store import TriviaStore

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
    from litestar import Litestar
    from litestar.config.app import AppConfig

STATE_KEY = "trivia_importer"


def provide_trivia_importer(state: State) -> TriviaImporter:
    """The application's importer (see :class:`TriviaPlugin`)."""
    importer: TriviaImporter = state[STATE_KEY]
    return importer


class TriviaPlugin(InitPluginProtocol):
    def __init__(self, settings: Settings, db_config: SQLAlchemyAsyncConfig) -> None:
        self.settings = settings
        self.db_config = db_config

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.importer)
        return app_config

    @asynccontextmanager
    async def importer(self, app: Litestar) -> AsyncIterator[TriviaImporter]:
        source = create_trivia_source(self.settings)
        store = TriviaStore(self.db_config.get_engine(), source.name)
        importer = TriviaImporter(
            store, source, create_upstream_client(self.settings), self.settings
        )
        app.state[STATE_KEY] = importer
        try:
            yield importer
        finally:
            del app.state[STATE_KEY]
            await importer.http.aclose()
