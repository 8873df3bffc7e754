"""Socket.IO fan-out: 500 connected clients in 50 group chats of 10.

    python -m tests.bench.messenger_fanout [--seconds 5]

Starts the application (uvicorn, its own process, REDIS_URL set as in production) on
BENCH_DATABASE_URL, connects 500 python-socketio clients, and sends ``message:send`` at
steady rates; every message reaches the 10 members of its group as ``message:new``. It
prints the end-to-end latency from send to each receiver (p50/p99) per rate and the highest
rate one process sustains (every delivery arrives and p99 stays under 500 ms). The
baseline, measured the same way in the same run, is a bare python-socketio server that
echoes ``message:send`` to the room with nothing stored. The clients all run in this one
process, so past some rate they, not the server, are the limit; the baseline shows where.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import socketio

from app.config import Settings
from app.lib.auth import issue_access_token
from app.lib.ids import new_uuid7
from tests.bench.messenger_seed import BENCH_DATABASE_URL, reset_and_migrate
from tests.support import TEST_REDIS_URL, free_port

CLIENTS = 500
GROUPS = 50
RATES = [25, 50, 75, 100, 150, 200, 300, 400, 800]
SUSTAINED_P99_MS = 500
ROOT = Path(__file__).resolve().parents[2]

# --- the baseline: a bare python-socketio server -----------------------------------------
echo = socketio.AsyncServer(async_mode="asgi")
echo_app = socketio.ASGIApp(echo)


@echo.on("connect")
async def _echo_connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
    for room in auth.get("rooms", []):
        await echo.enter_room(sid, room)


@echo.on("message:send")
async def _echo_send(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    message = {**data, "id": str(new_uuid7())}
    await echo.emit("message:new", message, to=data["chat_id"])
    return message


# --- set-up --------------------------------------------------------------------------------
async def create_users_and_groups(dsn: str) -> tuple[list[str], dict[str, list[int]]]:
    """Users and groups inserted directly: the benchmark is about delivery, not sign-up."""
    connection = await asyncpg.connect(dsn)
    run = new_uuid7().hex[-6:]  # the random end of the id: distinct for every run
    users = [str(new_uuid7()) for _ in range(CLIENTS)]
    await connection.copy_records_to_table(
        "user_account",
        columns=["id", "phone", "name", "bio", "password_hash", "created_at", "updated_at"],
        records=[
            (u, f"+bench{run}{i}", f"Fan {i}", "", "-", _now(), _now()) for i, u in enumerate(users)
        ],
    )
    groups: dict[str, list[int]] = {}
    chat_rows, member_rows = [], []
    per_group = CLIENTS // GROUPS
    for g in range(GROUPS):
        chat_id = str(new_uuid7())
        members = list(range(g * per_group, (g + 1) * per_group))
        groups[chat_id] = members
        chat_rows.append((chat_id, "group", f"Group {g}", users[members[0]], _now(), _now()))
        for i in members:
            member_rows.append((str(new_uuid7()), chat_id, users[i], "member", _now(), False))
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
    await connection.close()
    return users, groups


def _now() -> datetime:
    return datetime.now(UTC)


def start_server(target: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/socket.io/?EIO=4&transport=polling", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{target} did not start")


# --- the load --------------------------------------------------------------------------------
class Load:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.received: dict[str, int] = defaultdict(int)

    def on_message(self, data: dict[str, Any]) -> None:
        self.latencies.append((time.time() - float(data["text"].split("=", 1)[1])) * 1000)


async def connect_all(
    url: str, auths: list[dict[str, Any]], load: Load
) -> list[socketio.AsyncClient]:
    clients = []

    async def one(auth: dict[str, Any]) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)
        client.on("message:new", load.on_message)
        await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=30)
        return client

    for start in range(0, len(auths), 50):
        clients += await asyncio.gather(*(one(a) for a in auths[start : start + 50]))
    return clients


async def run_rate(
    clients: list[socketio.AsyncClient],
    groups: dict[str, list[int]],
    load: Load,
    rate: int,
    seconds: float,
) -> dict[str, float]:
    load.latencies.clear()
    chat_ids = list(groups)
    sent = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            chat_id = random.choice(chat_ids)
            sender = clients[random.choice(groups[chat_id])]
            await sender.emit(
                "message:send", {"chat_id": chat_id, "text": f"t={time.time()}"}, callback=_ignore
            )
            sent += 1
        await asyncio.sleep(0.002)
    expected = sent * (CLIENTS // GROUPS)
    drain = time.perf_counter() + 10
    while len(load.latencies) < expected and time.perf_counter() < drain:
        await asyncio.sleep(0.05)
    samples = sorted(load.latencies)
    return {
        "sent": sent,
        "delivered": len(samples) / expected if expected else 0,
        "p50": statistics.median(samples) if samples else float("inf"),
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        if samples
        else float("inf"),
    }


def _ignore(*_: Any) -> None:
    return None


async def measure(
    name: str, url: str, auths: list[dict[str, Any]], groups: dict[str, list[int]], seconds: float
) -> None:
    load = Load()
    clients = await connect_all(url, auths, load)
    print(f"\n{name}: {len(clients)} clients connected")
    best = 0
    try:
        for rate in RATES:
            result = await run_rate(clients, groups, load, rate, seconds)
            sustained = result["delivered"] >= 0.999 and result["p99"] < SUSTAINED_P99_MS
            print(
                f"  {rate:4d} msg/s ({rate * (CLIENTS // GROUPS):5d} deliveries/s): "
                f"p50 {result['p50']:8.1f} ms  p99 {result['p99']:8.1f} ms  "
                f"delivered {result['delivered']:6.1%}  {'ok' if sustained else 'NOT sustained'}"
            )
            if not sustained:
                break
            best = rate
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
    print(f"  highest sustained rate: {best} messages/s")


async def main(seconds: float, reset: bool) -> None:
    if reset:
        await reset_and_migrate()
    dsn = BENCH_DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://")
    users, groups = await create_users_and_groups(dsn)
    secret = Settings().secret_key
    member_of: dict[int, list[str]] = defaultdict(list)
    for chat_id, members in groups.items():
        for index in members:
            member_of[index].append(chat_id)

    baseline, baseline_url = start_server(["tests.bench.messenger_fanout:echo_app"], {})
    try:
        await measure(
            "baseline: bare python-socketio echo server",
            baseline_url,
            [{"rooms": member_of[i]} for i in range(CLIENTS)],
            groups,
            seconds,
        )
    finally:
        baseline.terminate()
        baseline.wait()

    app, app_url = start_server(
        ["app.asgi:create_asgi", "--factory"],
        {
            "APP_ENV": "test",
            "DATABASE_URL": BENCH_DATABASE_URL,
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", TEST_REDIS_URL),
            "LOG_LEVEL": "WARNING",
        },
    )
    try:
        tokens = [issue_access_token(secret, UUID(u), 3600).token for u in users]
        await measure(
            "Quintet (stored in PostgreSQL, fanned out through Redis)",
            app_url,
            [{"token": t} for t in tokens],
            groups,
            seconds,
        )
    finally:
        app.terminate()
        app.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--reset", action="store_true", help="reset and migrate the database first")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.reset))
