"""The board's pages (seed 000): registration, login, the message form and the list."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

from app.domain.board.services import (
    BoardMessageStore,
    BoardOwnerService,
    InvalidPageError,
    RegistrationClosedError,
    page_count,
    parse_page_number,
)
from app.lib.auth import PUBLIC_ROUTE
from app.lib.dependencies import DbSessionDep, RedisDep, SettingsDep, client_ip
from app.lib.errors import AppError
from app.lib.ratelimit import RateLimiter
from app.lib.sessions import CsrfRefusedError, begin_session
from app.lib.web import BOARD_SESSION_KEY, describe_duration, page

SESSION_KEY = BOARD_SESSION_KEY
DRAFT_KEY = "draft"
FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
SESSION_ENDED = (
    "Your session had ended (you logged out elsewhere, or it expired), so the message was "
    "not posted. It is kept below: log in and it will be back in the form, ready to post."
)
OwnersDep = NamedDependency[BoardOwnerService]
StoreDep = NamedDependency[BoardMessageStore]


def provide_owner_service(db_session: DbSessionDep) -> BoardOwnerService:
    return BoardOwnerService(db_session)


def provide_message_store(redis: RedisDep, settings: SettingsDep) -> BoardMessageStore:
    return BoardMessageStore(
        redis, settings.board_message_ttl_seconds, settings.board_max_live_messages
    )


async def registration_open(owners: OwnersDep) -> bool:
    return not await owners.owner_exists()


def closed_page(request: Request[Any, Any, Any]) -> Template:
    return page(request, "board/closed.html", status_code=403, registration_open=False)


async def require_owner(request: Request[Any, Any, Any]) -> Redirect | Template | None:
    if request.session.get(SESSION_KEY):
        return None
    if request.method == "POST" and request.url.path == "/board/messages/new":
        # The session ended while the form was open: keep what was typed through the login.
        text = (await request.form()).get("text")
        return page(
            request,
            "board/login.html",
            status_code=401,
            registration_open=False,
            next="/board/messages/new",
            form={},
            notice=SESSION_ENDED,
            draft=text if isinstance(text, str) else "",
        )
    return Redirect(path=f"/board/login?next={request.url.path}", status_code=303)


def typed_fields(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The form fields of this request, as already parsed by the CSRF check."""
    form = ScopeState.from_scope(request.scope).form
    if form is Empty or not isinstance(form, dict):
        return {}
    return {name: value for name, value in form.items() if isinstance(value, str)}


def refused_form(request: Request[Any, Any, Any], exc: CsrfRefusedError) -> Response[Any]:
    """A form refused for its CSRF token: the same form again, what was typed kept (never
    the passwords), with a fresh token and the reason in plain words."""
    if "text/html" not in request.headers.get("accept", ""):
        return exc.to_response(request)
    typed = typed_fields(request)
    path = request.url.path
    common: dict[str, Any] = {"status_code": 403, "headers": exc.headers, "error": exc.detail}
    if path == "/board/messages/new":
        settings = request.app.state.settings
        return page(
            request,
            "board/new.html",
            ttl=settings.board_message_ttl_seconds,
            form={"text": typed.get("text", "")},
            **common,
        )
    if path == "/board/login":
        return page(
            request,
            "board/login.html",
            registration_open=False,
            next=safe_next(typed.get("next")),
            form={"username": typed.get("username", "")},
            draft=typed.get(DRAFT_KEY, ""),
            **common,
        )
    if path == "/board/register":
        return page(
            request,
            "board/register.html",
            registration_open=True,
            form={"username": typed.get("username", "")},
            **common,
        )
    # Log out and delete: nothing was typed; the page links back to where to press again.
    common["error"] = (
        "The button you pressed came from a page this site no longer accepts (it was open "
        "in another tab when you logged in or out, or your cookies were cleared). Nothing "
        "was changed. Open the page again and press the button there."
    )
    return page(request, "board/refused.html", **common)


def safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form is no open redirect."""
    if target and target.startswith("/board/") and not target.startswith("//"):
        return target
    return "/board/messages"


class BoardAccountController(Controller):
    path = "/board"
    opt = PUBLIC_ROUTE
    include_in_schema = False
    dependencies = {"owners": Provide(provide_owner_service, sync_to_thread=False)}
    exception_handlers = {CsrfRefusedError: refused_form}

    @get("/register")
    async def register_form(self, request: Request[Any, Any, Any], owners: OwnersDep) -> Template:
        if not await registration_open(owners):
            return closed_page(request)
        return page(request, "board/register.html", registration_open=True, form={})

    @post("/register")
    async def register(
        self,
        request: Request[Any, Any, Any],
        owners: OwnersDep,
        data: FormData,
    ) -> Template | Redirect:
        if not await registration_open(owners):
            return closed_page(request)
        username = data.get("username", "").strip()
        try:
            await owners.register(
                username, data.get("password", ""), data.get("password_confirm", "")
            )
        except RegistrationClosedError:
            return closed_page(request)
        except AppError as exc:
            return page(
                request,
                "board/register.html",
                status_code=exc.status_code,
                registration_open=True,
                form={"username": username},
                error=exc.detail,
                errors=exc.errors,
            )
        begin_session(request, {SESSION_KEY: username, "flash": "Welcome! You own this board."})
        return Redirect(path="/board/messages", status_code=303)

    @get("/login")
    async def login_form(self, request: Request[Any, Any, Any], owners: OwnersDep) -> Template:
        return page(
            request,
            "board/login.html",
            registration_open=await registration_open(owners),
            next=safe_next(request.query_params.get("next")),
            form={},
        )

    @post("/login")
    async def login(
        self,
        request: Request[Any, Any, Any],
        owners: OwnersDep,
        redis: RedisDep,
        settings: SettingsDep,
        data: FormData,
    ) -> Template | Redirect:
        username = data.get("username", "").strip()
        target = safe_next(data.get("next"))
        draft = data.get(DRAFT_KEY, "")
        limiter = RateLimiter(redis, "board-login", settings.login_attempts_per_minute, 60)
        try:
            await limiter.hit(client_ip(request))
            owner = await owners.authenticate(username, data.get("password", ""))
            if owner is None:
                raise _LoginFailedError("Wrong username or password.")
        except AppError as exc:
            return page(
                request,
                "board/login.html",
                status_code=exc.status_code,
                registration_open=await registration_open(owners),
                next=target,
                form={"username": username},
                error=exc.detail,
                draft=draft,
                headers=exc.headers,
            )
        if draft:
            begin_session(request, {SESSION_KEY: owner.username, DRAFT_KEY: draft})
            return Redirect(path="/board/messages/new", status_code=303)
        begin_session(request, {SESSION_KEY: owner.username})
        return Redirect(path=target, status_code=303)

    @post("/logout")
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect(path="/", status_code=303)


class _LoginFailedError(AppError):
    status_code = 401
    title = "Login failed"


class BoardMessageController(Controller):
    path = "/board/messages"
    opt = PUBLIC_ROUTE
    include_in_schema = False
    # Litestar calls it with the request; mypy reads a plain function as a method here.
    before_request = require_owner  # type: ignore[assignment]
    dependencies = {"store": Provide(provide_message_store, sync_to_thread=False)}
    exception_handlers = {CsrfRefusedError: refused_form}

    @get("/")
    async def list_messages(
        self, request: Request[Any, Any, Any], store: StoreDep, settings: SettingsDep
    ) -> Template:
        number = parse_page_number(request.query_params.get("page"))
        board = await store.list_page(number, settings.board_page_size)
        return page(
            request,
            "board/messages.html",
            board=board,
            messages=board.messages,
            now=time.time(),
            ttl=store.ttl_seconds,
        )

    @get("/new")
    async def new_message_form(
        self, request: Request[Any, Any, Any], settings: SettingsDep
    ) -> Template:
        draft = request.session.pop(DRAFT_KEY, None)
        return page(
            request,
            "board/new.html",
            ttl=settings.board_message_ttl_seconds,
            form={"text": draft or ""},
            notice="Your message is back in the form: press Post to send it." if draft else None,
        )

    @post("/new")
    async def create_message(
        self, request: Request[Any, Any, Any], store: StoreDep, data: FormData
    ) -> Template | Redirect:
        text = data.get("text", "")
        try:
            await store.add(text)
        except AppError as exc:
            return page(
                request,
                "board/new.html",
                status_code=exc.status_code,
                ttl=store.ttl_seconds,
                form={"text": text},
                error=exc.detail,
            )
        request.session["flash"] = (
            f"Message posted; it expires in {describe_duration(store.ttl_seconds)}."
        )
        return Redirect(path="/board/messages", status_code=303)

    @post("/{message_id:str}/delete")
    async def delete_message(
        self,
        request: Request[Any, Any, Any],
        store: StoreDep,
        settings: SettingsDep,
        message_id: FromPath[str],
        data: FormData,
    ) -> Redirect:
        await store.delete(message_id)
        request.session["flash"] = "Message deleted."
        # Back to the page the owner deleted from, or to the last page if that one is gone.
        try:
            number = parse_page_number(data.get("page"))
        except InvalidPageError:
            number = 1
        last = page_count(await store.count_live(), settings.board_page_size)
        return Redirect(path=messages_path(min(number, last)), status_code=303)


def messages_path(number: int) -> str:
    return "/board/messages" if number == 1 else f"/board/messages?page={number}"
