"""Socket.IO at scale: thousands of clients on two API processes that share one Redis.

    python -m tests.bench.messenger_scale [--clients 5000] [--seconds 20] [--rate 100]
        [--client-processes 4]

Two uvicorn processes serve ``app.asgi`` (one worker each, the Redis manager on, as
replicas run) on BENCH_DATABASE_URL and BENCH_REDIS_URL. ``--clients`` accounts in groups
of 10 are copied into the database; half of each group's members connect to each process,
so every message's deliveries cross Redis pub/sub. The clients run in
``--client-processes`` processes, each a lean Engine.IO v4 / Socket.IO v5 WebSocket
client on one aiohttp session (python-socketio's AsyncClient costs a session, tasks and
~3 ms of CPU per received message each: too heavy for thousands on two cores).

1. idle (the baseline): every client connected and the presence traffic settled; each
   API process's RSS before any client and then, so the memory per connection, and the
   servers' CPU while nothing is sent.
2. load: ``--rate`` ``message:send`` a second (with an acknowledgement) from random
   members into their groups for ``--seconds``: p50/p99 of each delivery (the sender's
   clock in the text), acknowledgements refused (an error ack) and lost (none within
   10 s), deliveries still missing 10 s after sending stopped, the servers' CPU per message
   and each client process's CPU (the clients must not be the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import resource
import statistics
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from tests.bench.harness import (
    BENCH_DATABASE_URL,
    ClientProcesses,
    Server,
    access_tokens,
    cpu_seconds,
    prepare_database,
    rss_mb,
    seed_groups,
    settle,
    uvicorn_process,
)

GROUP_SIZE = 10
P99_GOAL_MS = 250
RSS_GOAL_KB = 60
DELIVERY_GRACE_SECONDS = 10
CONNECT_BATCH = 50

# (the account's token, its chat, the API process it connects to)
Member = tuple[str, str, str]


# --- the clients ---------------------------------------------------------------------------
class SocketClient:
    """One Socket.IO connection over a bare WebSocket: answers the server's pings, counts
    message:new deliveries and matches acknowledgements to their sends."""

    def __init__(self, process: LeanClients, chat_id: str) -> None:
        self.process = process
        self.chat_id = chat_id
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ack_ids = itertools.count()
        self.reader: asyncio.Task[None] | None = None

    async def connect(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await session.ws_connect(ws_url, autoping=True, max_msg_size=0)
        opened = await self.ws.receive_str(timeout=30)  # Engine.IO "open"
        if not opened.startswith("0"):
            raise RuntimeError(f"no Engine.IO open packet: {opened[:80]}")
        await self.ws.send_str("40" + json.dumps({"token": token}))
        while True:
            answer = await self.ws.receive_str(timeout=30)
            if answer.startswith("40"):
                break
            if answer.startswith("44"):
                raise RuntimeError(f"connection refused: {answer[2:200]}")
            if answer == "2":
                await self.ws.send_str("3")
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            data = frame.data
            if not isinstance(data, str):
                continue
            if data == "2":  # Engine.IO ping
                await self.ws.send_str("3")
            elif data.startswith('42["message:new"'):
                event = json.loads(data[2:])
                sent_at = float(event[1]["text"].split("=", 1)[1])
                self.process.latencies.append((time.time() - sent_at) * 1000)
            elif data.startswith("43"):
                digits = 2
                while data[digits].isdigit():
                    digits += 1
                self.process.acked(json.loads(data[digits:]))

    async def send(self) -> None:
        assert self.ws is not None
        payload = json.dumps(
            ["message:send", {"chat_id": self.chat_id, "text": f"t={time.time()}"}]
        )
        await self.ws.send_str(f"42{next(self.ack_ids)}{payload}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()


class LeanClients:
    """The clients of one process, driven over a pipe (see :class:`ClientProcesses`)."""

    def __init__(self) -> None:
        self.clients: list[SocketClient] = []
        self.latencies: list[float] = []
        self.acks: list[int] = []  # the HTTP-like status of each acknowledgement (200 = stored)
        self.failed: list[str] = []

    def acked(self, arguments: list[Any]) -> None:
        answer = arguments[0] if arguments else None
        error = answer.get("error") if isinstance(answer, dict) else None
        self.acks.append(int(error.get("status", 500)) if isinstance(error, dict) else 200)

    async def connect(self, session: aiohttp.ClientSession, members: list[Member]) -> None:
        async def one(member: Member) -> None:
            token, chat_id, url = member
            client = SocketClient(self, chat_id)
            try:
                await client.connect(session, url, token)
            except Exception as exc:
                self.failed.append(f"{type(exc).__name__}: {exc}"[:160])
                await client.close()
            else:
                self.clients.append(client)

        for start in range(0, len(members), CONNECT_BATCH):
            await asyncio.gather(*(one(m) for m in members[start : start + CONNECT_BATCH]))

    async def send(self, rate: float, seconds: float) -> dict[str, Any]:
        """``rate`` sends a second from random clients for ``seconds``, then up to 10 s for
        the acknowledgements."""
        self.latencies.clear()
        self.acks.clear()
        cpu = time.process_time()
        sent = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            while sent < int(elapsed * rate):
                await random.choice(self.clients).send()
                sent += 1
            await asyncio.sleep(0.005)
        deadline = time.perf_counter() + DELIVERY_GRACE_SECONDS
        while len(self.acks) < sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        return {
            "sent": sent,
            "accepted": self.acks.count(200),
            "refused": len(self.acks) - self.acks.count(200),
            "lost": sent - len(self.acks),
            "cpu": time.process_time() - cpu,
            "seconds": time.perf_counter() - started,
        }

    async def serve(self, pipe: Connection) -> None:
        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                command, *arguments = await loop.run_in_executor(None, pipe.recv)
                if command == "connect":
                    cpu = time.process_time()
                    await self.connect(session, arguments[0])
                    pipe.send(len(self.clients))
                    self.connect_cpu = time.process_time() - cpu
                elif command == "status":
                    pipe.send(
                        {"failed": self.failed[:3], "failures": len(self.failed)}
                        | {"connect_cpu": getattr(self, "connect_cpu", 0.0)}
                    )
                elif command == "send":
                    pipe.send(await self.send(*arguments))
                elif command == "received":
                    pipe.send(len(self.latencies))
                elif command == "latencies":
                    pipe.send(list(self.latencies))
                elif command == "stop":
                    await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)
                    pipe.send("stopped")
                    return


def _client_main(pipe: Connection) -> None:
    raise_open_files_limit()
    asyncio.run(LeanClients().serve(pipe))


def raise_open_files_limit() -> None:
    """Thousands of sockets: the soft limit of open files up to the hard one (children
    inherit it, the uvicorn processes too)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the measurement -------------------------------------------------------------------------
