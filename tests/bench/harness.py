"""Shared pieces of the benchmarks: a server process, a closed-loop load driver, a report.

Benchmarks are not tests: they print figures (throughput, p50/p99) next to a baseline
measured in the same run, on this machine, and assert nothing about time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import httpx

from app.config import Settings
from app.lib.auth import issue_access_token
from app.lib.db import upgrade_database
from app.lib.ids import new_uuid7
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


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def uvicorn_process(
    app: str = "app.asgi:create_asgi",
    env: dict[str, str] | None = None,
    workers: int = 1,
    *,
    factory: bool = True,
    ready_path: str = "/health/ready",
) -> Iterator[Server]:
    """uvicorn serving ``app`` in its own process(es) against the bench services, ready when
    ``ready_path`` answers 200 (a bare app without /health/ready: give its own route).
    With ``workers`` = 1 uvicorn serves in the process it starts, without a supervisor:
    the pid is the server's; with more, the supervisor's (:func:`cpu_seconds` adds the
    workers). ``factory``: ``app`` names a function that builds the app (create_asgi).

    The keep-alive timeout is the deployed one (docker/entrypoint.sh): longer than any
    pause of a load client, so an idle pooled connection is not closed under it."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": BENCH_DATABASE_URL,
        "REDIS_URL": BENCH_REDIS_URL,
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", app, *(["--factory"] if factory else [])]
    command += ["--host", "127.0.0.1", "--port", str(port), "--timeout-keep-alive", "75"]
    # --workers always: without it uvicorn would read WEB_CONCURRENCY from the environment.
    command += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
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
                raise RuntimeError(f"the benchmark server {app} did not start")
            time.sleep(0.2)
        yield Server(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def server_process(env: dict[str, str] | None = None, workers: int = 1) -> Iterator[str]:
    """uvicorn serving create_asgi in its own process(es) against the bench services."""
    with uvicorn_process(env=env, workers=workers) as server:
        yield server.url


# --- a client that retries what it may ------------------------------------------------------------
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class RetryIdempotentTransport(httpx.AsyncBaseTransport):
    """Sends an idempotent request once more when the connection dropped under it (the
    server closed a keep-alive connection as the request went out), as browsers and proxies
    do; anything else, and a second failure, goes to the caller."""

    def __init__(self, **transport_options: object) -> None:
        self.inner = httpx.AsyncHTTPTransport(**transport_options)  # type: ignore[arg-type]
        self.retried = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.inner.handle_async_request(request)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            if request.method not in IDEMPOTENT_METHODS:
                raise
            self.retried += 1
            return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- CPU time of a process -------------------------------------------------------------------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        text = stat.read().decode()
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, *, descendants: bool = True) -> float:
    """CPU time (user + system, seconds) the process ``pid`` has used so far, read from
    /proc/<pid>/stat; with ``descendants``, plus that of its live child processes (uvicorn's
    workers, a pool's processes), recursively, and of the children it has already reaped.
    Read it before and after the measured window: the difference is the window's CPU."""
    try:
        fields = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # Fields 14-17 of stat(5) (utime, stime, cutime, cstime) are at 11-14 here.
    ticks = int(fields[11]) + int(fields[12])
    if descendants:
        ticks += int(fields[13]) + int(fields[14])
    seconds = ticks / CLOCK_TICKS
    if descendants:
        seconds += sum(cpu_seconds(child) for child in _children(pid))
    return seconds


def rss_mb(pid: int) -> float:
    """The resident memory (VmRSS) of the process ``pid`` now, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _children(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat_fields(int(entry))[1]) == pid:
                    children.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return children


# --- wrk ---------------------------------------------------------------------------------------
@dataclass
class WrkFigures:
    """What one wrk run measured, with the CPU that wrk itself (the client) used."""

    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    client_cpu: float
    server_cpu: float = float("nan")

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_cpu_per_request_ms(self) -> float:
        return self.server_cpu / self.requests * 1000 if self.requests else float("nan")

    @property
    def server_cpu_per_request_us(self) -> float:
        return self.server_cpu_per_request_ms * 1000

    @property
    def client_cpu_percent(self) -> float:
        """wrk's CPU in % of one core over the run."""
        return self.client_cpu / self.seconds * 100 if self.seconds else float("nan")


WRK_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    name: str,
    url: str,
    *,
    seconds: float = 5,
    connections: int = 16,
    threads: int = 1,
    script: str | None = None,
    headers: dict[str, str] | None = None,
    server_pid: int | None = None,
) -> WrkFigures:
    """Load ``url`` with wrk (closed loop, keep-alive; a Lua ``script`` for methods, bodies
    and changing headers, or fixed ``headers`` that run_wrk writes a script for) and read
    its req/s, p50, p99 and errors (non-2xx/3xx, socket errors); the client's CPU from the
    exited process, the server's from /proc around the run. wrk takes whole seconds."""
    if script and headers:
        raise ValueError("give either a Lua script or headers: the script sets its own")
    command = ["wrk", "--latency", "-t", str(threads), "-c", str(connections)]
    command += ["-d", f"{max(1, round(seconds))}s", "--timeout", "30s"]
    with ExitStack() as stack:
        if headers:
            script = stack.enter_context(headers_script(headers))
        return _measure_wrk(name, [*command, *(["-s", script] if script else []), url], server_pid)


