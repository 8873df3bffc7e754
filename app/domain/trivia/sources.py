"""Upstream trivia sources behind one small interface.

jservice.io, the source seed 004 names, has been offline for years; clones of its API exist.
:class:`JServiceSource` speaks that format (``GET {TRIVIA_API_URL}/api/random?count=N``) and
:class:`OpenTriviaSource` adapts Open Trivia DB, a live public source, which is used when
TRIVIA_API_URL is unset so that the feature works out of the box.

Every failure of an upstream becomes :class:`UpstreamError` (502) or
:class:`UpstreamTimeoutError` (504), never an exception the client sees as a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Protocol

import msgspec

from app.config import Settings
from app.lib.errors import UpstreamError, UpstreamTimeoutError

# httpx is imported where a client is built or its errors caught: on the first import only.
if TYPE_CHECKING:
    import httpx

# Open Trivia DB allows one request per IP every five seconds and answers code 5 meanwhile.
OPENTDB_RATE_LIMIT_SECONDS = 5.0
# JavaScript clients read numbers as doubles: keep derived ids below 2**53.
DERIVED_ID_BITS = 52


def clean_text(value: str | None) -> str:
    """Upstream text as we store it: no NUL (PostgreSQL refuses it), no outer whitespace."""
    return (value or "").replace("\x00", "").strip()


@dataclass(frozen=True)
class UpstreamQuestion:
    upstream_id: int
    question: str
    answer: str
    created_at: datetime
    category: str | None
    value: int | None


class TriviaSource(Protocol):
    """Where random questions come from."""

    name: str
    max_batch: int

    async def fetch_random(self, http: httpx.AsyncClient, count: int) -> list[UpstreamQuestion]:
        """Up to ``count`` random questions; raises UpstreamError / UpstreamTimeoutError."""
        ...


def create_trivia_source(settings: Settings) -> TriviaSource:
    if settings.trivia_api_url:
        return JServiceSource(settings.trivia_api_url)
    return OpenTriviaSource(settings.trivia_opentdb_url)


async def _get_json(http: httpx.AsyncClient, url: str, query: str) -> bytes:
    """GET ``url?query`` (a ready query string: httpx has no params to encode and merge)."""
    import httpx

    try:
        response = await http.get(f"{url}?{query}")
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"The trivia upstream did not answer in time ({url}).") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(
            f"The trivia upstream is unreachable ({url}): {type(exc).__name__}."
        ) from exc
    if response.is_redirect:
        raise UpstreamError(
            f"The trivia upstream answered with a redirect (HTTP {response.status_code} to "
            f"{response.headers.get('location', '?')!r}); redirects are not followed: set its "
            "final address."
        )
    if response.status_code != 200:
        raise UpstreamError(f"The trivia upstream answered HTTP {response.status_code} ({url}).")
    return response.content


class _JServiceCategory(msgspec.Struct):
    title: str | None = None


# What the columns hold (BIGINT id, INTEGER value) on PostgreSQL and SQLite alike: an
# upstream number outside them is the upstream's malformed data (502), on both databases.
UpstreamId = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
UpstreamValue = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]


class _JServiceClue(msgspec.Struct):
    id: UpstreamId
    question: str | None = None
    answer: str | None = None
    created_at: datetime | None = None
    category: _JServiceCategory | None = None
    value: UpstreamValue | None = None


class JServiceSource:
    """A jService-compatible API: a JSON list of clues from ``/api/random?count=N``."""

    name = "jservice"
    max_batch = 100

    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/") + "/api/random"

    async def fetch_random(self, http: httpx.AsyncClient, count: int) -> list[UpstreamQuestion]:
        body = await _get_json(http, self.url, f"count={min(count, self.max_batch)}")
        try:
            clues = msgspec.json.decode(body, type=list[_JServiceClue])
        except msgspec.ValidationError as exc:
            raise UpstreamError(
                f"The trivia upstream sent data that does not fit what is stored: {exc} "
                "(ids are 64-bit integers, values 32-bit ones)."
            ) from exc
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"The trivia upstream sent malformed data: {exc}.") from exc
        now = datetime.now(UTC)
        questions = []
        for clue in clues:
            # jService has clues with an empty question or answer; they cannot be asked.
            text, answer = clean_text(clue.question), clean_text(clue.answer)
            if not text or not answer:
                continue
            created = clue.created_at or now
            questions.append(
                UpstreamQuestion(
                    upstream_id=clue.id,
                    question=text,
                    answer=answer,
                    created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
                    category=clean_text(clue.category.title)[:255] or None
                    if clue.category
                    else None,
                    value=clue.value,
                )
            )
        return questions


class _OpenTriviaResult(msgspec.Struct):
    question: str
    correct_answer: str
    category: str | None = None
    difficulty: str | None = None


class _OpenTriviaResponse(msgspec.Struct):
    response_code: int
    results: list[_OpenTriviaResult] = msgspec.field(default_factory=list)


def derive_question_id(question: str) -> int:
    """Open Trivia DB has no ids: derive a stable one from the normalised question text."""
    normalised = " ".join(question.split()).casefold()
    digest = hashlib.sha256(normalised.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - DERIVED_ID_BITS)


class OpenTriviaSource:
    """Open Trivia DB (https://opentdb.com/api.php?amount=N), HTML entities decoded."""

    name = "opentdb"
    max_batch = 50

    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/") + "/api.php"

    async def fetch_random(self, http: httpx.AsyncClient, count: int) -> list[UpstreamQuestion]:
        query = f"amount={min(count, self.max_batch)}"
        payload = self._decode(await _get_json(http, self.url, query))
        if payload.response_code == 5:
            # Rate limited: wait out the window once; the caller's deadline bounds the wait.
            await asyncio.sleep(OPENTDB_RATE_LIMIT_SECONDS)
            payload = self._decode(await _get_json(http, self.url, query))
        if payload.response_code != 0:
            raise UpstreamError(
                f"Open Trivia DB refused the request (response_code {payload.response_code})."
            )
        now = datetime.now(UTC)
        questions = []
        for result in payload.results:
            text = clean_text(html.unescape(result.question))
            answer = clean_text(html.unescape(result.correct_answer))
            if not text or not answer:
                continue
            questions.append(
                UpstreamQuestion(
                    upstream_id=derive_question_id(text),
                    question=text,
                    answer=answer,
                    # Open Trivia DB publishes no dates: the first time we saw it stands in.
                    created_at=now,
                    category=clean_text(html.unescape(result.category or ""))[:255] or None,
                    value=None,
                )
            )
        return questions

    @staticmethod
    def _decode(body: bytes) -> _OpenTriviaResponse:
        try:
            return msgspec.json.decode(body, type=_OpenTriviaResponse)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"Open Trivia DB sent malformed data: {exc}.") from exc
