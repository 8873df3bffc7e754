"""Bare Litestar applications the HTTP path benchmarks measure the real one against, served
by the same uvicorn with the same settings (see tests/bench/http_paths.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
from litestar import Litestar, get
from litestar.datastructures import State


@get("/hello", sync_to_thread=False)
def hello() -> dict[str, str]:
    return {"status": "ok"}


hello_app = Litestar([hello], logging_config=None)


@asynccontextmanager
async def _pool(app: Litestar) -> AsyncIterator[None]:
    dsn = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    app.state.pool = await asyncpg.create_pool(dsn, min_size=4, max_size=10)
    try:
        yield
    finally:
        await app.state.pool.close()


@get("/user")
async def user(state: State) -> dict[str, Any]:
    """One primary-key query over asyncpg: what reading the signed-in account needs."""
    row = await state.pool.fetchrow(
        "SELECT id, name, username, bio, phone, created_at FROM user_account WHERE id = $1",
        UUID(os.environ["BENCH_USER_ID"]),
    )
    return {"id": str(row["id"]), "name": row["name"], "username": row["username"]}


pk_query_app = Litestar([hello, user], lifespan=[_pool], logging_config=None)
