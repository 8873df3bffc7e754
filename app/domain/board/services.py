"""The board's rules: one owner account in the database, expiring messages in Redis."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.board.models import OWNER_SLOT, BoardOwner
from app.lib.errors import AppError, ConflictError, InvalidInputError, NotFoundError
from app.lib.ids import new_uuid7
from app.lib.passwords import hash_password, verify_password
from app.lib.redis import as_text

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
MESSAGE_MAX_CHARS = 1000
# Redis reads an offset as a signed 64-bit integer; no sorted set comes near this size, so a
# page number far past the end reads an empty page instead of a Redis error.
MAX_INDEX_OFFSET = 2**62


class RegistrationClosedError(ConflictError):
    title = "Registration closed"


class BoardFullError(ConflictError):
    title = "Board full"


class InvalidPageError(AppError):
    status_code = 400
    title = "Bad page number"


def page_count(total: int, page_size: int) -> int:
    """Pages that hold ``total`` messages; at least 1, so an empty board is page 1 of 1."""
    return max(1, -(-total // page_size))


def parse_page_number(raw: str | None) -> int:
    """The ``page`` query parameter: absent means 1; otherwise a whole number from 1, in
    digits only (no sign, no spaces), at most 18 of them so it stays a 64-bit integer."""
    if raw is None:
        return 1
    if not re.fullmatch(r"[0-9]{1,18}", raw) or int(raw) < 1:
        raise InvalidPageError(
            f"The page number must be a whole number from 1, got {raw[:40]!r}.",
            errors=[{"field": "page", "message": "a whole number from 1, up to 18 digits"}],
        )
    return int(raw)


class BoardOwnerService:
    """Registers the single owner and checks logins against the argon2 hash."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def owner_exists(self) -> bool:
        exists = await self.session.scalar(select(BoardOwner.slot).limit(1)) is not None
        # End the read transaction: the connection goes back to the pool instead of being
        # held through a password hash (50 racing registrations would exhaust the pool).
        await self.session.commit()
        return exists

    async def register(self, username: str, password: str, password_confirm: str) -> BoardOwner:
        validate_credentials(username, password, password_confirm)
        owner = BoardOwner(
            slot=OWNER_SLOT, username=username, password_hash=await hash_password(password)
        )
        self.session.add(owner)
        try:
            # The primary key allows one slot only: a racing second insert fails here.
            await self.session.commit()
        except IntegrityError as exc:
            await self.session.rollback()
            raise RegistrationClosedError("The board already has its owner.") from exc
        return owner

    async def authenticate(self, username: str, password: str) -> BoardOwner | None:
        owner = await self.session.scalar(select(BoardOwner).where(BoardOwner.username == username))
        valid = await verify_password(owner.password_hash if owner else None, password)
        return owner if owner and valid else None


def validate_credentials(username: str, password: str, password_confirm: str) -> None:
    errors = []
    if not USERNAME_PATTERN.match(username):
        errors.append(
            {"field": "username", "message": "3 to 64 letters, digits, dots, dashes or underscores"}
        )
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        errors.append(
            {"field": "password", "message": f"{PASSWORD_MIN} to {PASSWORD_MAX} characters"}
        )
    elif password != password_confirm:
        errors.append({"field": "password_confirm", "message": "the passwords differ"})
    if errors:
        raise InvalidInputError("; ".join(e["message"] for e in errors), errors=errors)


