"""Accounts: registration, sign-in, token rotation, profiles and avatars."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import phonenumbers
from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import AVATAR_SIZES, RefreshToken, User
from app.domain.accounts.schemas import Avatar, Me, ProfileUpdate, TokenPair, UserProfile
from app.lib.auth import issue_access_token
from app.lib.errors import ConflictError, InvalidInputError, NotFoundError, UnauthorizedError
from app.lib.ids import new_uuid7
from app.lib.images import check_image_async, square_thumbnails_async
from app.lib.passwords import hash_password, verify_password
from app.lib.storage import BlobStore

SEARCH_LIMIT = 20


@dataclass(frozen=True)
class MemberCard:
    """What a chat shows about each member; read as plain rows, no ORM objects."""

    id: UUID
    name: str
    username: str | None
    avatar_url: str | None


def normalise_phone(raw: str) -> str:
    """E.164 (``+79161234567``) from any international spelling; 422 for anything else."""
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInputError(
            "The phone number must be in international format, e.g. +79161234567.",
            errors=[{"field": "phone", "source": "body", "message": str(exc)}],
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInputError(
            "This phone number does not exist.",
            errors=[{"field": "phone", "source": "body", "message": "invalid number"}],
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def avatar_urls(user: User) -> Avatar | None:
    return _avatar_urls(user.id, user.avatar_original_id)


def _avatar_urls(user_id: UUID, original_id: UUID | None) -> Avatar | None:
    if original_id is None:
        return None
    # The blob id in the query string changes with every upload, so the URL can be cached.
    version = str(original_id)[-12:]
    base = f"/api/v1/users/{user_id}/avatar"
    return Avatar(
        original=f"{base}/original?v={version}",
        size_400=f"{base}/400?v={version}",
        size_100=f"{base}/100?v={version}",
        size_50=f"{base}/50?v={version}",
    )


def me_view(user: User) -> Me:
    return Me(
        id=user.id,
        phone=user.phone,
        name=user.name,
        username=user.username,
        bio=user.bio,
        avatar=avatar_urls(user),
        created_at=user.created_at,
    )


def profile_view(user: User, *, online: bool = False) -> UserProfile:
    return UserProfile(
        id=user.id,
        name=user.name,
        username=user.username,
        bio=user.bio,
        avatar=avatar_urls(user),
        online=online,
    )


@dataclass
class AccountService:
    session: AsyncSession
    settings: Settings

    # --- sign-up, sign-in, tokens -------------------------------------------------------

    async def register(self, phone: str, password: str, name: str) -> TokenPair:
        phone = normalise_phone(phone)
        if await self.session.scalar(select(User.id).where(User.phone == phone)):
            raise ConflictError("An account with this phone number already exists.")
        user = User(
            phone=phone, name=name.strip() or name, password_hash=await hash_password(password)
        )
        self.session.add(user)
        try:
            await self.session.flush()
        except IntegrityError as exc:  # a concurrent registration won the race
            raise ConflictError("An account with this phone number already exists.") from exc
        return await self._issue_tokens(user, family_id=new_uuid7())

    async def login(self, phone: str, password: str) -> TokenPair:
        try:
            phone = normalise_phone(phone)
        except InvalidInputError:
            phone = ""
        user = await self.session.scalar(select(User).where(User.phone == phone)) if phone else None
        # verify_password runs against a dummy hash when there is no user: same timing.
        if (
            not await verify_password(user.password_hash if user else None, password)
            or user is None
        ):
            raise UnauthorizedError("Wrong phone number or password.")
        return await self._issue_tokens(user, family_id=new_uuid7())

    async def refresh(self, token: str) -> TokenPair:
        now = datetime.now(UTC)
        token_hash = _hash_refresh_token(token)
        # One atomic UPDATE marks the token used: of two concurrent refreshes only one wins.
        claimed = (
            await self.session.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.token_hash == token_hash,
                    RefreshToken.used_at.is_(None),
                    RefreshToken.revoked_at.is_(None),
                    RefreshToken.expires_at > now,
                )
                .values(used_at=now)
                .returning(RefreshToken.user_id, RefreshToken.family_id)
            )
        ).first()
        if claimed is None:
            known = await self.session.scalar(
                select(RefreshToken).where(RefreshToken.token_hash == token_hash)
            )
            if known is not None and known.used_at is not None and known.revoked_at is None:
                # Reuse of a rotated token: someone else holds a copy. Cut off the family.
                await self._revoke_family(known.family_id, now)
                await self.session.commit()
                raise UnauthorizedError(
                    "This refresh token was already used; every session of this login is revoked."
                )
            raise UnauthorizedError("The refresh token is not valid.")
        user_id, family_id = claimed
        user = await self.session.get(User, user_id)
        if user is None:
            raise UnauthorizedError("The refresh token is not valid.")
        return await self._issue_tokens(user, family_id=family_id)

    async def logout(self, token: str) -> None:
        known = await self.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == _hash_refresh_token(token))
        )
        if known is not None:
            await self._revoke_family(known.family_id, datetime.now(UTC))

    async def _revoke_family(self, family_id: UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def _issue_tokens(self, user: User, *, family_id: UUID) -> TokenPair:
        now = datetime.now(UTC)
        refresh = secrets.token_urlsafe(32)
        self.session.add(
            RefreshToken(
                user_id=user.id,
                family_id=family_id,
                token_hash=_hash_refresh_token(refresh),
                created_at=now,
                expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            )
        )
        await self.session.flush()
        access = issue_access_token(
            self.settings.secret_key, user.id, self.settings.access_token_ttl_seconds
        )
        return TokenPair(
            access_token=access.token,
            refresh_token=refresh,
            expires_in=access.expires_in,
            user=me_view(user),
        )

    # --- profiles -----------------------------------------------------------------------

    async def get(self, user_id: UUID) -> User:
        user = await self.session.get(User, user_id)
        if user is None:
            raise NotFoundError("No such user.")
        return user

    async def get_many(self, user_ids: Iterable[UUID]) -> dict[UUID, User]:
        ids = list(set(user_ids))
        if not ids:
            return {}
        users = await self.session.scalars(select(User).where(User.id.in_(ids)))
        return {user.id: user for user in users}

    async def member_cards(self, user_ids: Select[Any]) -> dict[UUID, MemberCard]:
        """Name, username and avatar of the users a subquery selects (chat members)."""
        rows = await self.session.execute(
            select(User.id, User.name, User.username, User.avatar_original_id).where(
                User.id.in_(user_ids)
            )
        )
        cards = {}
        for user_id, name, username, original_id in rows:
            avatar = _avatar_urls(user_id, original_id)
            cards[user_id] = MemberCard(
                user_id, name, username, avatar.size_100 if avatar else None
            )
        return cards

    async def update_profile(self, user: User, changes: ProfileUpdate) -> User:
        if isinstance(changes.name, str):
            if not changes.name.strip():
                raise InvalidInputError("The name must not be blank.")
            user.name = changes.name.strip()
        if isinstance(changes.bio, str):
            user.bio = changes.bio
        if changes.username is None or isinstance(changes.username, str):
            username = changes.username.lower() if changes.username else None
            if username and await self.session.scalar(
                select(User.id).where(User.username == username, User.id != user.id)
            ):
                raise ConflictError("This username is taken.")
            user.username = username
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise ConflictError("This username is taken.") from exc
        return user

    async def search(self, query: str, *, exclude: UUID | None = None) -> Sequence[User]:
        query = query.strip()
        if not query:
            return []
        conditions = [
            func.lower(User.name).contains(query.lower(), autoescape=True),
            User.username.startswith(query.lower().lstrip("@"), autoescape=True),
        ]
        with contextlib.suppress(InvalidInputError):
            conditions.append(User.phone == normalise_phone(query))
        statement = select(User).where(or_(*conditions)).order_by(User.name, User.id)
        if exclude is not None:
            statement = statement.where(User.id != exclude)
        return (await self.session.scalars(statement.limit(SEARCH_LIMIT))).all()

    # --- avatars ------------------------------------------------------------------------

    async def set_avatar(self, user: User, data: bytes) -> User:
        checked = await check_image_async(data, self.settings.max_image_pixels)
        thumbnails = await square_thumbnails_async(
            data, AVATAR_SIZES, self.settings.max_image_pixels
        )
        blobs = BlobStore(self.session)
        old = [user.avatar_original_id, user.avatar_400_id, user.avatar_100_id, user.avatar_50_id]
        user.avatar_original_id = (await blobs.put(checked.data, checked.content_type)).id
        user.avatar_400_id = (await blobs.put(thumbnails[400], "image/webp")).id
        user.avatar_100_id = (await blobs.put(thumbnails[100], "image/webp")).id
        user.avatar_50_id = (await blobs.put(thumbnails[50], "image/webp")).id
        await self.session.flush()
        await blobs.delete(old)
        return user

    async def delete_avatar(self, user: User) -> None:
        old = [user.avatar_original_id, user.avatar_400_id, user.avatar_100_id, user.avatar_50_id]
        user.avatar_original_id = user.avatar_400_id = user.avatar_100_id = user.avatar_50_id = None
        await self.session.flush()
        await BlobStore(self.session).delete(old)
