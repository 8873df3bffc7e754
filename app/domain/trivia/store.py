"""The import's database work: statements built once at import time.

On PostgreSQL one round of an import is one statement in autocommit: the question saved
last before it (a CTE reading the same snapshot, so never a row of this round) and the
``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING`` of the whole batch,
whatever its size (one shape, written for asyncpg and prepared once per connection; it runs
on the driver's connection, :func:`app.lib.rawsql.fetch_row`). SQLite has no data-modifying
CTE: there the same answer takes two Core statements. No ORM objects on this path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.trivia.models import TriviaQuestion
from app.domain.trivia.sources import UpstreamQuestion
from app.lib.rawsql import fetch_row

table: Table = TriviaQuestion.__table__  # type: ignore[assignment]
# What an answer needs of the question saved last (the controller's to_question reads these).
ANSWER_COLUMNS = [
    table.c.upstream_id,
    table.c.question,
    table.c.answer,
    table.c.upstream_created_at,
    table.c.category,
    table.c.value,
]
UNIQUE_KEY = ["source", "upstream_id"]

latest_statement = select(*ANSWER_COLUMNS).order_by(table.c.id.desc()).limit(1)


# The batch travels as one array per column; source and saved_at are the same for all.
_INSERT_BATCH = """
inserted AS (
    INSERT INTO trivia_question
        (source, upstream_id, question, answer, upstream_created_at, category, value, saved_at)
    SELECT $1::varchar, batch.*, $8::timestamptz
    FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::varchar[],
                $7::integer[]) AS batch
    ON CONFLICT (source, upstream_id) DO NOTHING
    RETURNING id
)"""
# The first round of an import also answers the question saved before it: one row whether
# or not there is one (NULLs then). The CTE reads the statement's snapshot: never this round.
POSTGRESQL_FIRST_ROUND = f"""
WITH {_INSERT_BATCH}, previous AS (
    SELECT upstream_id, question, answer, upstream_created_at, category, value
    FROM trivia_question ORDER BY id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM inserted) AS inserted, previous.*
FROM (SELECT 1) AS one LEFT JOIN previous ON true
"""  # noqa: S608 - constants only
POSTGRESQL_NEXT_ROUND = f"WITH {_INSERT_BATCH} SELECT count(*) AS inserted FROM inserted"  # noqa: S608


@dataclass(slots=True)
class SavedQuestion:
    """What an answer shows of the question saved last before an import."""

    upstream_id: int
    question: str
    answer: str
    upstream_created_at: datetime
    category: str | None
    value: int | None

    @classmethod
    def of(cls, row: Any) -> SavedQuestion:
        return cls(*(row[column.name] for column in ANSWER_COLUMNS))


@dataclass(frozen=True)
class RoundResult:
    inserted: int
    # The question saved last before the import (asked for in its first round only).
    previous: SavedQuestion | None = None


class TriviaStore:
    """Stores a batch of upstream questions and counts the rows really inserted."""

    def __init__(self, engine: AsyncEngine, source: str) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.source = source
        self.postgresql = engine.dialect.name == "postgresql"

    async def store(self, batch: Sequence[UpstreamQuestion], *, with_previous: bool) -> RoundResult:
        """Insert the new questions of ``batch`` (duplicates skipped, in upstream-id order
        so that concurrent imports never wait on each other's rows in a cycle)."""
        unique = [item for _, item in sorted({q.upstream_id: q for q in batch}.items())]
        if self.postgresql:
            return await self._store_postgresql(unique, with_previous)
        return await self._store_sqlite(unique, with_previous)

    def _rows(self, batch: Sequence[UpstreamQuestion]) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [
            {
                "source": self.source,
                "upstream_id": item.upstream_id,
                "question": item.question,
                "answer": item.answer,
                "upstream_created_at": item.created_at,
                "category": item.category,
                "value": item.value,
                "saved_at": now,
            }
            for item in batch
        ]

    async def _store_postgresql(
        self, batch: Sequence[UpstreamQuestion], with_previous: bool
    ) -> RoundResult:
        statement = POSTGRESQL_FIRST_ROUND if with_previous else POSTGRESQL_NEXT_ROUND
        row = await fetch_row(
            self.engine,
            statement,
            self.source,
            [item.upstream_id for item in batch],
            [item.question for item in batch],
            [item.answer for item in batch],
            [item.created_at for item in batch],
            [item.category for item in batch],
            [item.value for item in batch],
            datetime.now(UTC),
        )
        assert row is not None  # a count always answers one row
        saved_before = with_previous and row["upstream_id"] is not None
        return RoundResult(row["inserted"], SavedQuestion.of(row) if saved_before else None)

    async def _store_sqlite(
        self, batch: Sequence[UpstreamQuestion], with_previous: bool
    ) -> RoundResult:
        async with self.engine.connect() as connection:
            latest = (await connection.execute(latest_statement)).first() if with_previous else None
            previous = SavedQuestion.of(latest._mapping) if latest is not None else None
            if not batch:
                return RoundResult(0, previous)
            statement = (
                sqlite.insert(table)
                .values(self._rows(batch))
                .on_conflict_do_nothing(index_elements=UNIQUE_KEY)
                .returning(table.c.id)
            )
            inserted = len((await connection.execute(statement)).all())
        return RoundResult(inserted, previous)