@dataclass(frozen=True)
class BoardMessage:
    id: str
    text: str
    created_at: float
    expires_at: float

    def seconds_left(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


@dataclass(frozen=True)
class BoardMessagePage:
    """One page of live messages and what the page navigation needs to know."""

    messages: list[BoardMessage]
    page: int
    page_size: int
    total: int

    @property
    def page_count(self) -> int:
        return page_count(self.total, self.page_size)

    @property
    def past_the_end(self) -> bool:
        return self.page > self.page_count

    @property
    def previous_page(self) -> int | None:
        """The page before this one; from past the end, the last page."""
        return min(self.page - 1, self.page_count) if self.page > 1 else None

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.page < self.page_count else None

    def nav_pages(self, around: int = 2) -> list[int | None]:
        """Page numbers to link: the first, the last and ``around`` either side of the
        current one; None marks a gap (10,000 messages of 50 are 200 pages)."""
        count = self.page_count
        current = min(self.page, count)
        shown = {1, count, *range(max(1, current - around), min(count, current + around) + 1)}
        numbers: list[int | None] = []
        for number in sorted(shown):
            previous = numbers[-1] if numbers else number - 1
            assert previous is not None  # a gap is always followed by a number
            if number - previous == 2:  # one page missing: link it rather than hide it
                numbers.append(previous + 1)
            elif number - previous > 2:
                numbers.append(None)
            numbers.append(number)
        return numbers


class BoardMessageStore:
    """Messages live in Redis under their own key with a TTL; a sorted set scored by expiry
    time indexes them, so listing never scans the keyspace and expired ids are trimmed."""

    KEY_PREFIX = "board:message:"
    INDEX_KEY = "board:messages"

    def __init__(self, redis: Redis, ttl_seconds: int, max_live: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.max_live = max_live

    async def add(self, text: str) -> BoardMessage:
        text = validate_message_text(text)
        now = time.time()
        await self.redis.zremrangebyscore(self.INDEX_KEY, "-inf", now)
        if await self.redis.zcard(self.INDEX_KEY) >= self.max_live:
            raise BoardFullError(
                f"The board holds at most {self.max_live} live messages; wait for some to expire."
            )
        message = BoardMessage(
            id=new_uuid7().hex, text=text, created_at=now, expires_at=now + self.ttl_seconds
        )
        payload = json.dumps({"text": message.text, "created_at": message.created_at})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.KEY_PREFIX + message.id, payload, ex=self.ttl_seconds)
            pipe.zadd(self.INDEX_KEY, {message.id: message.expires_at})
            # The index outlives no message: it expires with the newest one.
            pipe.expire(self.INDEX_KEY, self.ttl_seconds + 1)
            await pipe.execute()
        return message

    async def count_live(self) -> int:
        """How many messages are live, after trimming the expired ids."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self.INDEX_KEY, "-inf", time.time())
            pipe.zcard(self.INDEX_KEY)
            _, total = await pipe.execute()
        return int(total)

    async def list_page(self, page: int, page_size: int) -> BoardMessagePage:
        """One page of the live messages, newest first (all live the same TTL, so the
        latest expiry is the newest message). Only that page's ids and texts are read:
        the index is trimmed of expired ids, counted, and read with an offset and limit
        in one transaction, so the count and the page agree."""
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        now = time.time()
        offset = min((page - 1) * page_size, MAX_INDEX_OFFSET)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self.INDEX_KEY, "-inf", now)
            pipe.zcard(self.INDEX_KEY)
            pipe.zrevrangebyscore(
                self.INDEX_KEY, "+inf", now, start=offset, num=page_size, withscores=True
            )
            _, total, entries = await pipe.execute()
        messages, vanished = await self._load(entries)
        if vanished:
            # Deleted or expired between the trim and the read: gone from the index too.
            await self.redis.zrem(self.INDEX_KEY, *vanished)
        return BoardMessagePage(
            messages=messages,
            page=page,
            page_size=page_size,
            total=max(0, int(total) - len(vanished)),
        )

    async def _load(
        self, entries: list[tuple[bytes | str, float]]
    ) -> tuple[list[BoardMessage], list[str]]:
        if not entries:
            return [], []
        ids = [as_text(member) for member, _ in entries]
        payloads = await self.redis.mget([self.KEY_PREFIX + id_ for id_ in ids])
        messages, vanished = [], []
        for id_, (_, expires_at), payload in zip(ids, entries, payloads, strict=True):
            if payload is None:
                vanished.append(id_)
                continue
            data = json.loads(payload)
            messages.append(
                BoardMessage(
                    id=id_, text=data["text"], created_at=data["created_at"], expires_at=expires_at
                )
            )
        return messages, vanished

    async def delete(self, message_id: str) -> None:
        if not re.fullmatch(r"[0-9a-f]{32}", message_id):
            raise NotFoundError("No such message.")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.KEY_PREFIX + message_id)
            pipe.zrem(self.INDEX_KEY, message_id)
            deleted, _ = await pipe.execute()
        if not deleted:
            raise NotFoundError("No such message: it was deleted or has expired.")


def validate_message_text(text: str) -> str:
    # Browsers send a line break as CR LF but count it as one character (maxlength), and so
    # does the stored text: LF only.
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise InvalidInputError(
            "The message is empty.", errors=[{"field": "text", "message": "must not be empty"}]
        )
    if len(text) > MESSAGE_MAX_CHARS:
        raise InvalidInputError(
            f"The message is {len(text)} characters long; the limit is {MESSAGE_MAX_CHARS}.",
            errors=[{"field": "text", "message": f"at most {MESSAGE_MAX_CHARS} characters"}],
        )
    return text
