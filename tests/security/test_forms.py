"""CSRF on every form of every page.

The forms are found in ``app/templates`` and sorted three ways, and a table below must name
each one (the first test fails, naming the form, when a template gains one):

* cookie-session forms (``method="post"``, the board's): each must carry ``csrf_input``; a
  post without the token is refused with 403 (an error page for a browser, problem details
  otherwise) and changes nothing, the same post with the token is accepted.
  tests/board/test_board.py checks the board's domain rules and that these actions refuse a
  missing token; here the list comes from the templates and both sides are checked per form.
* script forms (no method: ``fetch`` or Socket.IO with a bearer or audio token): they call
  CSRF-exempt routes that take no authority from cookies, so the check is that a request
  riding on a signed-in browser's cookies, without the token, is refused.
* GET forms: read-only searches.

The last test checks the same from the route table: every state-changing route that a
cookie can authorize is one of the CSRF-checked forms.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from app.lib.sessions import SessionBoundCSRFMiddleware
from tests.security.schema import is_problem
from tests.support import LiveServer, csrf_token, litestar_app, post_form

APP_DIR = Path(__file__).resolve().parents[2] / "app"
OWNER = {
    "username": "owner",
    "password": "correct horse battery",
    "password_confirm": "correct horse battery",
}


@dataclass(frozen=True)
class Form:
    template: str
    method: str  # "post", "get" or "" (driven by a script)
    actions: tuple[str, ...]  # the action, or the formaction of each button naming the form
    form_id: str
    has_csrf_input: bool


class _FormFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.formactions: dict[str, list[str]] = {}
        self.open: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.open = {**values, "body": ""}
            self.forms.append(self.open)
        elif "formaction" in values:
            owner = values.get("form") or (self.open or {}).get("id", "")
            self.formactions.setdefault(owner, []).append(values["formaction"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.open = None

    def handle_data(self, data: str) -> None:
        if self.open is not None:
            self.open["body"] += data


def discover_forms() -> list[Form]:
    forms = []
    for template in sorted((APP_DIR / "templates").rglob("*.html")):
        finder = _FormFinder()
        finder.feed(template.read_text())
        for found in finder.forms:
            form_id = found.get("id", "")
            actions = [found["action"]] if found.get("action") else []
            actions += finder.formactions.get(form_id, [])
            forms.append(
                Form(
                    template=str(template.relative_to(APP_DIR / "templates")),
                    method=found.get("method", "").lower(),
                    actions=tuple(actions),
                    form_id=form_id,
                    has_csrf_input="csrf_input" in found["body"],
                )
            )
    return forms


# --- cookie-session forms -------------------------------------------------------------------


async def _register(client: httpx.AsyncClient) -> None:
    response = await post_form(client, "/board/register", OWNER)
    assert response.status_code == 303, response.text


async def _register_elsewhere(client: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=str(client.base_url)) as owner:
        await _register(owner)


async def _with_a_message(client: httpx.AsyncClient) -> None:
    await _register(client)
    assert (await post_form(client, "/board/messages/new", {"text": "keep me"})).status_code == 303


async def _message_count(client: httpx.AsyncClient) -> int:
    return len(
        re.findall(r'class="[^"]*\bmessage\b[^"]*"', (await client.get("/board/messages")).text)
    )


@dataclass(frozen=True)
class PostForm:
    page: str  # where the form is shown (and its token obtained)
    data: dict[str, str]
    accepted: int  # the status of a post with the token
    setup: Callable[[httpx.AsyncClient], Awaitable[None]] | None = None


# Keyed by the action as written in the template.
POST_FORMS: dict[str, PostForm] = {
    "/board/register": PostForm("/board/register", OWNER, 303),
    "/board/login": PostForm(
        "/board/login",
        {"username": OWNER["username"], "password": OWNER["password"]},
        303,
        _register_elsewhere,
    ),
    "/board/logout": PostForm("/board/messages", {}, 303, _register),
    "/board/messages/new": PostForm("/board/messages/new", {"text": "hello"}, 303, _register),
    "/board/messages/{{ m.id }}/delete": PostForm("/board/messages", {}, 303, _with_a_message),
}


async def _concrete_action(client: httpx.AsyncClient, action: str, page: str) -> str:
    if "{{" not in action:
        return action
    pattern = re.escape(action.split("{{", 1)[0]) + r"[^\"]+" + re.escape(action.split("}}")[1])
    match = re.search(pattern, (await client.get(page)).text)
    assert match, f"no {action} on {page}"
    return match.group(0)


async def _board_state(client: httpx.AsyncClient) -> tuple[int, int, bool]:
    """What a forged post could change: the owner, the messages and the login."""
    page = await client.get("/board/messages")
    signed_in = page.status_code == 200
    messages = await _message_count(client) if signed_in else -1
    register = await client.get("/board/register")
    return register.status_code, messages, signed_in


def test_every_form_in_the_templates_is_covered() -> None:
    forms = discover_forms()
    assert len(forms) >= 10, forms
    posts = {action for f in forms if f.method == "post" for action in f.actions}
    assert sorted(posts ^ POST_FORMS.keys()) == [], "cookie-session forms and POST_FORMS differ"
    for form in forms:
        if form.method == "post":
            assert form.has_csrf_input, f"{form.template}: a post form without csrf_input"
            assert form.actions, f"{form.template}: a post form without an action"
        elif form.method == "get":
            assert form.actions, form
            assert set(form.actions) <= GET_FORMS, form
        else:
            assert form.form_id in SCRIPT_FORMS, f"{form.template}: form {form.form_id!r}"
    scripted = {f.form_id for f in forms if not f.method}
    assert sorted(scripted ^ SCRIPT_FORMS.keys()) == [], "script forms and SCRIPT_FORMS differ"


@pytest.mark.parametrize("action", POST_FORMS)
async def test_a_form_posted_without_its_token_is_refused_and_with_it_accepted(
    client: httpx.AsyncClient, action: str
) -> None:
    form = POST_FORMS[action]
    if form.setup is not None:
        await form.setup(client)
    token = await csrf_token(client, form.page)
    target = await _concrete_action(client, action, form.page)
    before = await _board_state(client)
    forged = [
        ({"Accept": "text/html"}, form.data),
        ({}, form.data),
        ({"Accept": "text/html"}, {**form.data, "_csrf_token": token[::-1]}),
    ]
    for headers, data in forged:
        response = await client.post(target, data=data, headers=headers)
        assert response.status_code == 403, (target, headers, response.status_code)
        if "Accept" in headers:
            assert response.headers["content-type"].startswith("text/html")
            assert "Nothing was changed" in response.text  # plain words, not "CSRF"
            assert "CSRF" not in response.text
        else:
            assert is_problem(response, 403), response.text
    assert await _board_state(client) == before
    accepted = await client.post(target, data={**form.data, "_csrf_token": token})
    assert accepted.status_code == form.accepted, (target, accepted.text[:300])


# --- script forms ---------------------------------------------------------------------------


Probe = Callable[[httpx.AsyncClient, LiveServer], Awaitable[None]]


def rest_probe(method: str, path: str, **kwargs: Any) -> Probe:
    """The script form's request without its token: refused with problem details."""

    async def probe(client: httpx.AsyncClient, live_server: LiveServer) -> None:
        assert _csrf_exempt(live_server, method, path), path
        response = await client.request(method, path, **kwargs)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json")

    return probe


