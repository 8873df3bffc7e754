"""Shared pieces of the benchmarks: a server process, a closed-loop load driver, a report.

Benchmarks are not tests: they print figures (throughput, p50/p99) next to a baseline
measured in the same run, on this machine, and assert nothing about time.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from tests.support import TEST_DATABASE_URL, free_port

BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


@dataclass
class Figures:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

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
                ok = await operation()
            except Exception:
                ok = False
            if ok:
                figures.latencies.append(time.perf_counter() - started)
            else:
                figures.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    figures.elapsed = time.perf_counter() - started
    return figures


@contextmanager
def server_process(env: dict[str, str] | None = None, workers: int = 1) -> Iterator[str]:
    """uvicorn serving create_asgi in its own process(es) against the bench services."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", TEST_DATABASE_URL),
        "REDIS_URL": BENCH_REDIS_URL,
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", "app.asgi:create_asgi", "--factory"]
    command += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
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
