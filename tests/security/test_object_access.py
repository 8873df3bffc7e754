"""Every object route, tried by someone who must not reach the object.

The table below says, for each operation of ``/docs/openapi.json`` that names an object (a
path parameter, or a required UUID query parameter such as ``/record?id=&user=``), how to
build its URL against a small world of real objects and who tries it: a stranger (signed in,
not a member), a member who is not the owner or author, a former member, an anonymous
caller, or a caller without (or with a wrong) admin key. Each attempt must get the app's
problem document with the expected status, must not carry any of the world's secrets, and
the world must be unchanged afterwards. Routes that are public by design say why.

``test_the_table_covers_every_object_route`` fails, naming it, when the schema gains an
object route the table does not know.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from app.config import Settings
from tests.accounts.api import Account, data_url, image_bytes, register
from tests.achievements.support import admin, award, create_achievement, create_player
from tests.audio.test_audio import create_user, make_wav, upload
from tests.messenger.api import direct_chat, group_chat, send_text
from tests.security.schema import METHODS, fetch_operations, is_problem

SECRET_TEXT = "the vault code is 7-3-1-9"
SECRET_TITLE = "Operation Nightjar"
SECRET_FILE = b"payroll: everyone gets a raise"


@dataclass
class World:
    alice: Account  # owns the group, wrote the messages
    bob: Account  # a member
    carol: Account  # a former member (removed from the group)
    mallory: Account  # signed in, in no chat with anyone
    dave: Account  # invited into the group (a stranger to Alice, so not added)
    group: str
    direct: str
    invitation: str
    message: str
    image: dict[str, Any]
    file: dict[str, Any]
    player: str
    achievement: str
    audio_owner: dict[str, Any]
    audio_other: dict[str, Any]
    record: str
    admin_headers: dict[str, str]
    secrets: list[str] = field(default_factory=list)


async def build_world(client: httpx.AsyncClient, settings: Settings) -> World:
    alice = await register(client, name="Alice")
    bob = await register(client, name="Bob")
    carol = await register(client, name="Carol")
    mallory = await register(client, name="Mallory")
    dave = await register(client, name="Dave")
    group = (await group_chat(client, alice, [bob, carol], title=SECRET_TITLE))["id"]
    invited = await client.post(
        f"/api/v1/chats/{group}/members", headers=alice.headers, json={"user_ids": [dave.id]}
    )
    assert invited.json()["invited"] == [dave.id], invited.text
    invitation = (await client.get("/api/v1/invitations", headers=dave.headers)).json()[0]["id"]
    removed = await client.delete(
        f"/api/v1/chats/{group}/members/{carol.id}", headers=alice.headers
    )
    assert removed.status_code == 204, removed.text
    direct = (await direct_chat(client, alice, bob))["id"]
    message = (await send_text(client, alice, group, SECRET_TEXT))["id"]
    await send_text(client, alice, direct, SECRET_TEXT)
    messages = f"/api/v1/chats/{group}/messages"
    image = await client.post(
        messages,
        headers=alice.headers,
        json={"type": "image", "attachment": {"data": data_url(image_bytes(size=(64, 48)))}},
    )
    assert image.status_code == 201, image.text
    file = await client.post(
        messages,
        headers=alice.headers,
        json={
            "type": "file",
            "attachment": {
                "data": base64.b64encode(SECRET_FILE).decode(),
                "name": "payroll.txt",
                "content_type": "text/plain",
            },
        },
    )
    assert file.status_code == 201, file.text
    avatar = await client.put(
        "/api/v1/users/me/avatar",
        headers=alice.headers,
        json={"image": data_url(image_bytes(size=(80, 80)))},
    )
    assert avatar.status_code == 200, avatar.text
    player = (await create_player(client, settings, "Ivan"))["id"]
    achievement = (await create_achievement(client, settings, 10, en="First blood"))["id"]
    awarded = await award(client, settings, player, achievement)
    assert awarded.status_code == 201, awarded.text
    audio_owner = await create_user(client, "owner")
    audio_other = await create_user(client, "other")
    uploaded = await upload(client, audio_owner, make_wav(seconds=0.2))
    assert uploaded.status_code == 201, uploaded.text
    return World(
        alice=alice,
        bob=bob,
        carol=carol,
        mallory=mallory,
        dave=dave,
        group=group,
        direct=direct,
        invitation=invitation,
        message=message,
        image=image.json()["attachment"],
        file=file.json()["attachment"],
        player=player,
        achievement=achievement,
        audio_owner=audio_owner,
        audio_other=audio_other,
        record=uploaded.json()["id"],
        admin_headers=admin(settings),
        secrets=[
            SECRET_TEXT,
            SECRET_TITLE,
            SECRET_FILE.decode(),
            alice.phone,
            alice.access_token,
            audio_owner["token"],
        ],
    )


def actor_headers(world: World, actor: str) -> dict[str, str]:
    return {
        "stranger": world.mallory.headers,
        "member": world.bob.headers,
        "former member": world.carol.headers,
        "anonymous": {},
        "no admin key": {},
        "wrong admin key": {"X-API-Key": "not-the-admin-key"},
    }[actor]


Path = Callable[[World], str]


@dataclass(frozen=True)
class Attempt:
    actor: str
    status: int
    path: Path | None = None  # when this actor needs another URL than the route's default


@dataclass(frozen=True)
class Route:
    path: Path
    attempts: tuple[Attempt, ...]
    body: Callable[[World], Any] | None = None
    public: str | None = None  # why anyone (or any signed-in user) may read it


def chat(suffix: str = "") -> Path:
    return lambda w: f"/api/v1/chats/{w.group}{suffix}"


def message(suffix: str = "") -> Path:
    return lambda w: f"/api/v1/messages/{w.message}{suffix}"


def session_of(account: Account) -> str:
    """The session id an access token carries (its ``sid`` claim)."""
    return str(jwt.decode(account.access_token, options={"verify_signature": False})["sid"])


STRANGERS = (Attempt("stranger", 404), Attempt("former member", 404), Attempt("anonymous", 401))
OWNER_ONLY = (*STRANGERS, Attempt("member", 403))
ADMIN_ONLY = (Attempt("no admin key", 401), Attempt("wrong admin key", 401))

ROUTES: dict[str, Route] = {
    "GET /api/v1/chats/{chat_id}": Route(chat(), STRANGERS),
    "PATCH /api/v1/chats/{chat_id}": Route(chat(), OWNER_ONLY, body=lambda _: {"title": "pwned"}),
    "POST /api/v1/chats/{chat_id}/members": Route(
        chat("/members"), OWNER_ONLY, body=lambda w: {"user_ids": [w.mallory.id]}
    ),
    "DELETE /api/v1/chats/{chat_id}/members/{user_id}": Route(
        lambda w: f"/api/v1/chats/{w.group}/members/{w.bob.id}",
        (
            *STRANGERS,
            # A member may leave (remove themselves), never remove the owner.
            Attempt("member", 403, lambda w: f"/api/v1/chats/{w.group}/members/{w.alice.id}"),
        ),
    ),
    "PUT /api/v1/chats/{chat_id}/pin": Route(chat("/pin"), STRANGERS),
    "DELETE /api/v1/chats/{chat_id}/pin": Route(chat("/pin"), STRANGERS),
    "PUT /api/v1/chats/{chat_id}/mute": Route(chat("/mute"), STRANGERS),
    "DELETE /api/v1/chats/{chat_id}/mute": Route(chat("/mute"), STRANGERS),
    "GET /api/v1/chats/{chat_id}/messages": Route(chat("/messages"), STRANGERS),
    "POST /api/v1/chats/{chat_id}/messages": Route(
        chat("/messages"), STRANGERS, body=lambda _: {"type": "text", "text": "intruder"}
    ),
    "POST /api/v1/chats/{chat_id}/read": Route(chat("/read"), STRANGERS),
    "POST /api/v1/chats/{chat_id}/delivered": Route(chat("/delivered"), STRANGERS),
    "GET /api/v1/chats/{chat_id}/messages/search": Route(
        chat(f"/messages/search?q={SECRET_TEXT.split()[1]}"), STRANGERS
    ),
    # Only the invitee may answer an invitation; to anyone else it does not exist.
    "POST /api/v1/invitations/{invitation_id}/accept": Route(
        lambda w: f"/api/v1/invitations/{w.invitation}/accept",
        (*STRANGERS, Attempt("member", 404)),
    ),
    "POST /api/v1/invitations/{invitation_id}/decline": Route(
        lambda w: f"/api/v1/invitations/{w.invitation}/decline",
        (*STRANGERS, Attempt("member", 404)),
    ),
    "DELETE /api/v1/auth/sessions/{session_id}": Route(
        lambda w: f"/api/v1/auth/sessions/{session_of(w.alice)}",
        (Attempt("stranger", 404), Attempt("anonymous", 401)),
    ),
    "PATCH /api/v1/messages/{message_id}": Route(
        message(), OWNER_ONLY, body=lambda _: {"text": "pwned"}
    ),
    "DELETE /api/v1/messages/{message_id}": Route(message(), OWNER_ONLY),
    "PUT /api/v1/messages/{message_id}/like": Route(message("/like"), STRANGERS),
    "DELETE /api/v1/messages/{message_id}/like": Route(message("/like"), STRANGERS),
    "GET /api/v1/attachments/{attachment_id}": Route(
        lambda w: w.file["url"],
        (*STRANGERS, Attempt("stranger", 404, lambda w: w.image["url"])),
    ),
    "GET /api/v1/attachments/{attachment_id}/preview": Route(
        lambda w: w.image["preview_url"], STRANGERS
    ),
    "GET /api/v1/users/{user_id}": Route(
        lambda w: f"/api/v1/users/{w.alice.id}",
        (Attempt("anonymous", 401),),
        public="the people directory of signed-in users (to start chats); no phone in it",
    ),
    "PUT /api/v1/users/{user_id}/block": Route(
        lambda w: f"/api/v1/users/{w.alice.id}/block",
        (Attempt("anonymous", 401),),
        # Nobody's object: blocking acts on the caller's own list, and a stranger blocking
        # Alice changes nothing Alice sees.
    ),
    "DELETE /api/v1/users/{user_id}/block": Route(
        lambda w: f"/api/v1/users/{w.alice.id}/block", (Attempt("anonymous", 401),)
    ),
    "GET /api/v1/users/{user_id}/avatar/{size}": Route(
        lambda w: f"/api/v1/users/{w.alice.id}/avatar/original",
        (),
        public="avatars are shown by <img> tags, which send no token",
    ),
    "POST /api/v1/players/{player_id}/achievements": Route(
        lambda w: f"/api/v1/players/{w.player}/achievements",
        ADMIN_ONLY,
        body=lambda w: {"achievement_id": w.achievement},
    ),
    "GET /api/v1/players/{player_id}": Route(
        lambda w: f"/api/v1/players/{w.player}", (), public="seed 002: players are public"
    ),
    "GET /api/v1/players/{player_id}/achievements": Route(
        lambda w: f"/api/v1/players/{w.player}/achievements",
        (),
        public="seed 002: a player's achievements are public",
    ),
    "GET /api/v1/achievements/{achievement_id}": Route(
        lambda w: f"/api/v1/achievements/{w.achievement}",
        (),
        public="seed 002: the catalogue is public",
    ),
    "GET /record": Route(
        lambda w: f"/record?id={w.record}&user={w.audio_other['id']}",
        (
            # Another audio user's id with the record's id: as absent as a missing record.
            Attempt("anonymous", 404),
            Attempt("stranger", 404),
        ),
    ),
}


async def test_the_table_covers_every_object_route(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    object_routes = set()
    for path, item in schema["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = op.get("parameters", [])
            by_path = any(p["in"] == "path" for p in params)
            by_query_id = any(
                p["in"] == "query"
                and p.get("required")
                and p.get("schema", {}).get("format") == "uuid"
                for p in params
            )
            if by_path or by_query_id:
                object_routes.add(f"{method.upper()} {path}")
    assert sorted(object_routes - ROUTES.keys()) == [], "object routes missing from ROUTES"
    assert sorted(ROUTES.keys() - object_routes) == [], "ROUTES lists routes the schema lacks"
    assert len(await fetch_operations(client)) > len(object_routes)


async def snapshot(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    """What the owners see of their objects, to prove that no attempt changed anything."""
    views: dict[str, Any] = {}
    reads = {
        "alice chats": ("/api/v1/chats", world.alice),
        "bob chats": ("/api/v1/chats", world.bob),
        "carol chats": ("/api/v1/chats", world.carol),
        "mallory chats": ("/api/v1/chats", world.mallory),
        "dave invitations": ("/api/v1/invitations", world.dave),
        "group history": (f"/api/v1/chats/{world.group}/messages", world.alice),
        "direct history": (f"/api/v1/chats/{world.direct}/messages", world.alice),
        "alice": ("/api/v1/users/me", world.alice),
    }
    for name, (path, account) in reads.items():
        response = await client.get(path, headers=account.headers)
        assert response.status_code == 200, (name, response.text)
        views[name] = response.json()
    awards = await client.get(f"/api/v1/players/{world.player}/achievements")
    views["awards"] = awards.json()
    record = await client.get(f"/record?id={world.record}&user={world.audio_owner['id']}")
    assert record.status_code == 200
    views["record"] = hashlib.sha256(record.content).hexdigest()
    return views


def leaked(response: httpx.Response, world: World) -> list[str]:
    return [secret for secret in world.secrets if secret in response.text]


async def test_no_object_route_serves_or_changes_anything_for_an_outsider(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    world = await build_world(client, migrated_database)
    before = await snapshot(client, world)
    failures = []
    for name, route in ROUTES.items():
        method = name.split(" ", 1)[0]
        for attempt in route.attempts:
            path = (attempt.path or route.path)(world)
            response = await client.request(
                method,
                path,
                headers=actor_headers(world, attempt.actor),
                json=route.body(world) if route.body else None,
            )
            where = f"{name} as {attempt.actor} ({path})"
            if not is_problem(response, attempt.status):
                failures.append(f"{where}: {response.status_code} {response.text[:200]}")
            if secrets := leaked(response, world):
                failures.append(f"{where}: leaked {secrets}")
    assert failures == []
    assert await snapshot(client, world) == before


async def test_public_object_routes_serve_no_private_data(
    client: httpx.AsyncClient, migrated_database: Settings
) -> None:
    """The routes that are public by design answer a stranger without the secrets of the
    world (a phone number, a token), and the images are served as images, not sniffed."""
    world = await build_world(client, migrated_database)
    for name, route in ROUTES.items():
        if route.public is None:
            continue
        method = name.split(" ", 1)[0]
        assert method == "GET", f"{name} is public but not a read"
        response = await client.get(route.path(world), headers=world.mallory.headers)
        assert response.status_code == 200, (name, response.text)
        assert leaked(response, world) == [], name
        content_type = response.headers["content-type"]
        if not content_type.startswith("application/json"):
            assert content_type in ("image/png", "image/jpeg", "image/webp"), name
            assert response.headers["x-content-type-options"] == "nosniff", name
        else:
            body = json.dumps(response.json())
            assert "phone" not in body, name


async def test_an_outsider_cannot_use_a_message_id_as_a_read_cursor_elsewhere(
    client: httpx.AsyncClient,
) -> None:
    """Marking one's own chat read up to a message of another chat is refused (the cursor
    does not confirm that the foreign message exists)."""
    alice = await register(client, name="Alice")
    bob = await register(client, name="Bob")
    mallory = await register(client, name="Mallory")
    group = (await group_chat(client, alice, [bob], title=SECRET_TITLE))["id"]
    secret = (await send_text(client, alice, group, SECRET_TEXT))["id"]
    own = (await direct_chat(client, mallory, alice))["id"]
    response = await client.post(
        f"/api/v1/chats/{own}/read", headers=mallory.headers, json={"message_id": secret}
    )
    assert is_problem(response, 404)
