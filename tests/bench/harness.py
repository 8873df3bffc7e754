"""Shared pieces of the benchmarks: a server process, a closed-loop load driver, a report.

Benchmarks are not tests: they print figures (throughput, p50/p99) next to a baseline
measured in the same run, on this machine, and assert nothing about time.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import urlsplit

import asyncpg
import httpx

from app.lib.db import upgrade_database
from tests.support import free_port, make_settings

# The benchmarks' own database and Redis database, never the test suite's.
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/quintet_bench"
)
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
ContextT = TypeVar("ContextT")


@dataclass
class Figures:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    # Why operations failed (the exception, or "refused" when the operation said so).
    failures: Counter[str] = field(default_factory=Counter)

    def record(self, started: float, ok: bool, failure: str = "refused") -> None:
        if ok:
            self.latencies.append(time.perf_counter() - started)
        else:
            self.errors += 1
            self.failures[failure] += 1

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def row(self) -> str:
        return (
            f"| {self.name} | {len(self.latencies)} | {self.throughput:,.0f} req/s | "
            f"{self.percentile(0.5):.1f} ms | {self.percentile(0.99):.1f} ms | {self.errors} |"
        )


def print_table(title: str, rows: list[Figures]) -> None:
    print(f"\n### {title}\n")
    print("| operation | requests | throughput | p50 | p99 | errors |")
    print("|---|---|---|---|---|---|")
    for figures in rows:
        print(figures.row())


async def drive(
    name: str,
    operation: Callable[[], Awaitable[bool]],
    *,
    concurrency: int = 16,
    duration: float = 10.0,
) -> Figures:
    """Run ``operation`` from ``concurrency`` loops for ``duration`` seconds."""
    figures = Figures(name)
    deadline = time.perf_counter() + duration

    async def loop() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                figures.record(started, await operation())
            except Exception as exc:
                figures.record(started, False, failure_name(exc))

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    figures.elapsed = time.perf_counter() - started
    return figures


def failure_name(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:120]


@dataclass(frozen=True)
class Operation(Generic[ContextT]):
    """One kind of request in a mixed workload, drawn with probability weight / total."""

    name: str
    weight: int
    call: Callable[[ContextT], Awaitable[bool]]


async def drive_mix(
    operations: Sequence[Operation[ContextT]],
    contexts: Sequence[ContextT],
    *,
    duration: float,
    random_seed: int = 7,
) -> list[Figures]:
    """A closed loop per context (a virtual user, with its own token and socket): each
    draws the next operation by weight and waits for its answer before the next one.
    Answers one Figures per operation, in the order given."""
    figures = {operation.name: Figures(operation.name) for operation in operations}
    weights = [operation.weight for operation in operations]
    deadline = time.perf_counter() + duration

    async def loop(context: ContextT, rng: random.Random) -> None:
        while time.perf_counter() < deadline:
            operation = rng.choices(operations, weights)[0]
            started = time.perf_counter()
            try:
                ok = await operation.call(context)
            except Exception as exc:
                figures[operation.name].record(started, False, failure_name(exc))
            else:
                figures[operation.name].record(started, ok)

    started = time.perf_counter()
    await asyncio.gather(*(loop(c, random.Random(random_seed + i)) for i, c in enumerate(contexts)))
    elapsed = time.perf_counter() - started
    for each in figures.values():
        each.elapsed = elapsed
    return list(figures.values())


async def prepare_database(database_url: str) -> None:
    """Create the database if needed, drop everything in it and migrate it to head.
    Only for databases that belong to the benchmarks: their data is gone afterwards."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    name = urlsplit(dsn).path.lstrip("/")
    if name in ("", "test", "postgres"):
        raise SystemExit(f"refusing to reset the database {name!r}: give the benchmark its own")
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(dsn)
    await connection.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    await connection.close()
    await asyncio.to_thread(upgrade_database, make_settings(database_url=database_url))


@contextmanager
def server_process(env: dict[str, str] | None = None, workers: int = 1) -> Iterator[str]:
    """uvicorn serving create_asgi in its own process(es) against the bench services."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": BENCH_DATABASE_URL,
        "REDIS_URL": BENCH_REDIS_URL,
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", "app.asgi:create_asgi", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def summary(values: list[float]) -> str:
    return f"mean {statistics.fmean(values):.2f}, min {min(values):.2f}, max {max(values):.2f}"


# --- a server process whose CPU time can be read, and wrk --------------------------------


@dataclass(frozen=True)
class ServedProcess:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (from /proc/<pid>/stat)."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


@contextmanager
def uvicorn_process(
    target: str,
    *,
    factory: bool = False,
    env: dict[str, str] | None = None,
    ready_path: str = "/health/live",
) -> Iterator[ServedProcess]:
    """One uvicorn process (no --workers supervisor: the pid is the server) serving
    ``target``, the same settings for the app and for a bare baseline."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": BENCH_DATABASE_URL,
        "REDIS_URL": BENCH_REDIS_URL,
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", target, *(["--factory"] if factory else [])]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}{ready_path}").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the benchmark server {target} did not start")
            time.sleep(0.2)
        yield ServedProcess(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)


@dataclass(frozen=True)
class WrkFigures:
    name: str
    requests: int
    throughput: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us: float  # server CPU per request
    client_cpu_percent: float  # wrk's CPU, in % of one core over the run

    def row(self) -> str:
        return (
            f"| {self.name} | {self.requests} | {self.throughput:,.0f} req/s | "
            f"{self.p50_ms:.2f} ms | {self.p99_ms:.2f} ms | {self.errors} | "
            f"{self.server_cpu_us:,.0f} us | {self.client_cpu_percent:.0f} % |"
        )


WRK_HEADER = (
    "| route | requests | throughput | p50 | p99 | errors | server CPU/request | wrk CPU |\n"
    "|---|---|---|---|---|---|---|---|"
)


def run_wrk(
    name: str,
    server: ServedProcess,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    connections: int = 32,
    seconds: float = 5.0,
    threads: int = 2,
) -> WrkFigures:
    """wrk against one path of ``server`` (a Lua script adds the headers), with the
    server's CPU time per request and wrk's own CPU over the same window."""
    import re
    import resource
    import tempfile

    script = "".join(
        f'wrk.headers["{key}"] = "{value}"\n' for key, value in (headers or {}).items()
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
    ]
    command += ["-s", lua.name, f"{server.url}{path}"]
    cpu_before = server.cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = server.cpu_seconds() - cpu_before
    os.unlink(lua.name)
    client_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if not match:
            return float("nan")
        value, unit = float(match[1]), match[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    total = re.search(r"(\d+) requests in", output)
    requests = int(total[1]) if total else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = (int(non_2xx[1]) if non_2xx else 0) + (
        sum(int(socket_errors[i]) for i in range(1, 5)) if socket_errors else 0
    )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return WrkFigures(
        name=name,
        requests=requests,
        throughput=float(rate[1]) if rate else 0.0,
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        errors=errors,
        server_cpu_us=server_cpu / requests * 1e6 if requests else float("nan"),
        client_cpu_percent=client_cpu / elapsed * 100,
    )
