"""Private PostgreSQL and Redis instances that fault tests may stop and restart freely,
without disturbing the shared services other tests use."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support import IN_CI, READY_SECONDS, free_port


def _require(binary: str | None, what: str) -> str:
    if binary and os.path.exists(binary):
        return binary
    if IN_CI:
        pytest.fail(f"CI=true and {what} is missing")
    pytest.skip(f"{what} is missing")


@dataclass
class PrivateRedis:
    port: int
    directory: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                self.directory,
                "--pidfile",
                f"{self.directory}/redis.pid",
            ],
            check=True,
        )
        self._wait(up=True)

    def stop(self) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
            check=False,
            capture_output=True,
        )
        self._wait(up=False)

    def _wait(self, *, up: bool) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            answered = (
                subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
                ).stdout.strip()
                == "PONG"
            )
            if answered == up:
                return
            time.sleep(0.1)
        raise RuntimeError(f"private Redis did not {'start' if up else 'stop'}")


@dataclass
class PrivatePostgres:
    port: int
    directory: str
    bin_dir: str

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                f"{self.bin_dir}/pg_ctl",
                "-D",
                f"{self.directory}/data",
                *args,
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", f"{self.directory}/log", "-w", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "-w", "stop")


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    _require(shutil.which("redis-server"), "redis-server")
    directory = tempfile.mkdtemp(prefix="quintet-redis-")
    redis = PrivateRedis(free_port(), directory)
    redis.start()
    yield redis
    redis.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    initdb = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    _require(initdb, "PostgreSQL's initdb")
    assert initdb
    bin_dir = os.path.dirname(initdb)
    directory = tempfile.mkdtemp(prefix="quintet-pg-")
    shutil.chown(directory, "postgres")
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            initdb,
            "-D",
            f"{directory}/data",
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    postgres = PrivatePostgres(free_port(), directory, bin_dir)
    postgres.start()
    yield postgres
    with contextlib.suppress(subprocess.CalledProcessError):
        postgres.stop()
    shutil.rmtree(directory, ignore_errors=True)
