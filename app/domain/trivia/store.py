"""The import's database work as Core statements, built once at import time.

On PostgreSQL one round of an import is one statement in autocommit: the question saved
last before it (a CTE reading the same snapshot, so never a row of this round) and the
``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING`` of the whole batch,
whatever its size (one shape: SQLAlchemy compiles it once and asyncpg prepares it once per
connection). SQLite has no data-modifying CTE: there the same answer takes two statements.
No ORM objects on this path: rows come back as Core rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Row,
    String,
    Table,
    Text,
    bindparam,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.trivia.models import TriviaQuestion
from app.domain.trivia.sources import UpstreamQuestion

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
# The columns an import fills, and the array type each travels in to unnest().
INSERTED_COLUMNS: dict[str, Any] = {
    "source": String,
    "upstream_id": BigInteger,
    "question": Text,
    "answer": Text,
    "upstream_created_at": TIMESTAMP(timezone=True),
    "category": String,
    "value": Integer,
    "saved_at": TIMESTAMP(timezone=True),
}
UNIQUE_KEY = ["source", "upstream_id"]

latest_statement = select(*ANSWER_COLUMNS).order_by(table.c.id.desc()).limit(1)


def _postgresql_statement(with_previous: bool) -> Any:
    arrays = select(
        *(
            func.unnest(bindparam(name, type_=ARRAY(kind))).label(name)
            for name, kind in INSERTED_COLUMNS.items()
        )
    )
    inserted = (
        postgresql.insert(table)
        .from_select(list(INSERTED_COLUMNS), arrays)
        .on_conflict_do_nothing(index_elements=UNIQUE_KEY)
        .returning(table.c.id)
        .cte("inserted")
    )
    count = select(func.count()).select_from(inserted).scalar_subquery().label("inserted")
    if not with_previous:
        return select(count)
    previous = latest_statement.cte("previous")
    # One row whether or not a question was saved before: the count, and NULLs if none.
    one = select(literal(1).label("one")).subquery("one")
    return select(count, *previous.c).select_from(one.outerjoin(previous, true()))


# Built once: the first round of an import also answers the question saved before it.
POSTGRESQL_FIRST_ROUND = _postgresql_statement(with_previous=True)
POSTGRESQL_NEXT_ROUND = _postgresql_statement(with_previous=False)


@dataclass(frozen=True)
class RoundResult:
    inserted: int
    # The question saved last before the import (asked for in its first round only).
    previous: Row[Any] | None = None


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
        rows = self._rows(batch)
        arrays = {name: [row[name] for row in rows] for name in INSERTED_COLUMNS}
        statement = POSTGRESQL_FIRST_ROUND if with_previous else POSTGRESQL_NEXT_ROUND
        async with self.engine.connect() as connection:
            row = (await connection.execute(statement, arrays)).one()
        previous = row if with_previous and row.upstream_id is not None else None
        return RoundResult(row.inserted, previous)

    async def _store_sqlite(
        self, batch: Sequence[UpstreamQuestion], with_previous: bool
    ) -> RoundResult:
        async with self.engine.connect() as connection:
            previous = (
                (await connection.execute(latest_statement)).first() if with_previous else None
            )
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
