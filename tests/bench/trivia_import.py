"""Trivia import of one question (``POST /api/v1/questions/ {"questions_num": 1}``) from a
local upstream, against a bare Litestar route doing the same work by hand.

    python -m tests.bench.trivia_import [--seconds 5] [--rounds 3] [--connections 16]

1. Migrates BENCH_DATABASE_URL to head (nothing else in it is touched: the seeded data of
   the other benchmarks stays) and empties its trivia_question table, before and after; starts a jService-format upstream in a process
   of its own (raw asyncio, HTTP/1.1 keep-alive, fresh ids from a counter, ~20 us a request,
   so neither server waits for it).
2. Starts two uvicorn processes of one worker each: the application (TRIVIA_API_URL = the
   upstream) and the baseline, :func:`baseline_app`: one long-lived httpx.AsyncClient GET
   of the upstream and one asyncpg ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` per
   request, answering ``{}``.
3. After a 1 s warm-up of each (the application builds its upstream client, SQLAlchemy
   compiles its statement, asyncpg prepares it), wrk drives each in turn, ``--rounds`` times, ``--seconds`` each, ``--connections``
   keep-alive connections from one thread: req/s, p50/p99, errors, the server's CPU per
   request (/proc/<pid>/stat around the run) and wrk's own CPU (the client: it must stay
   well below one core, or the figure would be the client's).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import statistics
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import msgspec
from litestar import Litestar, get, post

from app.lib.db import upgrade_database
from tests.bench.harness import (
    BENCH_DATABASE_URL,
    WrkFigures,
    cpu_seconds,
    print_wrk_table,
    run_wrk,
    uvicorn_process,
)
from tests.support import free_port, make_settings

IMPORT_SCRIPT = """
wrk.method = "POST"
wrk.path = "/api/v1/questions/"
wrk.body = '{"questions_num": 1}'
wrk.headers["Content-Type"] = "application/json"
"""


# --- the upstream ------------------------------------------------------------------------------
class _Upstream(asyncio.Protocol):
    """jService's /api/random?count=N, fresh ids every time; keep-alive, no pipelining."""

    ids = itertools.count(1)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            target = head.split(b" ", 2)[1].decode()
            count = int((parse_qs(urlsplit(target).query).get("count") or ["1"])[0])
            clues = [
                {
                    "id": number,
                    "question": f"Question {number}?",
                    "answer": f"Answer {number}",
                    "created_at": "2022-12-30T18:42:47.295Z",
                    "value": 100,
                    "category": {"title": "general"},
                }
                for number in itertools.islice(self.ids, count)
            ]
            body = json.dumps(clues).encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )


def serve_upstream(port: int) -> None:
    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(_Upstream, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(serve())


# --- the baseline --------------------------------------------------------------------------------
class Body(msgspec.Struct):
    questions_num: int


class Clue(msgspec.Struct):
    id: int
    question: str
    answer: str
    created_at: datetime
    value: int | None = None


def baseline_app() -> Litestar:
    """A bare Litestar route doing the import's work by hand: GET the upstream with one
    long-lived httpx client, INSERT the question over an asyncpg pool, answer ``{}``."""
    upstream = os.environ["TRIVIA_API_URL"] + "/api/random"
    dsn = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    state: dict[str, object] = {}

    clues = msgspec.json.Decoder(list[Clue])
    insert = (
        "INSERT INTO trivia_question (source, upstream_id, question, answer, value, "
        "upstream_created_at, saved_at) VALUES ('baseline', $1, $2, $3, $4, $5, now()) "
        "ON CONFLICT (source, upstream_id) DO NOTHING RETURNING id"
    )

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        async with (
            httpx.AsyncClient(timeout=10) as http,
            asyncpg.create_pool(dsn, min_size=2, max_size=10) as pool,
        ):
            state.update(http=http, pool=pool)
            yield

    @post("/api/v1/questions/", status_code=200)
    async def import_one(data: Body) -> dict[str, int]:
        http: httpx.AsyncClient = state["http"]  # type: ignore[assignment]
        pool: asyncpg.Pool = state["pool"]
        response = await http.get(upstream, params={"count": data.questions_num})
        clue = clues.decode(response.content)[0]
        await pool.fetchval(
            insert, clue.id, clue.question, clue.answer, clue.value, clue.created_at
        )
        return {}

    @get("/health/ready")
    async def ready() -> str:
        return "ok"

    return Litestar([import_one, ready], lifespan=[lifespan], logging_config=None)


async def empty_trivia_table(database_url: str, *, migrate: bool = True) -> None:
    """Bring the database to head (creating it if needed) and empty the one table this
    benchmark fills; the benchmarks share the database, so nothing else is reset."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    if migrate:
        name = urlsplit(dsn).path.lstrip("/")
        admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
        try:
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        await asyncio.to_thread(upgrade_database, make_settings(database_url=database_url))
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("TRUNCATE trivia_question")
    finally:
        await connection.close()


# --- the run -----------------------------------------------------------------------------------------
def summarise(name: str, runs: list[WrkFigures]) -> str:
    rates = [r.throughput for r in runs]
    cpu = [r.server_cpu_per_request_ms for r in runs]
    return (
        f"{name}: {statistics.median(rates):,.0f} req/s (n={len(runs)}, "
        f"{min(rates):,.0f}-{max(rates):,.0f}), server CPU {statistics.median(cpu):.2f} ms"
        f"/request ({min(cpu):.2f}-{max(cpu):.2f})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)

    asyncio.run(empty_trivia_table(BENCH_DATABASE_URL))
    port = free_port()
    upstream = multiprocessing.get_context("spawn").Process(
        target=serve_upstream, args=(port,), daemon=True
    )
    upstream.start()
    environment = {"TRIVIA_API_URL": f"http://127.0.0.1:{port}", "APP_ENV": "test"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(IMPORT_SCRIPT)
        script.flush()
        try:
            with (
                uvicorn_process(env=environment) as application,
                uvicorn_process("tests.bench.trivia_import:baseline_app", environment) as bare,
            ):
                runs: dict[str, list[WrkFigures]] = {"baseline": [], "application": []}
                for server in (bare, application):  # warm-up, not counted: first-use costs
                    url = server.url + "/api/v1/questions/"
                    run_wrk("warm-up", url, seconds=1, connections=4, script=script.name)
                upstream_before = cpu_seconds(upstream.pid or 0)
                for _ in range(args.rounds):
                    for name, server in (("baseline", bare), ("application", application)):
                        runs[name].append(
                            run_wrk(
                                f"{name}: POST /api/v1/questions/ (1 question)",
                                server.url + "/api/v1/questions/",
                                seconds=args.seconds,
                                connections=args.connections,
                                script=script.name,
                                server_pid=server.pid,
                            )
                        )
                upstream_cpu = cpu_seconds(upstream.pid or 0) - upstream_before
        finally:
            upstream.terminate()
    print_wrk_table(
        f"Trivia import, {args.connections} connections, {args.seconds:g} s a run, "
        f"{os.cpu_count()} CPUs",
        [run for pair in zip(runs["baseline"], runs["application"], strict=True) for run in pair],
    )
    requests = sum(r.requests for rs in runs.values() for r in rs)
    print()
    print(summarise("baseline (bare Litestar + httpx + asyncpg)", runs["baseline"]))
    print(summarise("application", runs["application"]))
    ratio = [
        a.throughput / b.throughput
        for a, b in zip(runs["application"], runs["baseline"], strict=True)
    ]
    print(
        f"application / baseline: {statistics.median(ratio):.2f}x req/s "
        f"(per round {', '.join(f'{r:.2f}' for r in ratio)}; goal >= 0.6x)"
    )
    print(f"upstream CPU: {upstream_cpu / max(requests, 1) * 1000:.3f} ms/request")
    asyncio.run(empty_trivia_table(BENCH_DATABASE_URL, migrate=False))


if __name__ == "__main__":
    main()
