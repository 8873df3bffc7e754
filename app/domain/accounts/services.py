"""Accounts: registration, sign-in, token rotation, profiles and avatars."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import phonenumbers
from redis.asyncio import Redis
from sqlalchemy import Select, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import (
    AVATAR_SIZES,
    DELETED_ACCOUNT_NAME,
    AuthSession,
    RefreshToken,
    User,
    UserBlock,
)
from app.domain.accounts.schemas import (
    Avatar,
    Me,
    ProfileUpdate,
    SessionOut,
    TokenPair,
    UserProfile,
)
from app.domain.messenger.models import ChatMember
from app.domain.telegram.models import TelegramBinding
from app.lib.auth import SessionRevocations, issue_access_token
from app.lib.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)
from app.lib.images import THUMBNAIL_TYPE, check_image_async, square_thumbnails_async
from app.lib.passwords import hash_password, verify_password
from app.lib.storage import BlobStore
from app.lib.tokens import hash_token

SEARCH_LIMIT = 20
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class MemberCard:
    """What a chat shows about each member; read as plain rows, no ORM objects."""

    id: UUID
    name: str
    username: str | None
    avatar_url: str | None


def normalise_phone(raw: str, region: str | None = "RU") -> str:
    """E.164 (``+79161234567``) from an international spelling, or a national one of
    ``region`` (``89161234567``, ``8 916 123 45 67`` in Russia); 422 for anything else. The
    library's own message is never shown: it names internals, not what to fix."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInputError(
            "This is not a phone number; write it like +79161234567.",
            errors=[{"field": "phone", "source": "body", "message": "not a phone number"}],
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInputError(
            "This phone number does not exist.",
            errors=[{"field": "phone", "source": "body", "message": "invalid number"}],
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_query(query: str, region: str | None) -> str | None:
    """The E.164 number a search query spells, if it spells one."""
    try:
        return normalise_phone(query, region)
    except InvalidInputError:
        return None


@functools.cache
def _common_passwords() -> dict[str, int]:
    """zxcvbn's ranked lists, loaded at the first password checked rather than at start-up
    (its dictionaries are tens of megabytes of Python objects)."""
    from zxcvbn.matching import RANKED_DICTIONARIES

    passwords: dict[str, int] = RANKED_DICTIONARIES["passwords"]
    return passwords


def check_password_strength(password: str) -> None:
    """422 unless the password is long enough and not one that leaked passwords show
    people choose (the 30,000 most common ones in the Xato breach corpus that zxcvbn ships,
    compared case-insensitively, spaces ignored)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
            errors=[{"field": "password", "source": "body", "message": "too short"}],
        )
    folded = password.lower()
    common = _common_passwords()
    if folded in common or "".join(folded.split()) in common:
        raise InvalidInputError(
            "This password is one of the most common leaked passwords; choose another.",
            errors=[{"field": "password", "source": "body", "message": "too common"}],
        )


def clean_name(name: str) -> str:
    """The name without surrounding spaces; 422 when nothing is left."""
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInputError(
            "The name must not be blank.",
            errors=[{"field": "name", "source": "body", "message": "blank"}],
        )
    return cleaned


def device_label(user_agent: str) -> str:
    """A short human description of a User-Agent: "Firefox on Windows"."""
    if not user_agent:
        return "Unknown device"
    browser = next((label for key, label in _BROWSERS if key in user_agent), None)
    system = next((label for key, label in _SYSTEMS if key in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or user_agent[:60]


# Order matters: Edge and Opera say "Chrome", Chrome says "Safari".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("YaBrowser/", "Yandex Browser"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("python-httpx", "httpx"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def contacts_of(user_id: UUID) -> Select[UUID]:
    """The ids of the user's contacts: everyone who shares a chat with them (the user too).
    The one meaning of "contacts" for the privacy settings (phone discovery, group adds)."""
    mine = select(ChatMember.chat_id).where(ChatMember.user_id == user_id)
    return select(ChatMember.user_id).where(ChatMember.chat_id.in_(mine))


def blockers_of(user_id: UUID) -> Select[UUID]:
    """The ids of the users who blocked ``user_id``."""
    return select(UserBlock.blocker_id).where(UserBlock.blocked_id == user_id)


def avatar_urls(user: User) -> Avatar | None:
    return _avatar_urls(user.id, user.avatar_original_id)


def member_card(
    user_id: UUID, name: str, username: str | None, avatar_original_id: UUID | None
) -> MemberCard:
    """A member's card from the user's columns (for queries that join ``user_account``)."""
    avatar = _avatar_urls(user_id, avatar_original_id)
    return MemberCard(user_id, name, username, avatar.size_100 if avatar else None)


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
        phone=user.phone or "",
        name=user.name,
        username=user.username,
        bio=user.bio,
        avatar=avatar_urls(user),
        created_at=user.created_at,
        phone_discovery=user.phone_discovery,  # type: ignore[arg-type]
        group_adds=user.group_adds,  # type: ignore[arg-type]
    )


def profile_view(user: User, *, online: bool = False) -> UserProfile:
    return UserProfile(
        id=user.id,
        name=user.name,
        username=user.username,
        bio=user.bio,
        avatar=avatar_urls(user),
        online=online and not user.is_deleted,
        deleted=user.is_deleted,
    )


def session_view(session: AuthSession, current: UUID | None) -> SessionOut:
    return SessionOut(
        id=session.id,
        device=device_label(session.user_agent),
        user_agent=session.user_agent,
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        current=session.id == current,
    )


@dataclass
class AccountService:
    session: AsyncSession
    settings: Settings
    # Needed by what revokes sessions (logout, session list, deletion); None elsewhere.
    redis: Redis | None = None

    @property
    def region(self) -> str:
        return self.settings.default_phone_region

    # --- sign-up, sign-in, tokens -------------------------------------------------------

    async def register(
        self, phone: str, password: str, name: str, *, user_agent: str = ""
    ) -> TokenPair:
        phone = normalise_phone(phone, self.region)
        name = clean_name(name)
        check_password_strength(password)
        if await self.session.scalar(select(User.id).where(User.phone == phone)):
            raise ConflictError("An account with this phone number already exists.")
        user = User(phone=phone, name=name, password_hash=await hash_password(password))
        self.session.add(user)
        try:
            await self.session.flush()
        except IntegrityError as exc:  # a concurrent registration won the race
            raise ConflictError("An account with this phone number already exists.") from exc
        return await self._issue_tokens(user, await self._start_session(user, user_agent))

    async def login(self, phone: str, password: str, *, user_agent: str = "") -> TokenPair:
        phone = phone_query(phone, self.region) or ""
        user = await self.session.scalar(select(User).where(User.phone == phone)) if phone else None
        # verify_password runs against a dummy hash when there is no user: same timing.
        if (
            not await verify_password(user.password_hash if user else None, password)
            or user is None
        ):
            raise UnauthorizedError("Wrong phone number or password.")
        return await self._issue_tokens(user, await self._start_session(user, user_agent))

    async def refresh(self, token: str) -> TokenPair:
        now = datetime.now(UTC)
        token_hash = hash_token(token)
        # One atomic UPDATE marks the token used: of two concurrent refreshes only one wins
        # (the other waits for the winner's row lock, then finds the token used).
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
        if claimed is not None:
            user_id, family_id = claimed
        else:
            known = await self.session.scalar(
                select(RefreshToken).where(RefreshToken.token_hash == token_hash)
            )
            if known is None or known.used_at is None or known.revoked_at is not None:
                raise UnauthorizedError("The refresh token is not valid.")
            grace = timedelta(seconds=self.settings.refresh_reuse_grace_seconds)
            if now - known.used_at > grace or known.expires_at <= now:
                # Reuse of a rotated token: someone else holds a copy. Cut off the family.
                await self._revoke_sessions([known.family_id], now)
                await self.session.commit()
                raise UnauthorizedError(
                    "This refresh token was already used; every session of this login is revoked."
                )
            # Another tab of the same browser rotated it a moment ago: answer a pair of the
            # same session too, so neither tab is logged out.
            user_id, family_id = known.user_id, known.family_id
        user = await self.session.get(User, user_id)
        auth_session = await self.session.get(AuthSession, family_id)
        if user is None or user.is_deleted or auth_session is None or auth_session.revoked_at:
            raise UnauthorizedError("The refresh token is not valid.")
        return await self._issue_tokens(user, auth_session)

    async def logout(self, token: str) -> UUID | None:
        """Ends the session of a refresh token; its id (None for an unknown token)."""
        known = await self.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(token))
        )
        if known is None:
            return None
        await self._revoke_sessions([known.family_id], datetime.now(UTC))
        return known.family_id

    async def sessions(self, user: User) -> Sequence[AuthSession]:
        """The user's live sign-in sessions, most recently seen first."""
        now = datetime.now(UTC)
        live_family = select(RefreshToken.family_id).where(
            RefreshToken.user_id == user.id,
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        return (
            await self.session.scalars(
                select(AuthSession)
                .where(
                    AuthSession.user_id == user.id,
                    AuthSession.revoked_at.is_(None),
                    AuthSession.id.in_(live_family),
                )
                .order_by(AuthSession.last_seen_at.desc(), AuthSession.id.desc())
            )
        ).all()

    async def revoke_session(self, user: User, session_id: UUID) -> None:
        """Signs one session out (its refresh and access tokens); 404 when it is not the
        user's or is already over."""
        found = await self.session.scalar(
            select(AuthSession.id).where(
                AuthSession.id == session_id,
                AuthSession.user_id == user.id,
                AuthSession.revoked_at.is_(None),
            )
        )
        if found is None:
            raise NotFoundError("No such session.")
        await self._revoke_sessions([session_id], datetime.now(UTC))

    async def revoke_all_sessions(self, user: User) -> list[UUID]:
        """Signs the user out everywhere; the ids of the sessions that ended."""
        ids = list(
            await self.session.scalars(
                select(AuthSession.id).where(
                    AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None)
                )
            )
        )
        # Families made before sessions existed have no session row: revoke them too.
        ids += [
            family
            for family in await self.session.scalars(
                select(RefreshToken.family_id)
                .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
                .distinct()
            )
            if family not in ids
        ]
        await self._revoke_sessions(ids, datetime.now(UTC))
        return ids

    async def _revoke_sessions(self, session_ids: list[UUID], now: datetime) -> None:
        if not session_ids:
            return
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id.in_(session_ids), RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await self.session.execute(
            update(AuthSession)
            .where(AuthSession.id.in_(session_ids), AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if self.redis is not None:
            # Their access tokens stop working at once, on every replica.
            await SessionRevocations(self.redis, self.settings.access_token_ttl_seconds).revoke(
                session_ids
            )

    async def _start_session(self, user: User, user_agent: str) -> AuthSession:
        now = datetime.now(UTC)
        auth_session = AuthSession(
            user_id=user.id,
            user_agent=user_agent[:300],
            created_at=now,
            last_seen_at=now,
        )
        self.session.add(auth_session)
        await self.session.flush()
        return auth_session

    async def _issue_tokens(self, user: User, auth_session: AuthSession) -> TokenPair:
        now = datetime.now(UTC)
        refresh = secrets.token_urlsafe(32)
        auth_session.last_seen_at = now
        self.session.add(
            RefreshToken(
                user_id=user.id,
                family_id=auth_session.id,
                token_hash=hash_token(refresh),
                created_at=now,
                expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            )
        )
        await self.session.flush()
        access = issue_access_token(
            self.settings.secret_key,
            user.id,
            self.settings.access_token_ttl_seconds,
            session_id=auth_session.id,
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
        """The accounts among ``user_ids`` that exist and are not deleted (nobody can start
        a chat with, or add to a group, a deleted account)."""
        ids = list(set(user_ids))
        if not ids:
            return {}
        users = await self.session.scalars(
            select(User).where(User.id.in_(ids), User.deleted_at.is_(None))
        )
        return {user.id: user for user in users}

    async def member_cards(self, user_ids: Select[Any]) -> dict[UUID, MemberCard]:
        """Name, username and avatar of the users a subquery selects (chat members)."""
        rows = await self.session.execute(
            select(User.id, User.name, User.username, User.avatar_original_id).where(
                User.id.in_(user_ids)
            )
        )
        return {
            user_id: member_card(user_id, name, username, original_id)
            for user_id, name, username, original_id in rows
        }

    async def update_profile(self, user: User, changes: ProfileUpdate) -> User:
        if isinstance(changes.name, str):
            user.name = clean_name(changes.name)
        if isinstance(changes.bio, str):
            user.bio = changes.bio
        if isinstance(changes.phone_discovery, str):
            user.phone_discovery = changes.phone_discovery
        if isinstance(changes.group_adds, str):
            user.group_adds = changes.group_adds
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

    async def search(self, query: str, *, viewer: UUID) -> Sequence[User]:
        """People whose name contains the query, whose username starts with it, or whose
        phone number it spells, if they let the viewer find them by phone: everyone,
        their contacts (people who share a chat with them) or nobody. Deleted accounts, the
        viewer and those who blocked the viewer are never found."""
        query = query.strip()
        if not query:
            return []
        conditions = [
            func.lower(User.name).contains(query.lower(), autoescape=True),
            User.username.startswith(query.lower().lstrip("@"), autoescape=True),
        ]
        phone = phone_query(query, self.region)
        if phone is not None:
            contacts = contacts_of(viewer)
            conditions.append(
                and_(
                    User.phone == phone,
                    or_(
                        User.phone_discovery == "everyone",
                        and_(User.phone_discovery == "contacts", User.id.in_(contacts)),
                    ),
                )
            )
        statement = (
            select(User)
            .where(
                or_(*conditions),
                User.id != viewer,
                User.deleted_at.is_(None),
                User.id.not_in(blockers_of(viewer)),
            )
            .order_by(User.name, User.id)
        )
        return (await self.session.scalars(statement.limit(SEARCH_LIMIT))).all()

    # --- privacy: group adds and blocks --------------------------------------------------

    async def refusing_group_adds(self, adder_id: UUID, user_ids: Iterable[UUID]) -> list[UUID]:
        """Those of ``user_ids`` who do not let ``adder_id`` add them to a group: their
        ``group_adds`` is nobody, or contacts and the adder shares no chat with them, or
        they blocked the adder. In the order given."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return []
        allowed = set(
            await self.session.scalars(
                select(User.id).where(
                    User.id.in_(ids),
                    User.id.not_in(blockers_of(adder_id)),
                    or_(
                        User.group_adds == "everyone",
                        and_(User.group_adds == "contacts", User.id.in_(contacts_of(adder_id))),
                    ),
                )
            )
        )
        return [i for i in ids if i not in allowed]

    async def blocking(self, user_id: UUID, candidates: Iterable[UUID]) -> list[UUID]:
        """Those of ``candidates`` who blocked ``user_id``, in the order given."""
        ids = list(dict.fromkeys(candidates))
        if not ids:
            return []
        blockers = set(
            await self.session.scalars(
                select(UserBlock.blocker_id).where(
                    UserBlock.blocked_id == user_id, UserBlock.blocker_id.in_(ids)
                )
            )
        )
        return [i for i in ids if i in blockers]

    async def is_blocked_between(self, a: UUID, b: UUID) -> bool:
        """Whether either of the two blocked the other."""
        found = await self.session.scalar(
            select(UserBlock.id).where(
                or_(
                    and_(UserBlock.blocker_id == a, UserBlock.blocked_id == b),
                    and_(UserBlock.blocker_id == b, UserBlock.blocked_id == a),
                )
            )
        )
        return found is not None

    async def blocked_either_way(self, user_id: UUID, others: Iterable[UUID]) -> set[UUID]:
        """Those of ``others`` with a block between them and ``user_id``, whoever blocked
        whom: typing is not relayed between them (in any chat)."""
        ids = list(set(others))
        if not ids:
            return set()
        rows = await self.session.execute(
            select(UserBlock.blocker_id, UserBlock.blocked_id).where(
                or_(
                    and_(UserBlock.blocker_id == user_id, UserBlock.blocked_id.in_(ids)),
                    and_(UserBlock.blocked_id == user_id, UserBlock.blocker_id.in_(ids)),
                )
            )
        )
        return {blocked if blocker == user_id else blocker for blocker, blocked in rows}

    async def hidden_presence(self, viewer_id: UUID, user_ids: Iterable[UUID]) -> set[UUID]:
        """Those of ``user_ids`` who blocked ``viewer_id``: the viewer sees them offline."""
        ids = list(set(user_ids))
        if not ids:
            return set()
        return set(
            await self.session.scalars(blockers_of(viewer_id).where(UserBlock.blocker_id.in_(ids)))
        )

    async def has_blocked(self, blocker_id: UUID, blocked_id: UUID) -> bool:
        found = await self.session.scalar(
            select(UserBlock.id).where(
                UserBlock.blocker_id == blocker_id, UserBlock.blocked_id == blocked_id
            )
        )
        return found is not None

    async def block(self, user: User, target_id: UUID) -> None:
        """Blocks ``target_id`` (idempotent); 422 for oneself, 404 for an unknown account."""
        if target_id == user.id:
            raise InvalidInputError("You cannot block yourself.")
        if not await self.get_many([target_id]):
            raise NotFoundError("No such user.")
        if await self.has_blocked(user.id, target_id):
            return
        try:
            async with self.session.begin_nested():
                self.session.add(
                    UserBlock(
                        blocker_id=user.id, blocked_id=target_id, created_at=datetime.now(UTC)
                    )
                )
                await self.session.flush()
        except IntegrityError:
            pass  # a concurrent request blocked them already

    async def unblock(self, user: User, target_id: UUID) -> None:
        """Lifts a block (idempotent)."""
        await self.session.execute(
            delete(UserBlock).where(
                UserBlock.blocker_id == user.id, UserBlock.blocked_id == target_id
            )
        )

    async def blocked(self, user: User) -> Sequence[User]:
        """The accounts the user blocked, most recently blocked first."""
        return (
            await self.session.scalars(
                select(User)
                .join(UserBlock, UserBlock.blocked_id == User.id)
                .where(UserBlock.blocker_id == user.id)
                .order_by(UserBlock.created_at.desc(), UserBlock.id.desc())
            )
        ).all()

    # --- avatars ------------------------------------------------------------------------

    async def set_avatar(self, user: User, data: bytes) -> User:
        checked = await check_image_async(data, self.settings.max_image_pixels)
        thumbnails = await square_thumbnails_async(
            data, AVATAR_SIZES, self.settings.max_image_pixels
        )
        blobs = BlobStore(self.session)
        old = [user.avatar_original_id, user.avatar_400_id, user.avatar_100_id, user.avatar_50_id]
        user.avatar_original_id = (await blobs.put(checked.data, checked.content_type)).id
        user.avatar_400_id = (await blobs.put(thumbnails[400], THUMBNAIL_TYPE)).id
        user.avatar_100_id = (await blobs.put(thumbnails[100], THUMBNAIL_TYPE)).id
        user.avatar_50_id = (await blobs.put(thumbnails[50], THUMBNAIL_TYPE)).id
        await self.session.flush()
        await blobs.delete(old)
        return user

    async def delete_avatar(self, user: User) -> None:
        old = [user.avatar_original_id, user.avatar_400_id, user.avatar_100_id, user.avatar_50_id]
        user.avatar_original_id = user.avatar_400_id = user.avatar_100_id = user.avatar_50_id = None
        await self.session.flush()
        await BlobStore(self.session).delete(old)

    # --- deletion -----------------------------------------------------------------------

    async def delete_account(self, user: User, password: str) -> list[UUID]:
        """Deletes the account after checking its password (403 when wrong): every session
        and token revoked, avatar blobs removed, Telegram unbound, phone freed for a new
        sign-up; the row stays as "Deleted account" so others' chat histories keep their
        messages. Answers the ids of the sessions that ended."""
        if not await verify_password(user.password_hash, password):
            raise ForbiddenError(
                "The password is wrong; the account was not deleted.",
                errors=[{"field": "password", "source": "body", "message": "wrong password"}],
            )
        sessions = await self.revoke_all_sessions(user)
        await self.delete_avatar(user)
        await self.session.execute(
            delete(TelegramBinding).where(TelegramBinding.user_id == user.id)
        )
        user.deleted_at = datetime.now(UTC)
        user.phone = None
        user.name = DELETED_ACCOUNT_NAME
        user.bio = ""
        user.username = None
        user.phone_discovery = "nobody"
        user.password_hash = "!"  # noqa: S105 - matches no password: not an argon2 hash
        await self.session.flush()
        return sessions
