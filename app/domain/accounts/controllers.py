"""The accounts API: /api/v1/auth (sign-up, sign-in, tokens) and /api/v1/users."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from app.domain.accounts.authentication import BEARER_SECURITY, bearer_auth
from app.domain.accounts.models import User
from app.domain.accounts.schemas import (
    AvatarUpload,
    LoginRequest,
    Me,
    ProfileUpdate,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserProfile,
)
from app.domain.accounts.services import AccountService, me_view, normalise_phone, profile_view
from app.lib.dependencies import DbSessionDep, RedisDep, SettingsDep, client_ip
from app.lib.errors import InvalidInputError, NotFoundError
from app.lib.images import decode_base64_payload
from app.lib.ratelimit import RateLimiter
from app.lib.storage import BlobStore, blob_response

AccountsDep = NamedDependency[AccountService]
UserRequest = Request[User, str, Any]
AvatarSize = Literal["50", "100", "400", "original"]


def provide_account_service(db_session: DbSessionDep, settings: SettingsDep) -> AccountService:
    return AccountService(db_session, settings)


class AuthController(Controller):
    path = "/api/v1/auth"
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
        """Normalises the phone to E.164 (422 when it is not a real number), 409 when it is
        taken. Answers an access token and a refresh token. Rate-limited per address."""
        await RateLimiter(redis, "register", settings.registrations_per_hour, 3600).hit(
            client_ip(request)
        )
        return await accounts.register(data.phone, data.password, data.name)

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
        limited per phone number and per address, so password guessing does not scale."""
        limit = settings.login_attempts_per_minute
        await RateLimiter(redis, "login-ip", limit * 5, 60).hit(client_ip(request))
        try:
            subject = normalise_phone(data.phone)
        except InvalidInputError:
            subject = data.phone
        await RateLimiter(redis, "login-phone", limit, 60).hit(subject)
        return await accounts.login(data.phone, data.password)

    @post("/refresh", summary="Exchange a refresh token for new tokens", status_code=HTTP_200_OK)
    async def refresh(self, data: JSONBody[RefreshRequest], accounts: AccountsDep) -> TokenPair:
        """Rotation: the token presented is used up and a new pair is returned. Presenting
        a used token again revokes every token of that login (401)."""
        return await accounts.refresh(data.refresh_token)

    @post("/logout", summary="Revoke a refresh token", status_code=HTTP_204_NO_CONTENT)
    async def logout(self, data: JSONBody[RefreshRequest], accounts: AccountsDep) -> None:
        """Revokes the refresh token and every token rotated from the same login. Access
        tokens expire on their own (they are short-lived)."""
        await accounts.logout(data.refresh_token)


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["messenger: users"]
    middleware = [bearer_auth]
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
        """Changes only the fields sent. 409 when the username is taken (case-insensitive)."""
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

    @get("/", summary="Find people by name, @username or phone")
    async def search(
        self,
        request: UserRequest,
        accounts: AccountsDep,
        search: Annotated[str, Parameter(min_length=1, max_length=64, examples=[])] = "",
    ) -> list[UserProfile]:
        """Up to 20 other users whose name contains ``search`` (any letter case), whose
        @username starts with it, or whose phone number it is; each says whether they are online."""
        users = await accounts.search(search, exclude=request.user.id)
        online = await request.app.state.realtime.presence.online(user.id for user in users)
        return [profile_view(user, online=user.id in online) for user in users]

    @get("/{user_id:uuid}", summary="A user's public profile")
    async def get_user(
        self, request: UserRequest, user_id: FromPath[UUID], accounts: AccountsDep
    ) -> UserProfile:
        """Another user's public profile (no phone number) and whether they are online."""
        user = await accounts.get(user_id)
        online = await request.app.state.realtime.presence.online([user.id])
        return profile_view(user, online=user.id in online)


class AvatarController(Controller):
    """Avatars are public (``<img>`` tags send no token), so they live outside
    :class:`UserController`: its bearer middleware and documented security would otherwise
    apply (Litestar merges a controller's ``security`` into every handler's)."""

    path = "/api/v1/users"
    tags = ["messenger: users"]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @get(
        "/{user_id:uuid}/avatar/{size:str}",
        summary="A user's avatar image",
        media_type="image/webp",
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