async def socket_probe(client: httpx.AsyncClient, live_server: LiveServer) -> None:
    """A Socket.IO connection carrying the browser's cookies but no token: refused."""
    cookies = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            live_server.url, headers={"Cookie": cookies}, transports=["websocket"], wait_timeout=5
        )


@dataclass(frozen=True)
class ScriptForm:
    script: str  # the file under app/static that submits it
    calls: str  # what it calls, as written in the script
    credential: str  # what authorizes the call instead of a cookie
    probe: Probe | None  # the call without that credential, refused


NO_SUCH_ID = "0190a000-0000-7000-8000-000000000000"
SCRIPT_FORMS: dict[str, ScriptForm] = {
    "auth-form": ScriptForm(
        "js/chat.js", '"/auth/" + authMode', "none: sign-up and sign-in grant nothing", None
    ),
    "group-form": ScriptForm(
        "js/chat.js",
        'api("/chats"',
        "bearer token",
        rest_probe("POST", "/api/v1/chats", json={"type": "group", "title": "forged"}),
    ),
    "composer": ScriptForm(
        "js/chat.js",
        'emit("message:send"',
        "bearer token in the Socket.IO handshake",
        socket_probe,
    ),
    "rename-form": ScriptForm(
        "js/chat.js",
        'api("/chats/" + state.current.id, { method: "PATCH"',
        "bearer token",
        rest_probe("PATCH", f"/api/v1/chats/{NO_SUCH_ID}", json={"title": "forged"}),
    ),
    "profile-form": ScriptForm(
        "js/chat.js",
        'api("/users/me", {',
        "bearer token",
        rest_probe("PATCH", "/api/v1/users/me", json={"name": "forged"}),
    ),
    "audio-user-form": ScriptForm(
        "js/audio.js", '"/api/v1/audio/users"', "none: creating a user grants nothing", None
    ),
    "audio-upload-form": ScriptForm(
        "js/audio.js",
        '"/api/v1/audio/records"',
        "the audio user's token in the body",
        rest_probe("POST", "/api/v1/audio/records", data={"user_id": NO_SUCH_ID}),
    ),
}
GET_FORMS = {"/achievements"}