@dataclass
class Idle:
    connected: int
    rss_before_mb: list[float]
    rss_idle_mb: list[float]
    connections: list[int]  # per API process
    idle_cpu_per_second: float  # both API processes, while nothing is sent

    def kb_per_connection(self, n: int) -> float:
        grown = self.rss_idle_mb[n] - self.rss_before_mb[n]
        return grown * 1024 / self.connections[n] if self.connections[n] else float("nan")


def percentile(samples: list[float], q: float) -> float:
    return samples[min(len(samples) - 1, int(len(samples) * q))] if samples else float("inf")


def connect_all(
    clients: ClientProcesses, servers: list[Server], members: list[Member], per_server: list[int]
) -> Idle:
    pids = [server.pid for server in servers]
    settle(*pids)
    before = [rss_mb(pid) for pid in pids]
    started = time.perf_counter()
    connected = clients.connect(members)
    took = time.perf_counter() - started
    statuses = clients.ask("status")
    print(f"connected {connected} of {len(members)} clients in {took:.1f} s")
    for n, status in enumerate(statuses):
        print(f"  client process {n}: connect CPU {status['connect_cpu']:.1f} s", end="")
        print(f", {status['failures']} failed {status['failed']}" if status["failures"] else "")
    waited = settle(*pids, timeout=90)
    print(f"presence traffic settled in {waited:.1f} s")
    cpu_before = sum(cpu_seconds(pid, descendants=False) for pid in pids)
    time.sleep(5)
    idle_cpu = (sum(cpu_seconds(pid, descendants=False) for pid in pids) - cpu_before) / 5
    return Idle(connected, before, [rss_mb(pid) for pid in pids], per_server, idle_cpu)


def report_idle(idle: Idle, servers: list[Server]) -> None:
    print("\n### idle: every client connected, nothing sent (the baseline)\n")
    for n, server in enumerate(servers):
        print(
            f"  API process {n + 1} (pid {server.pid}): {idle.connections[n]} connections, RSS "
            f"{idle.rss_before_mb[n]:.0f} MB before, {idle.rss_idle_mb[n]:.0f} MB idle: "
            f"{idle.kb_per_connection(n):.1f} KB per connection"
        )
    grown = sum(idle.rss_idle_mb) - sum(idle.rss_before_mb)
    per_connection = grown * 1024 / max(sum(idle.connections), 1)
    verdict = "met" if per_connection <= RSS_GOAL_KB else "NOT met"
    print(f"  RSS per connection: {per_connection:.1f} KB (goal <= {RSS_GOAL_KB} KB: {verdict})")
    print(f"  servers' CPU idle: {idle.idle_cpu_per_second * 100:.1f} % of a core (both)")


