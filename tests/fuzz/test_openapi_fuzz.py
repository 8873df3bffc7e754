"""Schemathesis against /docs/openapi.json of the live server (real PostgreSQL and Redis).

Every operation gets generated requests, valid and invalid; the goal is zero 5xx and zero
responses that break their own documented schema. FUZZ_EXAMPLES bounds the run (CI keeps it
small; `make fuzz` runs a long one).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app.config import Settings
from tests.support import LiveServer

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
# "Schema-valid data must be accepted" cannot hold where a business rule refuses data the
# schema cannot describe (a phone number that does not exist, an award dated in the future,
# an id that names nothing): those are the 4xx the API promises. Every other check runs.
BUSINESS_RULE_FALSE_ALARM = schemathesis.checks.positive_data_acceptance


@pytest.fixture
def audio_credentials(live_server: LiveServer) -> dict[str, str]:
    """An audio user's id and token: the upload form carries them in its body."""
    created = httpx.post(f"{live_server.url}/api/v1/audio/users", json={"name": "Fuzzer"})
    assert created.status_code == 201, created.text
    return {"user_id": created.json()["id"], "token": created.json()["token"]}


def with_audio_credentials(case: Any, credentials: dict[str, str]) -> None:
    """The generated upload form, signed with a real audio user's token, so the fuzzer's
    files reach the WAV parser and the converter instead of stopping at 403/404."""
    if case.operation.path == "/api/v1/audio/records" and isinstance(case.body, dict):
        case.body.update(credentials)


@pytest.fixture
def fuzz_headers(migrated_database: Settings, live_server: LiveServer) -> dict[str, str]:
    """Credentials for every kind of protected operation, so the fuzzer gets past auth:
    a messenger user's access token and the achievements admin key (the audio token
    travels in the upload form: :func:`with_audio_credentials`)."""
    registered = httpx.post(
        f"{live_server.url}/api/v1/auth/register",
        json={"phone": "+79161234567", "password": "fuzzing password", "name": "Fuzzer"},
    )
    assert registered.status_code == 201, registered.text
    return {
        "Authorization": f"Bearer {registered.json()['access_token']}",
        "X-API-Key": migrated_database.admin_api_key,
    }


def test_every_operation_never_errors_and_matches_its_schema(
    live_server: LiveServer, fuzz_headers: dict[str, str], audio_credentials: dict[str, str]
) -> None:
    # Operations are driven one by one through Hypothesis (rather than schemathesis' pytest
    # parametrization, which does not support pytest 9 yet) and failures are collected so
    # one run reports every broken operation.
    schema = schemathesis.openapi.from_url(f"{live_server.url}/docs/openapi.json")
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
