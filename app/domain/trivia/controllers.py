"""Trivia API (seed 004, task 1): import questions from the upstream, list what is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Protocol

import msgspec
from advanced_alchemy.filters import LimitOffset
from advanced_alchemy.service import OffsetPagination
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, KwargDefinition, QueryParameter

from app.domain.trivia.models import TriviaQuestion
from app.domain.trivia.plugin import provide_trivia_importer
from app.domain.trivia.schemas import (
    ImportQuestionsRequest,
    NoQuestion,
    Question,
    StoredQuestion,
)
from app.domain.trivia.services import TriviaImporter, TriviaService
from app.lib.auth import PUBLIC_ROUTE
from app.lib.bodies import decode_strictly
from app.lib.dependencies import DbSessionDep

TriviaServiceDep = NamedDependency[TriviaService]
TriviaImporterDep = NamedDependency[TriviaImporter]


# `{}` in the schema must match nothing but `{}`, or a client cannot tell the two answers apart.
class _SchemaExtra(KwargDefinition):
    # Type annotations get hashed inside unions; the dict of schema_extra cannot be.
    def __hash__(self) -> int:
        return id(self)


EmptyObject = Annotated[NoQuestion, _SchemaExtra(schema_extra={"maxProperties": 0})]


def provide_trivia_service(db_session: DbSessionDep) -> TriviaService:
    return TriviaService(db_session)


class AnsweredQuestion(Protocol):
    """What an answer shows of a stored question: an ORM row or a Core row of the import."""

    upstream_id: int
    question: str
    answer: str
    upstream_created_at: datetime
    category: str | None
    value: int | None


def to_question(row: AnsweredQuestion) -> Question:
    return Question(
        id=row.upstream_id,
        question=row.question,
        answer=row.answer,
        created_at=row.upstream_created_at,
        category=row.category,
        value=row.value,
    )


def to_stored_question(row: TriviaQuestion) -> StoredQuestion:
    return StoredQuestion(
        **msgspec.structs.asdict(to_question(row)), source=row.source, saved_at=row.saved_at
    )


class TriviaController(Controller):
    path = "/api/v1/questions"
    opt = PUBLIC_ROUTE
    tags = ["trivia"]
    dependencies = {
        "trivia": Provide(provide_trivia_service, sync_to_thread=False),
        "importer": Provide(provide_trivia_importer, sync_to_thread=False),
    }

    @post(
        "/",
        status_code=200,
        summary="Fetch N new questions from the upstream; answer the previously saved one",
        description=(
            "Stores `questions_num` questions that are not stored yet (the upstream is asked "
            "again for the missing ones while it brings new ones) and answers the "
            "question that was saved most recently before this request, or `{}`. An upstream "
            "that times out answers 504; one that fails, sends malformed data or data that "
            "does not fit, redirects, or brings nothing new TRIVIA_MAX_IDLE_ROUNDS times in "
            "a row answers 502. A failed import keeps what it stored: the detail and the "
            "`X-Questions-Stored` header say how many."
        ),
        responses={
            422: ResponseSpec(None, description="questions_num not an integer or out of range"),
            502: ResponseSpec(None, description="The upstream failed or brought nothing new"),
            504: ResponseSpec(None, description="The upstream did not answer in time"),
        },
    )
    async def import_questions(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ImportQuestionsRequest],  # noqa: ARG002 - declares the body for OpenAPI
        importer: TriviaImporterDep,
    ) -> Question | EmptyObject:
        strict = decode_strictly(await request.body(), ImportQuestionsRequest)
        previous = await importer.import_questions(strict.questions_num)
        return to_question(previous) if previous else NoQuestion()

    @get("/", summary="Stored questions, newest first")
    async def list_questions(
        self,
        trivia: TriviaServiceDep,
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="Page size")] = 20,
        offset: Annotated[int, QueryParameter(ge=0, le=2**31 - 1, description="Rows to skip")] = 0,
    ) -> OffsetPagination[StoredQuestion]:
        """The questions stored so far, newest first, a page at a time."""
        rows, total = await trivia.list_questions(LimitOffset(limit=limit, offset=offset))
        return OffsetPagination(
            items=[to_stored_question(row) for row in rows], total=total, limit=limit, offset=offset
        )
