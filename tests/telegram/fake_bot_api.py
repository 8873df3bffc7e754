"""A fake Telegram Bot API server on 127.0.0.1 (aiohttp.web) that records what it is sent.

It answers ``getMe``, ``sendMessage``, ``getUpdates``, ``setWebhook`` and ``deleteWebhook``
like Telegram does, and can be told to fail the next calls of a method: drop the connection
(a network error), answer 429 with ``retry_after``, 500, or 403 (the user blocked the bot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

BOT_TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijklm"
BOT_USERNAME = "QuintetTestBot"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    outcome: str  # "ok" or the failure injected


@dataclass
class FakeBotAPI:
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0
    _message_id: int = 0
    _update_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("POST", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/bot{token}/{method}", self._handle)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def reset(self) -> None:
        self.calls.clear()
        self.failures.clear()
        self.updates.clear()

    def fail_next(self, method: str, times: int, kind: str, retry_after: int = 1) -> None:
        """kind: "disconnect", "429", "500" or "403"."""
        self.failures.setdefault(method, []).extend([(kind, retry_after)] * times)

    def push_update(self, update: dict[str, Any]) -> None:
        self.updates.append(update)
        self._update_arrived.set()

    def delivered(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method and c.outcome == "ok"]

    def attempts(self, method: str = "sendMessage") -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for_delivered(
        self, count: int, timeout: float = 30, method: str = "sendMessage"
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.delivered(method)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} {method}, got {self.delivered(method)} "
                    f"(attempts: {[c.outcome for c in self.attempts(method)]})"
                )
            await asyncio.sleep(0.05)
        return self.delivered(method)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != BOT_TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params = await self._params(request)
        pending = self.failures.get(method)
        if pending:
            kind, retry_after = pending.pop(0)
            self.calls.append(Call(method, params, time.monotonic(), kind))
            return self._failure(request, kind, retry_after)
        self.calls.append(Call(method, params, time.monotonic(), "ok"))
        if method == "getUpdates":
            return await self._get_updates(params)
        return web.json_response({"ok": True, "result": self._result(method, params)})

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        form = await request.post()
        return {key: str(value) for key, value in form.items()}

    @staticmethod
    def _failure(request: web.Request, kind: str, retry_after: int) -> web.StreamResponse:
        if kind == "disconnect":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if kind == "429":
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                },
                status=429,
            )
        if kind == "403":
            return web.json_response(
                {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"},
                status=403,
            )
        return web.json_response(
            {"ok": False, "error_code": 500, "description": "Internal Server Error"}, status=500
        )

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": 123456789,
                "is_bot": True,
                "first_name": "Quintet",
                "username": BOT_USERNAME,
            }
        if method == "sendMessage":
            self._message_id += 1
            chat_id = int(params["chat_id"])
            return {
                "message_id": self._message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": params.get("text", ""),
            }
        return True

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 2.0)
        if not any(u["update_id"] >= offset for u in self.updates) and timeout:
            self._update_arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._update_arrived.wait(), timeout)
        result = [u for u in self.updates if u["update_id"] >= offset]
        return web.json_response({"ok": True, "result": result})


def command_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """An update carrying a private message with a bot command, as Telegram sends it."""
    command = text.split()[0]
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
        },
    }


def dumps(update: dict[str, Any]) -> str:
    return json.dumps(update)
