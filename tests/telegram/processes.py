"""The application's CLI processes (``litestar workers run``, ``litestar telegram poll``) run
as production runs them, in their own OS processes, wired to the fake Bot API."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from app.config import BASE_DIR, Settings
from tests.telegram.fake_bot_api import BOT_TOKEN, BOT_USERNAME


def process_env(settings: Settings, bot_api_url: str, **extra: str) -> dict[str, str]:
    """The environment of a process configured like ``settings``, talking to the fake API."""
    env = dict(os.environ)
    env.update(
        {
            "APP_ENV": "test",
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url or "",
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "TELEGRAM_API_URL": bot_api_url,
            "TELEGRAM_BOT_USERNAME": BOT_USERNAME,
            "TELEGRAM_RETRY_BASE_SECONDS": "0.2",
            "LOG_LEVEL": "INFO",
            **extra,
        }
    )
    env.pop("WORKER_IN_PROCESS", None)
    return env


@dataclass
class AppProcess:
    process: asyncio.subprocess.Process
    log: Path

    def read_log(self) -> str:
        return self.log.read_text(errors="replace")

    def output(self) -> str:
        """What the process printed so far; raises as soon as it has died."""
        if self.process.returncode is not None:
            raise AssertionError(
                f"the process exited ({self.process.returncode}):\n{self.read_log()}"
            )
        return self.read_log()


@asynccontextmanager
async def litestar_process(
    args: list[str], env: dict[str, str], log: Path
) -> AsyncIterator[AppProcess]:
    """Run ``litestar --app app.asgi:create_app <args>``, stopped with SIGTERM on exit."""
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "litestar",
            "--app",
            "app.asgi:create_app",
            *args,
            cwd=BASE_DIR,
            env=env,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            yield AppProcess(process, log)
        finally:
            await stop_process(process)
            output.flush()


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
