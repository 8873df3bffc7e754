"""One statement on the pooled connection's own asyncpg connection (PostgreSQL only).

For the hot paths that run a single hand-written statement (a ``message:send``, a trivia
import round): asyncpg's ``fetchrow`` with its ``$n`` parameters, in autocommit (no BEGIN,
no COMMIT: the statement is its own transaction), with none of SQLAlchemy's per-execution
work (execution context, parameter processing, result wrapping) in between. The connection
still comes from, and goes back to, the engine's pool.

asyncpg's errors come out as SQLAlchemy's (an ``IntegrityError`` for a constraint, a
``DataError`` for a value PostgreSQL refused, an ``OperationalError`` with the connection
invalidated when it broke), so the callers and the error handlers (an outage is the usual
503) see what the ORM paths raise, and a broken connection leaves the pool. The engine's
``before_cursor_execute`` listeners still hear of the statement (with no cursor).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import exc as sa
from sqlalchemy.ext.asyncio import AsyncEngine

# A connection that broke under the statement: the pool must not hand it out again.
_BROKEN = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
    OSError,
)


async def fetch_row(engine: AsyncEngine, statement: str, *args: Any) -> asyncpg.Record | None:
    """The first row of ``statement`` (asyncpg placeholders ``$1``...), run in autocommit on
    a pooled connection; None when it answers no row."""
    async with engine.connect() as connection:
        fairy = await connection.get_raw_connection()
        driver = fairy.driver_connection
        assert driver is not None
        announce = connection.sync_engine.dispatch.before_cursor_execute
        if announce:  # someone listens (statement counts, tracing): a no-op otherwise
            announce(connection.sync_connection, None, statement, args, None, False)
        try:
            return await driver.fetchrow(statement, *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise sa.IntegrityError(statement, args, exc) from exc
        except asyncpg.DataError as exc:
            raise sa.DataError(statement, args, exc) from exc
        except _BROKEN as exc:
            fairy.invalidate(exc)
            raise sa.OperationalError(statement, args, exc, connection_invalidated=True) from exc
        except asyncpg.PostgresError as exc:
            raise sa.DBAPIError(statement, args, exc) from exc
