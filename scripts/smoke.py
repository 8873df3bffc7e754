"""Smoke test of a running Quintet: one real flow per service, as a client would do it.

    make smoke URL=http://quintet.localtest.me                     # every flow, through the ingress
    make smoke URL=http://127.0.0.1:8080 SMOKE_ARGS="--only health,docs,board --wait 30"
    .venv/bin/python scripts/smoke.py http://127.0.0.1:8080        # the same, by hand

Flows: health, docs, board, messenger (two users, a direct chat, a Socket.IO message over
WebSocket from one client to the other), achievements (X-API-Key writes and the statistics),
trivia (502/504 from an unreachable upstream is reported, not failed), audio (a generated WAV
up, the MP3 down). Each flow prints one line; the exit status is 1 when any flow failed.
Needs httpx and python-socketio's asyncio client (with aiohttp): the project's .venv has
them (`make setup`), which is why `make smoke` runs it with that venv.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import re
import secrets
import struct
import sys
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

FLOWS = ("health", "docs", "board", "messenger", "achievements", "trivia", "audio")
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
API = "/api/v1"


class FlowFailed(Exception):
    """A step of a flow did not answer as the contract says."""


class FlowWarning(Exception):
    """The flow could not finish for a reason outside the app (e.g. no trivia upstream)."""


@dataclass
class Options:
    base_url: str
    admin_key: str
    board_username: str
    board_password: str
    timeout: float


@dataclass
class Result:
    flow: str
    status: str  # ok, FAIL, warn
    seconds: float
    detail: str


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        body = response.text[:300].replace("\n", " ")
        raise FlowFailed(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code} (expected {'/'.join(map(str, statuses))}): {body}"
        )
    return response


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise FlowFailed(f"{response.request.url.path} did not answer JSON") from exc


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_client(options: Options, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=options.base_url, timeout=options.timeout, **kwargs)


# --- flows ---------------------------------------------------------------------------------


async def flow_health(options: Options) -> str:
    async with new_client(options) as http:
        expect(await http.get("/health/live"), 200)
        ready = json_of(expect(await http.get("/health/ready"), 200))
        if ready.get("status") != "ok":
            raise FlowFailed(f"/health/ready says {ready}")
        checks = ", ".join(f"{k} {v}" for k, v in sorted(ready.get("checks", {}).items()))
        return f"live 200, ready 200 ({checks})"


async def flow_docs(options: Options) -> str:
    async with new_client(options) as http:
        page = expect(await http.get("/docs/"), 200)
        if "swagger" not in page.text.lower():
            raise FlowFailed("/docs/ is not the Swagger UI page")
        spec = json_of(expect(await http.get("/docs/openapi.json"), 200))
        if "openapi" not in spec or not spec.get("paths"):
            raise FlowFailed("/docs/openapi.json is not an OpenAPI document")
        asset = await http.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
        expect(asset, 200)
        return f"Swagger UI and its assets served locally, {len(spec['paths'])} API paths"


async def csrf_token(http: httpx.AsyncClient, path: str) -> tuple[httpx.Response, str | None]:
    page = await http.get(path)
    match = CSRF_INPUT.search(page.text)
    return page, match.group(1) if match else None


async def post_form(http: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    page, token = await csrf_token(http, path)
    expect(page, 200)
    if token is None:
        raise FlowFailed(f"no CSRF token in the form at {path}")
    return await http.post(path, data={**data, "_csrf_token": token})


async def flow_board(options: Options) -> str:
    async with new_client(options) as http:
        register_page, _ = await csrf_token(http, "/board/register")
        account = {"username": options.board_username, "password": options.board_password}
        if register_page.status_code == 200:
            response = await post_form(
                http, "/board/register", {**account, "password_confirm": options.board_password}
            )
            how = "registered the owner"
        elif register_page.status_code == 403:
            response = await post_form(http, "/board/login", account)
            how = "owner exists, logged in"
        else:
            raise FlowFailed(f"GET /board/register -> {register_page.status_code}")
        expect(response, 303)
        if not response.headers.get("location", "").startswith("/board/messages"):
            raise FlowFailed(f"{how}: redirected to {response.headers.get('location')!r}")

        text = unique("smoke message")
        expect(await post_form(http, "/board/messages/new", {"text": text}), 303)
        listing = expect(await http.get("/board/messages"), 200)
        if text not in listing.text:
            raise FlowFailed("the posted message is not in /board/messages")
        # The message's list item names its delete URL (a form action or a button formaction);
        # the page's CSRF token is the same for every form on it.
        item = next(part for part in listing.text.split("<li") if text in part)
        found = re.search(r'action="(/board/messages/[^"/]+/delete)"', item)
        token = CSRF_INPUT.search(listing.text)
        if not found or not token:
            raise FlowFailed("the listed message has no delete control with a CSRF token")
        deleted = await http.post(found.group(1), data={"_csrf_token": token.group(1)})
        expect(deleted, 303)
        if text in expect(await http.get("/board/messages"), 200).text:
            raise FlowFailed("the deleted message is still listed")
        async with new_client(options) as stranger:
            anonymous = await stranger.get("/board/messages")
            expect(anonymous, 303)
        return f"{how}, posted, listed and deleted a message; anonymous visitors redirected"


def random_phone() -> str:
    # A valid Russian mobile number (+7 9xx), random enough not to collide between runs.
    return "+7916" + "".join(secrets.choice("0123456789") for _ in range(7))


async def register_user(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    body = {"phone": random_phone(), "password": secrets.token_urlsafe(12), "name": name}
    tokens = json_of(expect(await http.post(f"{API}/auth/register", json=body), 201))
    for key in ("access_token", "refresh_token", "user"):
        if key not in tokens:
            raise FlowFailed(f"/auth/register answer lacks {key!r}")
    return dict(tokens)


async def flow_messenger(options: Options) -> str:
    import socketio  # python-socketio; imported here so the other flows run without it

    async with new_client(options) as http:
        alice = await register_user(http, "Smoke Alice")
        bob = await register_user(http, "Smoke Bob")
        as_alice = {"Authorization": f"Bearer {alice['access_token']}"}
        as_bob = {"Authorization": f"Bearer {bob['access_token']}"}
        expect(await http.get(f"{API}/users/me", headers=as_alice), 200)
        chat = json_of(
            expect(
                await http.post(
                    f"{API}/chats",
                    json={"type": "direct", "member_id": bob["user"]["id"]},
                    headers=as_alice,
                ),
                200,
                201,
            )
        )
        chat_id = chat["id"]

        received: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        sender = socketio.AsyncClient(reconnection=False)
        receiver = socketio.AsyncClient(reconnection=False)
        text = unique("smoke over websocket")

        @receiver.on("message:new")
        async def on_message(data: dict[str, Any]) -> None:
            if isinstance(data, dict) and data.get("text") == text and not received.done():
                received.set_result(data)

        connect = {"transports": ["websocket"], "socketio_path": "socket.io", "wait_timeout": 10}
        try:
            await receiver.connect(options.base_url, auth={"token": bob["access_token"]}, **connect)
            await sender.connect(options.base_url, auth={"token": alice["access_token"]}, **connect)
            if sender.transport() != "websocket" or receiver.transport() != "websocket":
                raise FlowFailed("Socket.IO did not stay on the WebSocket transport")
            ack = await sender.call(
                "message:send",
                {"chat_id": chat_id, "type": "text", "text": text},
                timeout=options.timeout,
            )
            if not isinstance(ack, dict) or ack.get("text") != text:
                raise FlowFailed(f"message:send was acknowledged with {ack!r}")
            message = await asyncio.wait_for(received, options.timeout)
        except socketio.exceptions.ConnectionError as exc:
            raise FlowFailed(f"Socket.IO connection refused: {exc}") from exc
        except TimeoutError as exc:
            raise FlowFailed("the second client never received message:new") from exc
        finally:
            await sender.disconnect()
            await receiver.disconnect()

        history = json_of(
            expect(await http.get(f"{API}/chats/{chat_id}/messages", headers=as_bob), 200)
        )
        items = history if isinstance(history, list) else history.get("items", [])
        if not any(item.get("id") == message.get("id") for item in items):
            raise FlowFailed("the message is not in the chat history")
        return "two users, a direct chat, message:send over WebSocket delivered and stored"


async def flow_achievements(options: Options) -> str:
    admin = {"X-API-Key": options.admin_key}
    async with new_client(options) as http:
        refused = await http.post(f"{API}/players", json={"name": "nobody", "language": "en"})
        expect(refused, 401, 403)
        player = json_of(
            expect(
                await http.post(
                    f"{API}/players",
                    json={"name": unique("smoke player"), "language": "en"},
                    headers=admin,
                ),
                201,
            )
        )
        achievement = json_of(
            expect(
                await http.post(
                    f"{API}/achievements",
                    json={
                        "points": 10,
                        "translations": {
                            "en": {"name": unique("Smoke"), "description": "Ran the smoke test"},
                            "ru": {"name": unique("Дым"), "description": "Прогнал smoke-тест"},
                        },
                    },
                    headers=admin,
                ),
                201,
            )
        )
        expect(
            await http.post(
                f"{API}/players/{player['id']}/achievements",
                json={"achievement_id": achievement["id"]},
                headers=admin,
            ),
            200,
            201,
        )
        awarded = json_of(expect(await http.get(f"{API}/players/{player['id']}/achievements"), 200))
        items = awarded if isinstance(awarded, list) else awarded.get("items", [])
        if not any(
            achievement["id"] in (item.get("id"), item.get("achievement_id")) for item in items
        ):
            raise FlowFailed("the awarded achievement is not listed for the player")
        stats = json_of(expect(await http.get(f"{API}/achievements/stats"), 200))
        missing = {
            "most_achievements",
            "most_points",
            "max_points_gap",
            "min_points_gap",
            "seven_day_streaks",
        } - set(stats)
        if missing:
            raise FlowFailed(f"statistics lack {sorted(missing)}")
        return "player, achievement, award (X-API-Key), listing and statistics"


async def flow_trivia(options: Options) -> str:
    async with new_client(options) as http:
        response = await http.post(f"{API}/questions", json={"questions_num": 1})
        if response.status_code in (502, 504):
            raise FlowWarning(
                f"POST /questions -> {response.status_code}: the trivia upstream is unreachable "
                "from the app (expected without internet access)"
            )
        body = json_of(expect(response, 200, 201))
        if body and not {"id", "question", "answer"} <= set(body):
            raise FlowFailed(f"POST /questions answered {body!r}")
        expect(await http.get(f"{API}/questions"), 200)
        bad = await http.post(f"{API}/questions", json={"questions_num": -1})
        expect(bad, 400, 422)
        return "fetched one question from the upstream" + (", got the previous one" if body else "")


def generated_wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = (
            struct.pack("<h", int(12_000 * math.sin(2 * math.pi * 440 * i / rate)))
            for i in range(int(seconds * rate))
        )
        out.writeframes(b"".join(frames))
    return buffer.getvalue()


async def flow_audio(options: Options) -> str:
    async with new_client(options) as http:
        user = json_of(
            expect(await http.post(f"{API}/audio/users", json={"name": unique("smoke")}), 200, 201)
        )
        upload = await http.post(
            f"{API}/audio/records",
            data={"user_id": str(user["id"]), "token": str(user["token"])},
            files={"file": ("smoke.wav", generated_wav(), "audio/wav")},
        )
        record = json_of(expect(upload, 200, 201))
        url = record.get("url", "")
        if not urlsplit(url).scheme:
            raise FlowFailed(f"the download URL is not absolute: {url!r}")
        download = expect(await http.get(url), 200)
        head = download.content[:3]
        if not (head == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)):
            raise FlowFailed(f"the download is not an MP3 (starts with {head!r})")
        return f"user, WAV upload, MP3 download ({len(download.content)} bytes) from {url}"


FLOW_FUNCTIONS: dict[str, Callable[[Options], Awaitable[str]]] = {
    "health": flow_health,
    "docs": flow_docs,
    "board": flow_board,
    "messenger": flow_messenger,
    "achievements": flow_achievements,
    "trivia": flow_trivia,
    "audio": flow_audio,
}


async def wait_until_ready(options: Options, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    last = "no answer"
    async with new_client(options) as http:
        while time.monotonic() < deadline:
            try:
                response = await http.get("/health/ready")
                if response.status_code == 200:
                    return
                last = f"/health/ready -> {response.status_code}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(1)
    print(f"not ready after {seconds:.0f}s ({last}); running the flows anyway", file=sys.stderr)


async def run(options: Options, flows: list[str]) -> list[Result]:
    results = []
    for flow in flows:
        started = time.monotonic()
        try:
            detail = await FLOW_FUNCTIONS[flow](options)
            status = "ok"
        except FlowWarning as exc:
            status, detail = "warn", str(exc)
        except FlowFailed as exc:
            status, detail = "FAIL", str(exc)
        except (httpx.HTTPError, KeyError, TypeError, ValueError, OSError) as exc:
            status, detail = "FAIL", f"{type(exc).__name__}: {exc}"
        result = Result(flow, status, time.monotonic() - started, detail)
        print(
            f"  {result.status:<4}  {flow:<12} {result.seconds * 1000:7.0f} ms  {detail}",
            flush=True,
        )
        results.append(result)
    return results


def parse_args(argv: list[str] | None = None) -> tuple[Options, list[str], float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "base_url", help="e.g. http://quintet.localtest.me or http://127.0.0.1:8000"
    )
    parser.add_argument(
        "--only",
        default=",".join(FLOWS),
        help=f"comma-separated flows to run (default: all of {','.join(FLOWS)})",
    )
    parser.add_argument(
        "--admin-key",
        default=os.environ.get("SMOKE_ADMIN_API_KEY", "dev-admin-key"),
        help="ADMIN_API_KEY of the deployment (env SMOKE_ADMIN_API_KEY)",
    )
    parser.add_argument(
        "--board-username", default=os.environ.get("SMOKE_BOARD_USERNAME", "smoke-owner")
    )
    parser.add_argument(
        "--board-password",
        default=os.environ.get("SMOKE_BOARD_PASSWORD", "smoke-owner-password"),
        help="used to register the board's owner, or to log in when it exists",
    )
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per request")
    parser.add_argument(
        "--wait", type=float, default=0.0, help="seconds to wait for /health/ready first"
    )
    args = parser.parse_args(argv)
    flows = [flow.strip() for flow in args.only.split(",") if flow.strip()]
    unknown = sorted(set(flows) - set(FLOWS))
    if unknown or not flows:
        parser.error(f"unknown flows {unknown}; choose from {','.join(FLOWS)}")
    options = Options(
        base_url=args.base_url.rstrip("/"),
        admin_key=args.admin_key,
        board_username=args.board_username,
        board_password=args.board_password,
        timeout=args.timeout,
    )
    return options, flows, args.wait


def main(argv: list[str] | None = None) -> int:
    options, flows, wait = parse_args(argv)
    print(f"smoke test of {options.base_url}: {', '.join(flows)}", flush=True)

    async def everything() -> list[Result]:
        if wait:
            await wait_until_ready(options, wait)
        return await run(options, flows)

    results = asyncio.run(everything())
    failed = [r.flow for r in results if r.status == "FAIL"]
    warned = [r.flow for r in results if r.status == "warn"]
    ok = len(results) - len(failed) - len(warned)
    summary = f"smoke: {ok} flows ok, {len(failed)} failing"
    if warned:
        summary += f", {len(warned)} with warnings ({', '.join(warned)})"
    print(summary + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