@contextmanager
def headers_script(headers: dict[str, str]) -> Iterator[str]:
    """A temporary wrk Lua script that sends ``headers`` with every request; its path."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        # JSON string literals are Lua string literals too (for ASCII, as headers are).
        lua.writelines(
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items()
        )
        lua.flush()
        yield lua.name


def _measure_wrk(name: str, command: list[str], server_pid: int | None) -> WrkFigures:
    before = cpu_seconds(server_pid) if server_pid else 0.0
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    server_cpu = cpu_seconds(server_pid) - before if server_pid else float("nan")
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    latency = {q: float(v) * WRK_UNITS[u] for q, v, u in WRK_LATENCY.findall(output)}
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", output)
    if not done or len(latency) != 2:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    elapsed = float(done.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[done.group(3)]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkFigures(
        name,
        requests=int(done.group(1)),
        seconds=elapsed,
        p50_ms=latency["50"],
        p99_ms=latency["99"],
        errors=errors,
        client_cpu=usage.ru_utime + usage.ru_stime,
        server_cpu=server_cpu,
    )


def print_wrk_table(title: str, rows: Sequence[WrkFigures]) -> None:
    print(f"\n### {title}\n")
    print(
        "| operation | requests | throughput | p50 | p99 | errors | server CPU/request | client CPU |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for f in rows:
        print(
            f"| {f.name} | {f.requests} | {f.throughput:,.0f} req/s | {f.p50_ms:.2f} ms | "
            f"{f.p99_ms:.2f} ms | {f.errors} | {f.server_cpu_per_request_ms:.3f} ms | "
            f"{f.client_cpu:.2f} s of {f.seconds:.1f} s ({f.client_cpu_percent:.0f} %) |"
        )


# --- messenger set-up shared by the Socket.IO benchmarks ---------------------------------------
async def seed_groups(
    dsn: str, clients: int, group_size: int
) -> tuple[list[str], dict[str, list[int]]]:
    """``clients`` accounts in group chats of ``group_size``, copied straight into the
    migrated schema (the Socket.IO benchmarks are about delivery, not sign-up). Answers the
    user ids and, per chat id, the indexes of its members (consecutive runs of users)."""
    connection = await asyncpg.connect(dsn)
    run = new_uuid7().hex[-6:]  # the random end of the id: distinct for every run
    now = datetime.now(UTC)
    users = [str(new_uuid7()) for _ in range(clients)]
    try:
        await connection.copy_records_to_table(
            "user_account",
            columns=["id", "phone", "name", "bio", "password_hash", "created_at", "updated_at"],
            records=[
                (u, f"+bench{run}{i}", f"Fan {i}", "", "-", now, now) for i, u in enumerate(users)
            ],
        )
        groups: dict[str, list[int]] = {}
        chat_rows, member_rows = [], []
        for g in range(clients // group_size):
            chat_id = str(new_uuid7())
            members = list(range(g * group_size, (g + 1) * group_size))
            groups[chat_id] = members
            chat_rows.append((chat_id, "group", f"Group {g}", users[members[0]], now, now))
            member_rows += [
                (str(new_uuid7()), chat_id, users[i], "member", now, False) for i in members
            ]
        await connection.copy_records_to_table(
            "chat",
            columns=["id", "type", "title", "owner_id", "created_at", "last_activity_at"],
            records=chat_rows,
        )
        await connection.copy_records_to_table(
            "chat_member",
            columns=["id", "chat_id", "user_id", "role", "joined_at", "muted"],
            records=member_rows,
        )
    finally:
        await connection.close()
    return users, groups


def access_tokens(users: Sequence[str], ttl_seconds: int = 3600) -> list[str]:
    """An access token for each user id, signed with the secret the bench servers use."""
    secret = Settings().secret_key
    return [issue_access_token(secret, UUID(u), ttl_seconds).token for u in users]


class ClientProcesses:
    """Load clients in ``processes`` processes (spawned, each running ``target(pipe,
    *args)``), driven over a pipe: a command goes to all of them and each answers. The
    target serves commands until ``stop``."""

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...], processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(target=target, args=(theirs, *args), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def ask(self, *command: Any) -> list[Any]:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def connect(self, members: Sequence[Any]) -> int:
        """Every ``processes``-th member to each process (so every group has members in
        each); answers how many clients the processes hold now."""
        shares = [members[n :: len(self.pipes)] for n in range(len(self.pipes))]
        for pipe, share in zip(self.pipes, shares, strict=True):
            pipe.send(("connect", share))
        return sum(pipe.recv() for pipe in self.pipes)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.ask("stop")
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


def settle(*pids: int, timeout: float = 20) -> float:
    """Wait until the servers ``pids`` are idle (each under 5 % of a core for a second):
    the connections' presence traffic is over. Answers how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = [cpu_seconds(pid, descendants=False) for pid in pids]
        time.sleep(1)
        after = [cpu_seconds(pid, descendants=False) for pid in pids]
        if all(b - a < 0.05 for a, b in zip(before, after, strict=True)):
            break
    return time.monotonic() - started


def summary(values: list[float]) -> str:
    return f"mean {statistics.fmean(values):.2f}, min {min(values):.2f}, max {max(values):.2f}"
