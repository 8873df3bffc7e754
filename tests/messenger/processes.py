"""API replicas as real processes (uvicorn) on the test database and Redis, for tests that
kill one or give one a wrong clock. Readiness waits are long: the machine may be busy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.config import Settings
from tests.support import READY_SECONDS, free_port

ROOT = Path(__file__).resolve().parents[2]
# Loaded by a replica started with ``clock_behind_seconds``: its UUIDv7 ids are made from a
# clock that lags, as on a node whose NTP has drifted. Only the id library's clock is
# moved; everything else in that process is real.
_SKEWED_CLOCK = """
import time
import uuid_utils

_real_uuid7 = uuid_utils.uuid7
_BEHIND_NS = int({behind} * 1_000_000_000)


def _lagging_uuid7(*, nanoseconds=None):
    return _real_uuid7(nanoseconds=(nanoseconds or time.time_ns()) - _BEHIND_NS)


uuid_utils.uuid7 = _lagging_uuid7
"""


class ApiProcess:
    def __init__(
        self,
        settings: Settings,
        *,
        env: dict[str, str] | None = None,
        clock_behind_seconds: float = 0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        variables = {
            **os.environ,
            "APP_ENV": "test",
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url or "",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        if clock_behind_seconds:
            directory = tempfile.mkdtemp(prefix="quintet-skew-")
            Path(directory, "sitecustomize.py").write_text(
                _SKEWED_CLOCK.format(behind=clock_behind_seconds)
            )
            variables["PYTHONPATH"] = os.pathsep.join(
                [directory, *filter(None, [os.environ.get("PYTHONPATH")])]
            )
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.asgi:create_asgi",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            env=variables,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API process exited:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the API process did not start:\n{self.output()}")

    def kill(self) -> None:
        """Die without a goodbye, as a crashed replica does."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def start_all(processes: list[ApiProcess]) -> list[ApiProcess]:
    """Wait for processes that were started together (they boot in parallel)."""
    try:
        for process in processes:
            process.wait_ready()
    except BaseException:
        for process in processes:
            process.stop()
        raise
    return processes