def load(
    clients: ClientProcesses, servers: list[Server], rate: float, seconds: float, idle: Idle
) -> None:
    pids = [server.pid for server in servers]
    cpu_before = [cpu_seconds(pid, descendants=False) for pid in pids]
    share = rate / len(clients.pipes)
    results = clients.ask("send", share, seconds)
    accepted = sum(int(r["accepted"]) for r in results)
    expected = accepted * GROUP_SIZE
    deadline = time.perf_counter() + DELIVERY_GRACE_SECONDS
    while sum(clients.ask("received")) < expected and time.perf_counter() < deadline:
        time.sleep(0.2)
    server_cpu = [
        cpu_seconds(pid, descendants=False) - b for pid, b in zip(pids, cpu_before, strict=True)
    ]
    rss_after = [rss_mb(pid) for pid in pids]
    samples = sorted(x for latencies in clients.ask("latencies") for x in latencies)
    sent = sum(int(r["sent"]) for r in results)
    lost = sum(int(r["lost"]) for r in results)
    refused = sum(int(r["refused"]) for r in results)
    p99 = percentile(samples, 0.99)
    print(f"\n### load: {rate:.0f} msg/s into groups of {GROUP_SIZE} for {seconds:.0f} s\n")
    print(
        f"  sent {sent}, acknowledged as stored {accepted}, refused {refused}, "
        f"lost (no ack in {DELIVERY_GRACE_SECONDS} s) {lost}"
    )
    print(
        f"  deliveries {len(samples)} of {expected} ({len(samples) / max(expected, 1):.2%}; "
        f"{max(expected - len(samples), 0)} missing {DELIVERY_GRACE_SECONDS} s after the end)"
    )
    print(
        f"  delivery p50 {statistics.median(samples) if samples else float('inf'):.1f} ms, "
        f"p99 {p99:.1f} ms (goal < {P99_GOAL_MS} ms: {'met' if p99 < P99_GOAL_MS else 'NOT met'})"
        f", max {samples[-1] if samples else float('inf'):.1f} ms"
    )
    idle_share = idle.idle_cpu_per_second * max(r["seconds"] for r in results)
    per_message = (sum(server_cpu) - idle_share) * 1000 / max(sent, 1)
    print(
        f"  servers' CPU: {' + '.join(f'{c:.1f}' for c in server_cpu)} s = "
        f"{sum(server_cpu) * 1000 / max(sent, 1):.2f} ms per message "
        f"({per_message:.2f} ms above the idle servers' heartbeats)"
    )
    for n, result in enumerate(results):
        print(
            f"  client process {n}: {result['cpu']:.1f} s CPU in {result['seconds']:.1f} s "
            f"({result['cpu'] / result['seconds']:.0%} of a core)"
        )
    print(
        "  RSS after the load: "
        + ", ".join(f"{mb:.0f} MB" for mb in rss_after)
        + f"; lost acks: {lost} (goal 0: {'met' if lost == 0 else 'NOT met'})"
    )


def members_of(groups: dict[str, list[int]], tokens: list[str], urls: list[str]) -> list[Member]:
    """Each group's members alternately on each API process: deliveries cross Redis."""
    return [
        (tokens[index], chat_id, urls[position % len(urls)])
        for chat_id, indexes in groups.items()
        for position, index in enumerate(indexes)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=100, help="messages a second, in all")
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--reset", action="store_true", help="reset and migrate the database first")
    arguments = parser.parse_args()
    raise_open_files_limit()
    if arguments.reset:
        asyncio.run(prepare_database(BENCH_DATABASE_URL))
    dsn = BENCH_DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://")
    started = time.perf_counter()
    users, groups = asyncio.run(seed_groups(dsn, arguments.clients, GROUP_SIZE))
    tokens = access_tokens(users, ttl_seconds=4 * 3600)
    print(
        f"seeded {len(users)} accounts in {len(groups)} groups in {time.perf_counter() - started:.1f} s"
    )
    env = {
        "APP_ENV": "test",
        "SOCKETIO_SINGLE_PROCESS": "false",
        # Every client comes from 127.0.0.1: the per-address cap would refuse the 501st.
        "SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS": str(arguments.clients + 100),
    }
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(uvicorn_process(env=env)) for _ in range(2)]
        members = members_of(groups, tokens, [server.url for server in servers])
        per_server = [sum(1 for m in members if m[2] == s.url) for s in servers]
        clients = ClientProcesses(_client_main, (), arguments.client_processes)
        stack.callback(clients.stop)
        print(
            f"2 API processes (pids {', '.join(str(s.pid) for s in servers)}), "
            f"{arguments.client_processes} client processes (pids {clients.pids}); "
            f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        idle = connect_all(clients, servers, members, per_server)
        report_idle(idle, servers)
        load(clients, servers, arguments.rate, arguments.seconds, idle)
        print(f"\nload average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
