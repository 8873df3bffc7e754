"""The application's lifespan creates its long-lived resources and leaves nothing behind.

The embedded default (SQLite file, in-process Redis stand-in and worker) is started and
stopped in this process, as ``make run`` and Ctrl+C do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from app.asgi import create_app
from app.config import Settings

# Without work to finish, the worker stops as soon as its slots' dequeues return.
PROMPT_STOP_SECONDS = 3.0


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _embedded_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'quintet.db'}")


async def test_stopping_the_embedded_app_waits_for_no_task_and_leaves_none(
    tmp_path: Path,
) -> None:
    app = create_app(_embedded_settings(tmp_path))
    records = _Records()
    saq_logger = logging.getLogger("saq")
    saq_logger.addHandler(records)
    before = asyncio.all_tasks()
    try:
        async with app.lifespan():
            worker = next(iter(app.plugins.get("SAQPlugin").get_workers().values()))
            while not worker.tasks:  # the in-process worker is running its upkeep and slots
                await asyncio.sleep(0.05)
            stopping = time.monotonic()
        stopped_after = time.monotonic() - stopping
    finally:
        saq_logger.removeHandler(records)

    assert not [m for m in records.messages if "did not finish" in m], records.messages
    left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    assert [t for t in left if not t.done()] == []
    assert stopped_after < PROMPT_STOP_SECONDS
