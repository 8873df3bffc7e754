"""Socket.IO fan-out: message:send into groups of 10, every member hears message:new.

    python -m tests.bench.messenger_fanout [--seconds 3] [--overload-seconds 20]
        [--client-processes 3] [--redis-manager]

Two servers, each in its own uvicorn process, measured the same way in the same run: the
baseline, a bare python-socketio server that echoes ``message:send`` to the room with
nothing stored, then Quintet (``app.asgi``, PostgreSQL on BENCH_DATABASE_URL, Redis on
BENCH_REDIS_URL; one process, so ``SOCKETIO_SINGLE_PROCESS=true`` unless
``--redis-manager`` keeps the Redis pub/sub relay of several replicas).

The clients run in ``--client-processes`` processes (a python-socketio client spends ~3 ms
of CPU per message received ten times, so one process would measure itself past ~300
msg/s); each step prints the server's CPU per message (from /proc/<pid>/stat over the
step, up to its last delivery) next to the clients' CPU, so it is plain which side is the
limit. Each scenario starts once the connections' presence traffic has settled (the server
idle), after an unmeasured warm-up of 3 s at 20 msg/s.

1. overload: 200 clients in 20 groups of 10 at 100 msg/s for ``--overload-seconds``: the
   share of accepted messages delivered to every member within 10 s after sending stopped,
   p50/p99, and how many sends were refused (an error acknowledgement, never silence).
2. ramp: 500 clients in 50 groups of 10, rising rates of ``--seconds`` each: CPU per
   message and the highest rate sustained (everything delivered, p99 < 250 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import socketio

from app.lib.ids import new_uuid7
from tests.bench.harness import (
    BENCH_DATABASE_URL,
    BENCH_REDIS_URL,
    ClientProcesses,
    access_tokens,
    cpu_seconds,
    seed_groups,
    settle,
)
from tests.bench.messenger_seed import reset_and_migrate
from tests.support import free_port

CLIENTS = 500
GROUPS = 50
RATES = [50, 100, 150, 200, 300, 400, 600, 800]
SUSTAINED_P99_MS = 250
OVERLOAD_GROUPS = 20
OVERLOAD_RATE = 100
WARM_UP_RATE = 20
WARM_UP_SECONDS = 3
ROOT = Path(__file__).resolve().parents[2]

# --- the baseline: a bare python-socketio server -----------------------------------------
echo = socketio.AsyncServer(async_mode="asgi")
echo_app = socketio.ASGIApp(echo)


@echo.on("connect")  # type: ignore[untyped-decorator]  # python-socketio is untyped
async def _echo_connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
    for room in auth.get("rooms", []):
        await echo.enter_room(sid, room)


@echo.on("message:send")  # type: ignore[untyped-decorator]  # python-socketio is untyped
async def _echo_send(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    message = {**data, "id": str(new_uuid7())}
    await echo.emit("message:new", message, to=data["chat_id"])
    return message


# --- the clients: several processes, driven over a pipe ---------------------------------------
Auth = dict[str, Any]
# (client index, auth, the client's chat id)
Member = tuple[int, Auth, str]


class ClientProcess:
    """The clients of one process: they connect, send at their share of the rate, and
    record every message:new they receive (latency from the send time in the text)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clients: dict[int, tuple[socketio.AsyncClient, str]] = {}
        self.latencies: list[float] = []
        self.acks: list[int] = []  # HTTP-like status of each acknowledgement (200 = stored)

    def on_message(self, data: dict[str, Any]) -> None:
        self.latencies.append((time.time() - float(data["text"].split("=", 1)[1])) * 1000)

    async def connect(self, members: list[Member]) -> None:
        async def one(member: Member) -> None:
            index, auth, chat_id = member
            client = socketio.AsyncClient(reconnection=False)
            client.on("message:new", self.on_message)
            await client.connect(self.url, auth=auth, transports=["websocket"], wait_timeout=30)
            self.clients[index] = (client, chat_id)

        for start in range(0, len(members), 25):
            await asyncio.gather(*(one(m) for m in members[start : start + 25]))

    async def send(self, rate: float, seconds: float, chats: set[str]) -> dict[str, float]:
        """Send ``rate`` messages a second for ``seconds`` from random connected members of
        ``chats``; then wait (10 s at most) for every acknowledgement."""
        self.latencies.clear()
        self.acks.clear()
        senders = [(c, chat) for c, chat in self.clients.values() if chat in chats]
        cpu = time.process_time()
        sent = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            while sent < int(elapsed * rate):
                client, chat_id = random.choice(senders)
                await client.emit(
                    "message:send",
                    {"chat_id": chat_id, "text": f"t={time.time()}"},
                    callback=self._acked,
                )
                sent += 1
            await asyncio.sleep(0.002)
        deadline = time.perf_counter() + 10
        while len(self.acks) < sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        return {
            "sent": sent,
            "accepted": sum(1 for status in self.acks if status == 200),
            "refused": sum(1 for status in self.acks if status != 200),
            "unacknowledged": sent - len(self.acks),
            "cpu": time.process_time() - cpu,
        }

    def _acked(self, answer: Any = None) -> None:
        error = answer.get("error") if isinstance(answer, dict) else None
        self.acks.append(int(error.get("status", 500)) if isinstance(error, dict) else 200)

    async def serve(self, pipe: Connection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, *arguments = await loop.run_in_executor(None, pipe.recv)
            if command == "connect":
                await self.connect(arguments[0])
                pipe.send(len(self.clients))
            elif command == "send":
                pipe.send(await self.send(*arguments))
            elif command == "received":
                pipe.send(len(self.latencies))
            elif command == "latencies":
                pipe.send((list(self.latencies), time.process_time()))
            elif command == "stop":
                clients = [c for c, _ in self.clients.values()]
                await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
                pipe.send("stopped")
                return


def _client_main(pipe: Connection, url: str) -> None:
    asyncio.run(ClientProcess(url).serve(pipe))


@dataclass
class Step:
    rate: float
    sent: int
    accepted: int
    refused: int
    unacknowledged: int
    delivered: float
    p50: float
    p99: float
    server_cpu_ms: float  # per message sent
    client_cpu_ms: float  # per message sent, all client processes together

    @property
    def sustained(self) -> bool:
        return (
            self.refused == 0
            and self.unacknowledged == 0
            and self.delivered >= 0.999
            and self.p99 < SUSTAINED_P99_MS
        )

    def line(self) -> str:
        return (
            f"  {self.rate:4.0f} msg/s: p50 {self.p50:7.1f} ms  p99 {self.p99:7.1f} ms  "
            f"delivered {self.delivered:6.1%}  refused {self.refused}  "
            f"server CPU {self.server_cpu_ms:5.2f} ms/msg  clients CPU "
            f"{self.client_cpu_ms:5.2f} ms/msg  {'ok' if self.sustained else 'NOT sustained'}"
        )


def run_step(
    clients: ClientProcesses,
    pid: int,
    rate: float,
    seconds: float,
    chats: set[str],
    group_size: int,
) -> Step:
    server_before = cpu_seconds(pid, descendants=False)
    share = rate / len(clients.pipes)
    results = clients.ask("send", share, seconds, chats)
    accepted = sum(int(r["accepted"]) for r in results)
    expected = accepted * group_size
    deadline = time.perf_counter() + 10
    while sum(clients.ask("received")) < expected and time.perf_counter() < deadline:
        time.sleep(0.1)
    # Up to the last delivery: a server that lags still pays for what it delivers late.
    server_cpu = cpu_seconds(pid, descendants=False) - server_before
    samples = sorted(x for latencies, _ in clients.ask("latencies") for x in latencies)
    sent = sum(int(r["sent"]) for r in results) or 1
    return Step(
        rate=rate,
        sent=sent,
        accepted=accepted,
        refused=sum(int(r["refused"]) for r in results),
        unacknowledged=sum(int(r["unacknowledged"]) for r in results),
        delivered=len(samples) / expected if expected else 0.0,
        p50=statistics.median(samples) if samples else float("inf"),
        p99=samples[min(len(samples) - 1, int(len(samples) * 0.99))] if samples else float("inf"),
        server_cpu_ms=server_cpu * 1000 / sent,
        client_cpu_ms=sum(float(r["cpu"]) for r in results) * 1000 / sent,
    )


@dataclass
class Outcome:
    overload: Step
    ramp: list[Step]

    @property
    def best(self) -> float:
        return max((step.rate for step in self.ramp if step.sustained), default=0.0)


def measure(
    name: str,
    url: str,
    pid: int,
    members: list[Member],
    groups: dict[str, list[int]],
    arguments: argparse.Namespace,
) -> Outcome:
    clients = ClientProcesses(_client_main, (url,), arguments.client_processes)
    group_size = CLIENTS // GROUPS
    try:
        first = members[: OVERLOAD_GROUPS * group_size]
        connected = clients.connect(first)
        waited = settle(pid)
        print(f"\n{name}: {connected} clients connected (settled in {waited:.1f} s)")
        chats = set(list(groups)[:OVERLOAD_GROUPS])
        # Warm-up, not measured: the pool's connections, prepared statements, caches.
        run_step(clients, pid, WARM_UP_RATE, WARM_UP_SECONDS, chats, group_size)
        settle(pid)
        overload = run_step(
            clients, pid, OVERLOAD_RATE, arguments.overload_seconds, chats, group_size
        )
        print(
            f"  overload, {OVERLOAD_GROUPS} groups of {group_size}, {arguments.overload_seconds:.0f} s:"
        )
        print("  " + overload.line())
        connected = clients.connect(members[len(first) :])  # each process's total
        waited = settle(pid)
        print(f"  ramp: {connected} clients in {GROUPS} groups (settled in {waited:.1f} s)")
        ramp = []
        for rate in RATES:
            step = run_step(clients, pid, rate, arguments.seconds, set(groups), group_size)
            print(step.line())
            ramp.append(step)
            if step.delivered < 0.99 or step.refused or step.p99 > 2000:
                break  # far past the limit: the next rates would only queue
    finally:
        clients.stop()
    outcome = Outcome(overload, ramp)
    print(f"  highest sustained rate: {outcome.best:.0f} messages/s")
    return outcome


def start_server(target: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - read on failure, closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(url + "/socket.io/?EIO=4&transport=polling", timeout=5)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    log.seek(0)
    raise RuntimeError(f"{target} did not start:\n{log.read().decode()[-3000:]}")


def compare(baseline: Outcome, quintet: Outcome) -> None:
    """The goals' figures side by side: CPU per message at the rates both ran."""
    print("\nserver CPU per message, Quintet / echo, at the rates both measured:")
    echo_by_rate = {step.rate: step for step in baseline.ramp}
    for step in quintet.ramp:
        if step.rate in echo_by_rate:
            echo_step = echo_by_rate[step.rate]
            print(
                f"  {step.rate:4.0f} msg/s: {step.server_cpu_ms:5.2f} / "
                f"{echo_step.server_cpu_ms:5.2f} ms = "
                f"{step.server_cpu_ms / max(echo_step.server_cpu_ms, 1e-6):4.1f}x"
            )
    print(
        f"highest sustained rate: {quintet.best:.0f} / {baseline.best:.0f} msg/s = "
        f"{quintet.best / max(baseline.best, 1):.2f}x"
    )


def main(arguments: argparse.Namespace) -> None:
    if arguments.reset:
        asyncio.run(reset_and_migrate())
    dsn = BENCH_DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://")
    users, groups = asyncio.run(seed_groups(dsn, CLIENTS, CLIENTS // GROUPS))
    chat_of = {index: chat_id for chat_id, members in groups.items() for index in members}

    echo_outcome = None if arguments.quintet_only else measure_echo(groups, chat_of, arguments)
    quintet_outcome = measure_quintet(users, groups, chat_of, arguments)
    if echo_outcome is not None:
        compare(echo_outcome, quintet_outcome)


def measure_echo(
    groups: dict[str, list[int]], chat_of: dict[int, str], arguments: argparse.Namespace
) -> Outcome:
    baseline, baseline_url = start_server(["tests.bench.messenger_fanout:echo_app"], {})
    try:
        echo_outcome = measure(
            "baseline: bare python-socketio echo server",
            baseline_url,
            baseline.pid,
            [(i, {"rooms": [chat_of[i]]}, chat_of[i]) for i in range(CLIENTS)],
            groups,
            arguments,
        )
    finally:
        baseline.terminate()
        baseline.wait()
    return echo_outcome


def measure_quintet(
    users: list[str],
    groups: dict[str, list[int]],
    chat_of: dict[int, str],
    arguments: argparse.Namespace,
) -> Outcome:
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": BENCH_DATABASE_URL,
        "REDIS_URL": BENCH_REDIS_URL,
        "LOG_LEVEL": "WARNING",
        "SOCKETIO_SINGLE_PROCESS": "false" if arguments.redis_manager else "true",
    }
    app, app_url = start_server(["app.asgi:create_asgi", "--factory"], env)
    relay = "through Redis pub/sub" if arguments.redis_manager else "one process, no Redis relay"
    try:
        tokens = access_tokens(users)
        quintet_outcome = measure(
            f"Quintet (stored in PostgreSQL, {relay})",
            app_url,
            app.pid,
            [(i, {"token": tokens[i]}, chat_of[i]) for i in range(CLIENTS)],
            groups,
            arguments,
        )
    finally:
        app.terminate()
        app.wait()
    return quintet_outcome


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3, help="each ramp step")
    parser.add_argument("--overload-seconds", type=float, default=20)
    parser.add_argument("--client-processes", type=int, default=3)
    parser.add_argument(
        "--redis-manager", action="store_true", help="relay events through Redis pub/sub"
    )
    parser.add_argument("--quintet-only", action="store_true", help="skip the echo baseline")
    parser.add_argument("--reset", action="store_true", help="reset and migrate the database first")
    main(parser.parse_args())
