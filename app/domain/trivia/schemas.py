"""Request and response bodies of the trivia API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

# The documented ceiling; TRIVIA_MAX_QUESTIONS may lower it, not raise it.
MAX_QUESTIONS_PER_REQUEST = 100


class ImportQuestionsRequest(msgspec.Struct):
    questions_num: Annotated[
        int,
        Meta(
            ge=1,
            le=MAX_QUESTIONS_PER_REQUEST,
            description="How many new questions to fetch (at most TRIVIA_MAX_QUESTIONS, 100).",
        ),
    ]


class Question(msgspec.Struct):
    """A stored question: ``id`` and ``created_at`` are the upstream's."""

    id: int
    question: str
    answer: str
    created_at: datetime
    category: str | None
    value: int | None


class NoQuestion(msgspec.Struct):
    """Encodes as ``{}``: nothing had been saved before this request."""


class StoredQuestion(Question):
    source: str
    saved_at: datetime