async def test_script_forms_take_no_authority_from_cookies(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    """A signed-in board owner's browser (session and CSRF cookies) posting what a script
    form posts, but without the form's token: refused, so a forged cross-site post gains
    nothing from the cookies it carries."""
    await _register(client)
    assert client.cookies.get("quintet_session")
    for form_id, form in SCRIPT_FORMS.items():
        script = (APP_DIR / "static" / form.script).read_text()
        assert form_id in script, f"{form.script} does not drive #{form_id}"
        assert form.calls in script, f"{form.script} no longer calls {form.calls}"
        if form.probe is not None:
            await form.probe(client, live_server)


# --- the route table ------------------------------------------------------------------------


def _csrf_exempt(live_server: LiveServer, method: str, path: str) -> bool:
    """Exempt: the route is outside the page router, so it never runs the CSRF check."""
    router = litestar_app(live_server).asgi_router
    handler = router.handle_routing(path=path, method=method)[1]
    return not _checks_csrf(handler)


def _checks_csrf(handler: Any) -> bool:
    layers = handler.resolve_middleware()
    return any(
        getattr(layer, "middleware", layer) is SessionBoundCSRFMiddleware for layer in layers
    )


def test_every_state_changing_route_a_cookie_reaches_is_a_checked_form(
    live_server: LiveServer,
) -> None:
    """Outside the CSRF-exempt prefixes (which authenticate by token or key, never by
    cookie) every POST, PUT, PATCH or DELETE route is one of the forms checked above."""
    form_routes = {re.sub(r"\{\{[^}]*\}\}", "{message_id:str}", action) for action in POST_FORMS}
    unchecked = []
    for route in litestar_app(live_server).routes:
        unsafe = set(getattr(route, "methods", set())) & {"POST", "PUT", "PATCH", "DELETE"}
        handlers = [
            handler
            for handler in getattr(route, "route_handlers", [])
            if set(handler.http_methods) & unsafe
        ]
        if not unsafe:
            continue
        if handlers and not any(_checks_csrf(handler) for handler in handlers):
            continue
        if route.path not in form_routes:
            unchecked.append(f"{sorted(unsafe)} {route.path}")
    assert unchecked == []
