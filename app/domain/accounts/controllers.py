"""The accounts API: /api/v1/auth (sign-up, sign-in, tokens) and /api/v1/users."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from app.domain.accounts.authentication import BEARER_SECURITY
from app.domain.accounts.connections import (
    close_session_sockets,
    close_user_sockets,
    show_presence_to,
)
from app.domain.accounts.models import User
from app.domain.accounts.schemas import (
    AccountDeletion,
    AvatarUpload,
    LoginRequest,
    Me,
    ProfileUpdate,
    RefreshRequest,
    RegisterRequest,
    SessionOut,
    TokenPair,
    UserProfile,
)
from app.domain.accounts.services import (
    AccountService,
    me_view,
    phone_query,
    profile_view,
    session_view,
)
from app.domain.accounts.throttle import LoginThrottle
from app.lib.auth import PUBLIC_ROUTE, AccessClaims, session_id_of
from app.lib.dependencies import DbSessionDep, RedisDep, SettingsDep, client_ip
from app.lib.errors import NotFoundError, UnauthorizedError
from app.lib.images import THUMBNAIL_TYPE, decode_base64_payload
from app.lib.ratelimit import RateLimiter
from app.lib.storage import BlobStore, blob_response

AccountsDep = NamedDependency[AccountService]
UserRequest = Request[User, AccessClaims, Any]
AvatarSize = Literal["50", "100", "400", "original"]


def provide_account_service(
    db_session: DbSessionDep, settings: SettingsDep, redis: RedisDep
) -> AccountService:
    return AccountService(db_session, settings, redis)


def user_agent(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("user-agent", "")


async def visible_online(
    request: UserRequest, accounts: AccountService, user_ids: list[UUID]
) -> set[UUID]:
    """Who of ``user_ids`` the caller sees online: online, and not blocking the caller."""
    online: set[UUID] = await request.app.state.realtime.presence.online(user_ids)
    return online - await accounts.hidden_presence(request.user.id, online)


class AuthController(Controller):
    path = "/api/v1/auth"
    opt = PUBLIC_ROUTE
    tags = ["messenger: auth"]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @post("/register", summary="Create an account with a phone number", status_code=201)
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterRequest],
        accounts: AccountsDep,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> TokenPair:
        """Normalises the phone to E.164: international, or national in
        DEFAULT_PHONE_REGION (422 when it is not a real number); 409 when it is taken. The
        name must not be blank; the password has at least 10 characters and is not one of
        the most common leaked ones (422). Answers an access token and a refresh token.
        Rate-limited per address."""
        await RateLimiter(redis, "register", settings.registrations_per_hour, 3600).hit(
            client_ip(request)
        )
        return await accounts.register(
            data.phone, data.password, data.name, user_agent=user_agent(request)
        )

    @post("/login", summary="Sign in with phone and password", status_code=HTTP_200_OK)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginRequest],
        accounts: AccountsDep,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> TokenPair:
        """401 for a wrong phone or password (the same answer for both). Attempts are
        limited (429) per address and per phone from one address; failures on one phone
        from anywhere slow further attempts on it (a growing delay, never a lock-out), so
        password guessing does not scale and the owner can still sign in."""
        subject = phone_query(data.phone, settings.default_phone_region) or data.phone.strip()
        throttle = LoginThrottle(redis, settings)
        await throttle.before_attempt(subject, client_ip(request))
        try:
            pair = await accounts.login(data.phone, data.password, user_agent=user_agent(request))
        except UnauthorizedError:
            await throttle.failed(subject)
            raise
        await throttle.succeeded(subject)
        return pair

    @post("/refresh", summary="Exchange a refresh token for new tokens", status_code=HTTP_200_OK)
    async def refresh(self, data: JSONBody[RefreshRequest], accounts: AccountsDep) -> TokenPair:
        """Rotation: the token presented is used up and a new pair is returned. The same
        token presented again within REFRESH_REUSE_GRACE_SECONDS (another tab refreshing at
        the same moment) gets another valid pair of the same session; presented later, it
        revokes every token of that login (401)."""
        return await accounts.refresh(data.refresh_token)

    @post("/logout", summary="Revoke a refresh token", status_code=HTTP_204_NO_CONTENT)
    async def logout(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RefreshRequest],
        accounts: AccountsDep,
        db_session: DbSessionDep,
    ) -> None:
        """Ends the session of this refresh token: it and every token rotated from the same
        login are revoked, the session's access tokens are refused at once and its live
        connections are closed."""
        session_id = await accounts.logout(data.refresh_token)
        if session_id is not None:
            await db_session.commit()
            await close_session_sockets(request.app.state.realtime, [session_id])


class SessionController(Controller):
    """The signed-in devices of the caller."""

    path = "/api/v1/auth/sessions"
    tags = ["messenger: auth"]
    security = BEARER_SECURITY
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @get("/", summary="My signed-in sessions")
    async def list_sessions(self, request: UserRequest, accounts: AccountsDep) -> list[SessionOut]:
        """Each device or browser signed in: a name made from its User-Agent, when it signed
        in, when it last refreshed its tokens, and whether it is the one asking."""
        current = session_id_of(request)
        return [session_view(item, current) for item in await accounts.sessions(request.user)]

    @delete("/{session_id:uuid}", summary="Sign one session out", status_code=HTTP_204_NO_CONTENT)
    async def revoke_session(
        self,
        request: UserRequest,
        session_id: FromPath[UUID],
        accounts: AccountsDep,
        db_session: DbSessionDep,
    ) -> None:
        """Its refresh token stops working, its access tokens are refused at once and its
        live connections are closed. 404 when the session is not the caller's or is already
        over."""
        await accounts.revoke_session(request.user, session_id)
        await db_session.commit()
        await close_session_sockets(request.app.state.realtime, [session_id])

    @delete("/", summary="Sign out everywhere", status_code=HTTP_204_NO_CONTENT)
    async def revoke_all_sessions(
        self, request: UserRequest, accounts: AccountsDep, db_session: DbSessionDep
    ) -> None:
        """Every session of the caller ends, this one included, and the caller's live
        Socket.IO connections are closed."""
        await accounts.revoke_all_sessions(request.user)
        await db_session.commit()
        await close_user_sockets(request.app.state.realtime, request.user.id)


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["messenger: users"]
    security = BEARER_SECURITY
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @get("/me", summary="My profile")
    async def me(self, request: UserRequest) -> Me:
        """The signed-in user's own profile."""
        return me_view(request.user)

    @patch("/me", summary="Edit my profile")
    async def update_me(
        self, request: UserRequest, data: JSONBody[ProfileUpdate], accounts: AccountsDep
    ) -> Me:
        """Changes only the fields sent. 409 when the username is taken (case-insensitive);
        422 for a blank name. ``phone_discovery`` says who finds me by my phone number,
        ``group_adds`` who may add me to a group (everyone, contacts or nobody)."""
        return me_view(await accounts.update_profile(request.user, data))

    @put("/me/avatar", summary="Upload my avatar")
    async def put_avatar(
        self,
        request: UserRequest,
        data: JSONBody[AvatarUpload],
        accounts: AccountsDep,
        settings: SettingsDep,
    ) -> Me:
        """Takes base64 or a data URL of a JPEG, PNG or WebP (decided by decoding: 415
        otherwise), at most MAX_IMAGE_BYTES (413) and MAX_IMAGE_PIXELS (413). Stores the
        original and 400, 100 and 50 pixel squares."""
        raw = decode_base64_payload(data.image, settings.max_image_bytes)
        return me_view(await accounts.set_avatar(request.user, raw))

    @delete("/me/avatar", summary="Remove my avatar", status_code=HTTP_204_NO_CONTENT)
    async def delete_avatar(self, request: UserRequest, accounts: AccountsDep) -> None:
        """Removes my avatar and its resized copies."""
        await accounts.delete_avatar(request.user)

    @delete("/me", summary="Delete my account", status_code=HTTP_204_NO_CONTENT)
    async def delete_me(
        self,
        request: UserRequest,
        data: JSONBody[AccountDeletion],
        accounts: AccountsDep,
        db_session: DbSessionDep,
    ) -> None:
        """Needs the password (403 when wrong). Every session and token of the account is
        revoked and its live connections are closed; its avatar is removed and its phone
        number can sign up again. Its messages stay in other people's chats, from
        "Deleted account"."""
        await accounts.delete_account(request.user, data.password)
        await db_session.commit()
        await close_user_sockets(request.app.state.realtime, request.user.id)

    @get("/", summary="Find people by name, @username or phone")
    async def search(
        self,
        request: UserRequest,
        accounts: AccountsDep,
        redis: RedisDep,
        settings: SettingsDep,
        search: Annotated[str, Parameter(min_length=1, max_length=64, examples=[])] = "",
    ) -> list[UserProfile]:
        """Up to 20 other users whose name contains ``search`` (any letter case), whose
        @username starts with it, or whose phone number it is; each says whether they are
        online. A full phone number (international or national) finds only accounts that let
        the caller find them by phone; such lookups are limited to PHONE_LOOKUPS_PER_HOUR
        per user (429)."""
        if phone_query(search.strip(), settings.default_phone_region) is not None:
            await RateLimiter(redis, "phone-lookup", settings.phone_lookups_per_hour, 3600).hit(
                str(request.user.id)
            )
        users = await accounts.search(search, viewer=request.user.id)
        online = await visible_online(request, accounts, [user.id for user in users])
        return [profile_view(user, online=user.id in online) for user in users]

    @get("/me/blocked", summary="The users I blocked")
    async def blocked(self, request: UserRequest, accounts: AccountsDep) -> list[UserProfile]:
        """The accounts the caller blocked, most recently blocked first."""
        return [profile_view(user) for user in await accounts.blocked(request.user)]

    @put("/{user_id:uuid}/block", summary="Block a user", status_code=HTTP_204_NO_CONTENT)
    async def block(
        self,
        request: UserRequest,
        user_id: Annotated[UUID, Parameter(description="The user to block")],
        accounts: AccountsDep,
        db_session: DbSessionDep,
    ) -> None:
        """Neither side can then send into their direct chat (403); the blocked user cannot
        open a direct chat with the caller (404) nor add them to a group (403), does not
        find them in search, sees them offline everywhere (profiles, chats, ``presence``:
        their open pages hear them go offline now), cannot like messages in their direct
        chat (403) and exchanges no typing or read events with them. Idempotent; 404 for an
        unknown user, 422 for oneself."""
        await accounts.block(request.user, user_id)
        await db_session.commit()
        await show_presence_to(request.app.state.realtime, request.user.id, user_id, visible=False)

    @delete("/{user_id:uuid}/block", summary="Unblock a user", status_code=HTTP_204_NO_CONTENT)
    async def unblock(
        self,
        request: UserRequest,
        user_id: Annotated[UUID, Parameter(description="The user to unblock")],
        accounts: AccountsDep,
        db_session: DbSessionDep,
    ) -> None:
        """Lifts the caller's block of the user; idempotent. The user sees the caller's
        presence again (their open pages hear ``presence`` online when the caller is)."""
        await accounts.unblock(request.user, user_id)
        await db_session.commit()
        await show_presence_to(request.app.state.realtime, request.user.id, user_id, visible=True)

    @get("/{user_id:uuid}", summary="A user's public profile")
    async def get_user(
        self, request: UserRequest, user_id: FromPath[UUID], accounts: AccountsDep
    ) -> UserProfile:
        """Another user's public profile (no phone number) and whether they are online
        (never to a user they blocked)."""
        user = await accounts.get(user_id)
        online = await visible_online(request, accounts, [user.id])
        return profile_view(user, online=user.id in online)


class AvatarController(Controller):
    """Avatars are public (``<img>`` tags send no token), so they live outside
    :class:`UserController`: its documented security would otherwise apply (Litestar merges
    a controller's ``security`` into every handler's)."""

    path = "/api/v1/users"
    opt = PUBLIC_ROUTE
    tags = ["messenger: users"]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @get(
        "/{user_id:uuid}/avatar/{size:str}",
        summary="A user's avatar image",
        media_type=THUMBNAIL_TYPE,
    )
    async def avatar(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[UUID],
        size: FromPath[AvatarSize],
        accounts: AccountsDep,
        db_session: DbSessionDep,
    ) -> Response[bytes]:
        """Public, so that ``<img>`` tags can show it. Sizes: 50, 100, 400 (square WebP)
        and original (as uploaded). 404 when the user has no avatar."""
        user = await accounts.get(user_id)
        blob_id = user.avatar_blob_id(size)
        found = await BlobStore(db_session).read(blob_id) if blob_id else None
        if found is None:
            raise NotFoundError("This user has no avatar.")
        blob, content = found
        return blob_response(request, blob, content, cache_control="public, max-age=86400")
