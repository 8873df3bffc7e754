"""The board's pages (seed 000): registration, login, the message form and the list."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from app.domain.board.services import (
    BoardMessageStore,
    BoardOwnerService,
    InvalidPageError,
    RegistrationClosedError,
    page_count,
    parse_page_number,
)
from app.lib.dependencies import DbSessionDep, RedisDep, SettingsDep, client_ip
from app.lib.errors import AppError
from app.lib.ratelimit import RateLimiter
from app.lib.sessions import rotate_session

SESSION_KEY = "board_owner"
FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
LOGIN_ATTEMPTS_PER_MINUTE = 10
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


def page(
    request: Request[Any, Any, Any], template: str, status_code: int = 200, **context: Any
) -> Template:
    context.setdefault("board_user", request.session.get(SESSION_KEY))
    context.setdefault("flash", request.session.pop("flash", None) if request.session else None)
    return Template(template_name=template, context=context, status_code=status_code)


def closed_page(request: Request[Any, Any, Any]) -> Template:
    return page(request, "board/closed.html", status_code=403, registration_open=False)


async def require_owner(request: Request[Any, Any, Any]) -> Redirect | None:
    if request.session.get(SESSION_KEY):
        return None
    return Redirect(path=f"/board/login?next={request.url.path}", status_code=303)


def safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form is no open redirect."""
    if target and target.startswith("/board/") and not target.startswith("//"):
        return target
    return "/board/messages"


class BoardAccountController(Controller):
    path = "/board"
    include_in_schema = False
    dependencies = {"owners": Provide(provide_owner_service, sync_to_thread=False)}

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
        request.set_session({SESSION_KEY: username, "flash": "Welcome! You own this board."})
        rotate_session(request)
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
        data: FormData,
    ) -> Template | Redirect:
        username = data.get("username", "").strip()
        target = safe_next(data.get("next"))
        limiter = RateLimiter(redis, "board-login", LOGIN_ATTEMPTS_PER_MINUTE, 60)
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
            )
        request.set_session({SESSION_KEY: owner.username})
        rotate_session(request)
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
    include_in_schema = False
    # Litestar calls it with the request; mypy reads a plain function as a method here.
    before_request = require_owner  # type: ignore[assignment]
    dependencies = {"store": Provide(provide_message_store, sync_to_thread=False)}

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
        return page(request, "board/new.html", ttl=settings.board_message_ttl_seconds, form={})

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
        request.session["flash"] = "Message posted; it expires in 5 minutes."
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
