"""Schemathesis against /docs/openapi.json of the live server (real PostgreSQL and Redis).

Every operation gets generated requests, valid and invalid; the goal is zero 5xx and zero
responses that break their own documented schema. FUZZ_EXAMPLES bounds the run (CI keeps it
small; `make fuzz` runs a long one).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app.config import Settings
from tests.conftest import empty_state
from tests.support import LiveServer

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))  # per operation
STATEFUL_SCENARIOS = int(os.environ.get("FUZZ_SCENARIOS", "20"))  # chains of up to 8 calls
# "Schema-valid data must be accepted" cannot hold where a business rule refuses data the
# schema cannot describe (a phone number that does not exist, an award dated in the future,
# an id that names nothing): those are the 4xx the API promises. Every other check runs.
BUSINESS_RULE_FALSE_ALARM = schemathesis.checks.positive_data_acceptance


def create_audio_credentials(base_url: str) -> dict[str, str]:
    """An audio user's id and token: the upload form carries them in its body."""
    created = httpx.post(f"{base_url}/api/v1/audio/users", json={"name": "Fuzzer"})
    assert created.status_code == 201, created.text
    return {"user_id": created.json()["id"], "token": created.json()["token"]}


def create_fuzz_headers(base_url: str, settings: Settings) -> dict[str, str]:
    """Credentials for every kind of protected operation, so the fuzzer gets past auth:
    a messenger user's access token and the achievements admin key (the audio token
    travels in the upload form: :func:`with_audio_credentials`)."""
    registered = httpx.post(
        f"{base_url}/api/v1/auth/register",
        json={"phone": "+79161234567", "password": "fuzzing password", "name": "Fuzzer"},
    )
    assert registered.status_code == 201, registered.text
    return {
        "Authorization": f"Bearer {registered.json()['access_token']}",
        "X-API-Key": settings.admin_api_key,
    }


@pytest.fixture
def audio_credentials(live_server: LiveServer) -> dict[str, str]:
    return create_audio_credentials(live_server.url)


def with_audio_credentials(case: Any, credentials: dict[str, str]) -> None:
    """The generated upload form, signed with a real audio user's token, so the fuzzer's
    files reach the WAV parser and the converter instead of stopping at 403/404."""
    if case.operation.path == "/api/v1/audio/records" and isinstance(case.body, dict):
        case.body.update(credentials)


@pytest.fixture
def fuzz_headers(migrated_database: Settings, live_server: LiveServer) -> dict[str, str]:
    return create_fuzz_headers(live_server.url, migrated_database)


@pytest.mark.timeout(120 + FUZZ_EXAMPLES * 3)
def test_every_operation_never_errors_and_matches_its_schema(
    live_server: LiveServer, fuzz_headers: dict[str, str], audio_credentials: dict[str, str]
) -> None:
    # Operations are driven one by one through Hypothesis (rather than schemathesis' pytest
    # parametrization, which does not support pytest 9 yet) and failures are collected so
    # one run reports every broken operation.
    schema = fuzzable_schema(live_server)
    failures: list[str] = []
    upload_statuses: set[int] = set()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the schema lists no operations"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: Any) -> None:
            with_audio_credentials(case, audio_credentials)
            response = case.call_and_validate(
                base_url=live_server.url,
                headers=fuzz_headers,
                excluded_checks=[BUSINESS_RULE_FALSE_ALARM],
            )
            if case.operation.path == "/api/v1/audio/records":
                upload_statuses.add(response.status_code)

        try:
            exercise()
        # schemathesis reports through a BaseExceptionGroup, not an Exception
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {_describe(exc)}")
    assert not failures, "\n\n".join(failures)
    # The signed forms got past authentication: to the WAV parser (415) or stored (201).
    assert upload_statuses & {201, 413, 415}, upload_statuses


def fuzzable_schema(live_server: LiveServer) -> Any:
    """Every operation but "sign out everywhere": it would end the fuzzer's own session
    halfway, and every later call would only meet 401 (tests/accounts/test_sessions.py
    covers it)."""
    schema = schemathesis.openapi.from_url(f"{live_server.url}/docs/openapi.json")
    return schema.exclude(method="DELETE", path="/api/v1/auth/sessions")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


@pytest.mark.timeout(60 + STATEFUL_SCENARIOS * 12)
def test_chained_operations_never_error_and_match_their_schema(
    live_server: LiveServer, migrated_database: Settings
) -> None:
    """Stateful: schemathesis chains operations through the links it infers from the schema
    (POST /chats -> GET/PATCH /chats/{chat_id} -> POST .../messages -> PUT
    /messages/{message_id}/like ...), so ids are real and the calls reach past the 404s."""
    schema = fuzzable_schema(live_server)
    machine: Any = schema.as_state_machine()
    assert len(machine.bundles) > 10, "schemathesis found no links between the operations"

    chained: list[str] = []  # operations on an existing object that answered 2xx
    credentials: dict[str, dict[str, str]] = {}

    class Workflow(machine):  # type: ignore[misc]
        def setup(self) -> None:
            # Every scenario starts from the same empty state, so Hypothesis sees the same
            # answers when it replays one (it refuses a run whose outcomes drift).
            asyncio.run(empty_state(migrated_database))
            credentials["headers"] = create_fuzz_headers(live_server.url, migrated_database)
            credentials["audio"] = create_audio_credentials(live_server.url)

        def after_call(self, response: Any, case: Any) -> None:
            if "{" in case.operation.path and response.status_code < 300:
                chained.append(case.operation.label)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            with_audio_credentials(case, credentials["audio"])
            # The credentials replace whatever the case generated for these headers; put
            # them in the case itself, so the checks judge the request that was sent (a
            # "missing Authorization" negation filled in here is no negation).
            case.headers = {**(case.headers or {}), **credentials["headers"]}
            return {"base_url": live_server.url}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:  # noqa: ARG002 - schemathesis' hook signature
            case.validate_response(
                response,
                excluded_checks=[BUSINESS_RULE_FALSE_ALARM],
                headers=credentials["headers"],  # the caller's, not generated ones
            )

    # Which links Hypothesis follows varies with the schema (even derandomized: the order
    # of the links it infers is not fixed), so ask for two distinct operations that answered
    # 2xx on an object a previous call created: proof the chains get past the 404s. A run
    # that has not got there yet goes on with more chains (every call is still checked).
    for scenarios in (STATEFUL_SCENARIOS, STATEFUL_SCENARIOS * 3):
        Workflow.run(
            settings=settings(
                max_examples=scenarios,
                stateful_step_count=8,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
        )
        if len(set(chained)) >= 2:
            break
    assert len(set(chained)) >= 2, f"the chains never reached an existing object: {chained}"
