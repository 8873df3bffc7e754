"""Load: a mixed workload against uvicorn with several workers, driven from a second process.

    python -m tests.bench.mixed_load [--seconds 30] [--concurrency 32] [--workers 4] [--clients 2]
    make load

1. Resets and migrates LOAD_DATABASE_URL (default: database ``quintet_load``; the ``test``
   database is refused) and empties LOAD_REDIS_URL (default: Redis database 12; database 9,
   the test suite's, is refused).
2. Starts ``uvicorn app.asgi:create_asgi --factory --workers 4`` on 127.0.0.1 with the
   settings in its environment; Socket.IO events cross the workers through Redis.
3. Seeds through the API and the services: users with phone and password, direct chats
   with history, the achievements catalogue with synthetic players and awards, the board's
   owner and their messages, an audio user and one recording uploaded as a real WAV.
4. The HTTP baselines, from wrk (a C client whose ceiling is far above the Python one's):
   GET /health/live, and GET /api/v1/chats with the seeded users' Bearer tokens in turn
   (a Lua script), ``--concurrency`` connections, ``--baseline-seconds`` each.
5. In ``--clients`` load processes (multiprocessing, spawn), ``--concurrency`` virtual
   users spread over them, each with its own access token and Socket.IO connection, run
   closed loops for ``--seconds`` over a weighted mix: sign-in, chat list, chat history,
   ``message:send`` over Socket.IO (acknowledged with the stored message), achievements
   statistics, the board's message list and the MP3 download. Every answer is checked
   (status and content), so an error is anything a client would notice; a GET whose
   keep-alive connection dropped as it went out is sent once more, as browsers do.

Each side's CPU is printed: the server's (uvicorn and its workers, from /proc) per
operation, and the load processes' own (os.times()), so a client at its ceiling shows.
The sign-in throttles are raised on this server because every virtual user comes from
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import socketio
from redis.asyncio import Redis

from app.domain.achievements.plugin import seed as seed_achievements
from tests.bench.audio_convert import stereo_wav
from tests.bench.harness import (
    BENCH_REDIS_URL,
    Figures,
    Operation,
    RetryIdempotentTransport,
    Server,
    WrkFigures,
    cpu_seconds,
    drive_mix,
    prepare_database,
    print_table,
    print_wrk_table,
    run_wrk,
    uvicorn_process,
)
from tests.support import make_settings, post_form

LOAD_DATABASE_URL = os.environ.get(
    "LOAD_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/quintet_load"
)
LOAD_REDIS_URL = os.environ.get("LOAD_REDIS_URL", BENCH_REDIS_URL)
PASSWORD = "load test password"
BOARD_OWNER = "owner"
T = TypeVar("T")
Call = Callable[["VirtualUser"], Awaitable[bool]]


class Refused(Exception):
    """An answer a client would notice: a wrong status or content."""


def expect(response: httpx.Response, status: int = 200) -> httpx.Response:
    if response.status_code != status:
        raise Refused(
            f"{response.request.method} {response.request.url.path}: {response.status_code}"
        )
    return response


@dataclass(frozen=True)
class SeedUser:
    id: str
    phone: str
    token: str
    chat_ids: tuple[str, ...]


@dataclass(frozen=True)
class Seeded:
    """What the load process needs to act as the seeded users (it must pickle)."""

    url: str
    users: list[SeedUser]
    board_messages: int
    record_path: str
    record_size: int


@dataclass
class VirtualUser:
    user: SeedUser
    http: httpx.AsyncClient
    board: httpx.AsyncClient
    socket: socketio.AsyncClient
    rng: random.Random
    sent: int = 0
    headers: dict[str, str] = field(default_factory=dict)


# --- seeding ---------------------------------------------------------------------------------
async def gather_limited(limit: int, calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await the calls with at most ``limit`` in flight, answers in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with semaphore:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def seed(url: str, args: argparse.Namespace) -> Seeded:
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        # Users with phone and password.
        registered = await gather_limited(
            4,
            [
                http.post(
                    "/api/v1/auth/register",
                    json={"phone": f"+7916555{i:04d}", "password": PASSWORD, "name": f"User {i}"},
                )
                for i in range(args.users)
            ],
        )
        accounts = [expect(r, 201).json() for r in registered]
        headers = [{"Authorization": f"Bearer {a['access_token']}"} for a in accounts]

        # Direct chats: each user with the next three (a ring), so everyone has six.
        chats_of: dict[int, list[str]] = {i: [] for i in range(args.users)}
        pairs = {
            tuple(sorted((i, (i + step) % args.users)))
            for i in range(args.users)
            for step in (1, 2, 3)
            if (i + step) % args.users != i
        }
        created = await gather_limited(
            16,
            [
                http.post(
                    "/api/v1/chats",
                    headers=headers[a],
                    json={"type": "direct", "member_id": accounts[b]["user"]["id"]},
                )
                for a, b in sorted(pairs)
            ],
        )
        chats = []
        for (a, b), response in zip(sorted(pairs), created, strict=True):
            chat_id = expect(response, 201).json()["id"]
            chats.append((chat_id, a, b))
            chats_of[a].append(chat_id)
            chats_of[b].append(chat_id)

        # History: the two members take turns.
        posts = [
            http.post(
                f"/api/v1/chats/{chat_id}/messages",
                headers=headers[(a, b)[n % 2]],
                json={"type": "text", "text": f"seeded message {n} " + "lorem ipsum " * 4},
            )
            for chat_id, a, b in chats
            for n in range(args.history)
        ]
        for response in await gather_limited(16, posts):
            expect(response, 201)

        # The board: its owner registers and posts.
        async with httpx.AsyncClient(base_url=url, timeout=60) as board:
            registration = {
                "username": BOARD_OWNER,
                "password": PASSWORD,
                "password_confirm": PASSWORD,
            }
            expect(await post_form(board, "/board/register", registration), 303)
            for n in range(args.board_messages):
                form = {"text": f"board message {n}: " + "lorem ipsum " * 5}
                expect(await post_form(board, "/board/messages/new", form), 303)

        # Audio: a user and one recording, uploaded as a real WAV and converted to MP3.
        audio_user = expect(await http.post("/api/v1/audio/users", json={"name": "load"}), 201)
        owner = audio_user.json()
        upload = await http.post(
            "/api/v1/audio/records",
            data={"user_id": owner["id"], "token": owner["token"]},
            files={"file": ("load.wav", stereo_wav(args.record_seconds), "audio/wav")},
        )
        record_url = urlsplit(expect(upload, 201).json()["url"])
        record_path = f"{record_url.path}?{record_url.query}"
        record_size = len(expect(await http.get(record_path)).content)

    # Achievements: the catalogue and synthetic players with awards, through the domain's
    # own seeding services (the same as `litestar achievements seed`).
    settings = make_settings(database_url=args.database_url, redis_url=args.redis_url)
    await seed_achievements(settings, args.players, args.awards_per_player, 2026)

    print(
        f"seeded in {time.perf_counter() - started:.0f} s: {args.users} users, {len(chats)} "
        f"direct chats x {args.history} messages, {args.players} players "
        f"(~{args.awards_per_player} awards each), {args.board_messages} board messages, "
        f"a {args.record_seconds} s stereo WAV -> {record_size / 1000:.0f} kB MP3",
        flush=True,
    )
    return Seeded(
        url=url,
        users=[
            SeedUser(a["user"]["id"], f"+7916555{i:04d}", a["access_token"], tuple(chats_of[i]))
            for i, a in enumerate(accounts)
        ],
        board_messages=args.board_messages,
        record_path=record_path,
        record_size=record_size,
    )


# --- the operations, as a client sees them ----------------------------------------------------
async def login(vu: VirtualUser) -> bool:
    response = await vu.http.post(
        "/api/v1/auth/login", json={"phone": vu.user.phone, "password": PASSWORD}
    )
    return "access_token" in expect(response).json()


async def chat_list(vu: VirtualUser) -> bool:
    chats = expect(await vu.http.get("/api/v1/chats", headers=vu.headers)).json()
    if len(chats) != len(vu.user.chat_ids):
        raise Refused(f"GET /api/v1/chats: {len(chats)} chats, {len(vu.user.chat_ids)} expected")
    return True


async def chat_history(vu: VirtualUser) -> bool:
    chat_id = vu.rng.choice(vu.user.chat_ids)
    response = await vu.http.get(
        f"/api/v1/chats/{chat_id}/messages", headers=vu.headers, params={"limit": 50}
    )
    if not expect(response).json()["items"]:
        raise Refused("GET /api/v1/chats/{id}/messages: an empty history")
    return True


async def send_message(vu: VirtualUser) -> bool:
    vu.sent += 1
    chat_id = vu.rng.choice(vu.user.chat_ids)
    text = f"load message {vu.sent} from {vu.user.phone}"
    ack = await vu.socket.call("message:send", {"chat_id": chat_id, "text": text}, timeout=30)
    if not isinstance(ack, dict) or ack.get("text") != text:
        raise Refused(f"message:send acknowledged {ack!r:.80}")
    return True


async def achievements_stats(vu: VirtualUser) -> bool:
    return "most_points" in expect(await vu.http.get("/api/v1/achievements/stats")).json()


def board_list(expected: int) -> Call:
    async def call(vu: VirtualUser) -> bool:
        page = expect(await vu.board.get("/board/messages")).text
        if (shown := page.count('class="list-group-item')) != expected:
            raise Refused(f"GET /board/messages: {shown} messages, {expected} expected")
        return True

    return call


def record_download(path: str, size: int) -> Call:
    async def call(vu: VirtualUser) -> bool:
        response = expect(await vu.http.get(path))
        if response.headers.get("content-type") != "audio/mpeg" or len(response.content) != size:
            raise Refused(f"GET /record: {len(response.content)} bytes, {size} expected")
        return True

    return call


WEIGHTS = {
    "login": 5,
    "chats": 15,
    "history": 25,
    "send": 20,
    "stats": 10,
    "board": 10,
    "record": 15,
}


def operations(seeded: Seeded, weights: dict[str, int]) -> list[Operation[VirtualUser]]:
    calls: dict[str, tuple[str, Call]] = {
        "login": ("POST /api/v1/auth/login", login),
        "chats": ("GET /api/v1/chats", chat_list),
        "history": ("GET /api/v1/chats/{id}/messages", chat_history),
        "send": ("Socket.IO message:send (ack)", send_message),
        "stats": ("GET /api/v1/achievements/stats", achievements_stats),
        "board": ("GET /board/messages", board_list(seeded.board_messages)),
        "record": ("GET /record (MP3)", record_download(seeded.record_path, seeded.record_size)),
    }
    return [
        Operation(name, weights[key], call)
        for key, (name, call) in calls.items()
        if weights.get(key, 0) > 0
    ]


def parse_weight(value: str) -> tuple[str, int]:
    key, _, weight = value.partition("=")
    if key not in WEIGHTS or not weight.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=N with NAME in {', '.join(WEIGHTS)}")
    return key, int(weight)


# --- the load processes ----------------------------------------------------------------------------
@dataclass
class LoadResult:
    """What one load process measured, and the CPU it used for it (the client's side)."""

    mix: list[Figures]
    client_cpu: float
    retried: int


async def generate_async(
    seeded: Seeded, weights: dict[str, int], user_indexes: list[int], seconds: float
) -> LoadResult:
    concurrency = len(user_indexes)
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    # A GET whose keep-alive connection the server closed as it went out is sent once more.
    transports = [RetryIdempotentTransport(limits=limits) for _ in range(2)]
    async with (
        httpx.AsyncClient(base_url=seeded.url, timeout=60, transport=transports[0]) as http,
        httpx.AsyncClient(base_url=seeded.url, timeout=60, transport=transports[1]) as board,
    ):
        form = {"username": BOARD_OWNER, "password": PASSWORD}
        expect(await post_form(board, "/board/login", form), 303)
        users = []
        for index in user_indexes:
            user = seeded.users[index % len(seeded.users)]
            sio = socketio.AsyncClient(reconnection=False)
            # websocket only: with several workers, long-polling would need sticky sessions.
            await sio.connect(
                seeded.url, auth={"token": user.token}, transports=["websocket"], wait_timeout=30
            )
            users.append(
                VirtualUser(
                    user,
                    http,
                    board,
                    sio,
                    random.Random(index),
                    headers={"Authorization": f"Bearer {user.token}"},
                )
            )
        try:
            before = os.times()
            mix = await drive_mix(
                operations(seeded, weights),
                users,
                duration=seconds,
                random_seed=7 + user_indexes[0],
            )
            after = os.times()
        finally:
            await asyncio.gather(*(vu.socket.disconnect() for vu in users), return_exceptions=True)
    client_cpu = (after.user - before.user) + (after.system - before.system)
    return LoadResult(mix, client_cpu, sum(t.retried for t in transports))


def generate(
    seeded: Seeded, weights: dict[str, int], user_indexes: list[int], seconds: float
) -> LoadResult:
    """The entry point of a load process."""
    return asyncio.run(generate_async(seeded, weights, user_indexes, seconds))


def merge(results: list[LoadResult]) -> list[Figures]:
    """One Figures per operation over every load process (they ran at the same time)."""
    merged = [Figures(f.name) for f in results[0].mix]
    for result in results:
        for total, figures in zip(merged, result.mix, strict=True):
            total.latencies += figures.latencies
            total.errors += figures.errors
            total.failures.update(figures.failures)
            total.elapsed = max(total.elapsed, figures.elapsed)
    return merged


def chat_list_script(tokens: list[str]) -> str:
    """wrk's Lua for GET /api/v1/chats as the seeded users in turn, each with its token."""
    quoted = ", ".join(f'"{token}"' for token in tokens)
    return f"""
local tokens = {{{quoted}}}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/chats", {{["Authorization"] = "Bearer " .. tokens[n % #tokens + 1]}})
end
"""


def measure_with_wrk(
    seeded: Seeded, server: Server, concurrency: int, seconds: float
) -> list[WrkFigures]:
    """The HTTP baselines, from wrk (whose ceiling is far above the Python client's):
    GET /health/live and the authenticated chat list, ``concurrency`` connections each."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(chat_list_script([user.token for user in seeded.users]))
        script.flush()
        return [
            run_wrk(
                "wrk: GET /health/live (baseline)",
                seeded.url + "/health/live",
                seconds=seconds,
                connections=concurrency,
                server_pid=server.pid,
            ),
            run_wrk(
                "wrk: GET /api/v1/chats (Bearer, users in turn)",
                seeded.url + "/api/v1/chats",
                seconds=seconds,
                connections=concurrency,
                script=script.name,
                server_pid=server.pid,
            ),
        ]


# --- the run -------------------------------------------------------------------------------------
async def reset_services(database_url: str, redis_url: str) -> None:
    database = urlsplit(redis_url).path.strip("/") or "0"
    if database == "9":
        raise SystemExit("refusing Redis database 9 (the test suite's): give the load its own")
    await prepare_database(database_url)
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await redis.aclose()


def report(
    args: argparse.Namespace,
    baselines: list[WrkFigures],
    mix: list[Figures],
    results: list[LoadResult],
    server_cpu: float,
) -> None:
    total = Figures("all operations", errors=sum(f.errors for f in mix), elapsed=mix[0].elapsed)
    for figures in mix:
        total.latencies += figures.latencies
        total.failures.update(figures.failures)
    print_wrk_table(
        f"Baselines from wrk: {args.concurrency} connections, {args.baseline_seconds:g} s each, "
        f"uvicorn --workers {args.workers}, {os.cpu_count()} CPUs",
        baselines,
    )
    print_table(
        f"Mixed workload: {args.concurrency} virtual users in {len(results)} load processes, "
        f"{args.seconds:.0f} s, uvicorn --workers {args.workers}, {os.cpu_count()} CPUs",
        [*mix, total],
    )
    requests = len(total.latencies) + total.errors
    client_cpu = sum(r.client_cpu for r in results)
    print(
        f"\nserver CPU: {server_cpu:.1f} s, {server_cpu / max(requests, 1) * 1000:.2f} ms per "
        f"operation; client CPU: {client_cpu:.1f} s in {len(results)} processes over "
        f"{total.elapsed:.0f} s (at most {len(results)} cores' worth: "
        f"{client_cpu / max(total.elapsed, 1e-9):.2f} cores used)"
    )
    print(
        f"error rate: {total.errors} / {requests} = {total.errors / max(requests, 1):.3%} "
        f"(baselines: {sum(b.errors for b in baselines)} errors); idempotent requests "
        f"retried once after a dropped connection: {sum(r.retried for r in results)}"
    )
    for failure, count in total.failures.most_common(10):
        print(f"  {count} x {failure}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30, help="length of the mixed run")
    parser.add_argument("--baseline-seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32, help="virtual users")
    parser.add_argument(
        "--clients", type=int, default=2, help="load processes the virtual users are spread over"
    )
    parser.add_argument("--workers", type=int, default=4, help="uvicorn worker processes")
    parser.add_argument("--users", type=int, default=40, help="seeded messenger users")
    parser.add_argument("--history", type=int, default=30, help="seeded messages per chat")
    parser.add_argument("--players", type=int, default=5000, help="seeded achievement players")
    parser.add_argument("--awards-per-player", type=int, default=10)
    parser.add_argument("--board-messages", type=int, default=50)
    parser.add_argument("--record-seconds", type=int, default=10, help="length of the WAV")
    parser.add_argument(
        "--weight",
        type=parse_weight,
        action="append",
        default=[],
        metavar="NAME=N",
        help=f"change an operation's weight (0 leaves it out); defaults: {WEIGHTS}",
    )
    parser.add_argument("--database-url", default=LOAD_DATABASE_URL)
    parser.add_argument("--redis-url", default=LOAD_REDIS_URL)
    args = parser.parse_args(argv)
    weights = {**WEIGHTS, **dict(args.weight)}
    if not any(weights.values()):
        parser.error("every weight is 0")

    asyncio.run(reset_services(args.database_url, args.redis_url))
    environment = {
        "APP_ENV": "test",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "LOGIN_ATTEMPTS_PER_MINUTE": "1000000",
        "REGISTRATIONS_PER_HOUR": "1000000",
        "BOARD_MESSAGE_TTL_SECONDS": "3600",
        "ACCESS_TOKEN_TTL_SECONDS": str(int(3600 + args.seconds)),
    }
    with uvicorn_process(env=environment, workers=args.workers) as server:
        seeded = asyncio.run(seed(server.url, args))
        baselines = measure_with_wrk(seeded, server, args.concurrency, args.baseline_seconds)
        clients = max(1, min(args.clients, args.concurrency))
        shares = [list(range(args.concurrency))[k::clients] for k in range(clients)]
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=clients, mp_context=spawn) as load_processes:
            before = cpu_seconds(server.pid)
            futures = [
                load_processes.submit(generate, seeded, weights, share, args.seconds)
                for share in shares
            ]
            results = [future.result() for future in futures]
            server_cpu = cpu_seconds(server.pid) - before
    report(args, baselines, merge(results), results, server_cpu)


if __name__ == "__main__":
    main()
