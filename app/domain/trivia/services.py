"""Importing questions from the upstream and reading them back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from app.config import Settings
from app.domain.trivia.models import TriviaQuestion
from app.domain.trivia.sources import TriviaSource
from app.domain.trivia.store import SavedQuestion, TriviaStore
from app.lib.errors import InvalidInputError, UpstreamError, UpstreamTimeoutError

# httpx is imported where a client is built or its errors caught: on the first import only.
if TYPE_CHECKING:
    import httpx

logger = structlog.get_logger("app.trivia")


def create_upstream_client(settings: Settings) -> httpx.AsyncClient:
    """One client per application: building one loads the CA bundle (a quarter of a
    second of CPU), and a shared one keeps connections to the upstream alive."""
    import httpx

    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.trivia_timeout_seconds),
        # A redirect could send the request anywhere (another port of this host, an
        # internal service): none is followed, the upstream must answer where it is.
        follow_redirects=False,
        headers={"User-Agent": "quintet-trivia/1.0"},
    )


@dataclass
class ImportProgress:
    count: int
    stored: int = 0
    rounds: int = 0

    @property
    def missing(self) -> int:
        return self.count - self.stored

    def stored_text(self, *, sentence: bool = False) -> str:
        text = (
            f"{self.stored} of {self.count} new questions were stored and are kept."
            if self.stored
            else f"none of the {self.count} new questions were stored."
        )
        return text[0].upper() + text[1:] if sentence else text

    def headers(self) -> dict[str, str]:
        return {"X-Questions-Stored": str(self.stored)}


class TriviaImporter:
    """Stores unique questions from a :class:`TriviaSource`.

    Uniqueness is the database's job: rows go in with ``INSERT … ON CONFLICT DO NOTHING
    RETURNING``, so only the rows really inserted are counted, whatever other imports run at
    the same time. Each round is its own statement in autocommit and inserts in upstream-id
    order, so two imports never hold locks the other one waits for (no deadlock) for longer
    than a statement. No ORM session: :class:`TriviaStore` runs Core statements built once.
    """

    def __init__(
        self,
        store: TriviaStore,
        source: TriviaSource,
        http: httpx.AsyncClient,
        settings: Settings,
    ) -> None:
        self.store = store
        self.source = source
        self.http = http
        self.settings = settings

    async def import_questions(self, count: int) -> SavedQuestion | None:
        """Store ``count`` new questions; answer the one saved most recently before.

        A failed import keeps the questions it stored before failing (each round commits:
        they are valid, unique questions); the error says how many, in its detail and in the
        ``X-Questions-Stored`` header."""
        limit = self.settings.trivia_max_questions
        if not 1 <= count <= limit:
            raise InvalidInputError(
                f"questions_num must be between 1 and {limit}.",
                errors=[{"field": "questions_num", "message": f"between 1 and {limit}"}],
            )
        progress = ImportProgress(count)
        try:
            return await self._store_new(progress)
        except (UpstreamError, UpstreamTimeoutError) as exc:
            if exc.headers is None:  # a failure of one request: say what the import kept
                exc.detail = f"{exc.detail} {progress.stored_text(sentence=True)}"
                exc.headers = progress.headers()
            raise

    async def _store_new(self, progress: ImportProgress) -> SavedQuestion | None:
        """Ask the upstream for the missing questions while it brings new ones; give up
        after TRIVIA_MAX_IDLE_ROUNDS answers in a row that brought nothing new. Answers the
        question saved last before the first round stored anything."""
        idle_limit = self.settings.trivia_max_idle_rounds
        deadline_seconds = self.settings.trivia_deadline_seconds
        started = time.monotonic()
        idle = empty = 0
        previous = None
        while progress.missing > 0:
            # The deadline bounds the upstream calls only: a round that got its answer
            # stores it, so the count of what was kept is exact.
            remaining = started + deadline_seconds - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    batch = await self.source.fetch_random(self.http, progress.missing)
            except TimeoutError:
                raise UpstreamTimeoutError(
                    f"Importing from the trivia upstream took longer than "
                    f"{deadline_seconds:g} seconds (after {progress.rounds} requests); "
                    f"{progress.stored_text()}",
                    headers=progress.headers(),
                ) from None
            first = progress.rounds == 0
            progress.rounds += 1
            result = await self.store.store(batch[: progress.missing], with_previous=first)
            if first:
                previous = result.previous
            progress.stored += result.inserted
            if result.inserted:
                idle = empty = 0
                continue
            idle += 1
            empty += not batch
            if idle >= idle_limit:
                what = (
                    "answered with no questions at all"
                    if empty == idle
                    else "sent only questions that are already stored"
                )
                raise UpstreamError(
                    f"The trivia upstream {what} {idle} times in a row, so the import "
                    f"stopped after {progress.rounds} requests; {progress.stored_text()}",
                    headers=progress.headers(),
                )
        logger.info(
            "trivia_imported",
            source=self.source.name,
            count=progress.count,
            rounds=progress.rounds,
            seconds=round(time.monotonic() - started, 3),
        )
        return previous


class TriviaService(SQLAlchemyAsyncRepositoryService[TriviaQuestion]):
    """Reads the stored questions back through advanced-alchemy's repository (the import
    writes through :class:`TriviaStore`, outside the ORM)."""

    class Repo(SQLAlchemyAsyncRepository[TriviaQuestion]):
        model_type = TriviaQuestion

    repository_type = Repo

    async def list_questions(self, page: LimitOffset) -> tuple[Sequence[TriviaQuestion], int]:
        """Stored questions, newest first, and how many there are."""
        return await self.get_many_and_count(page, OrderBy("id", "desc"))
