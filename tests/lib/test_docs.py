"""What a newcomer reads: every operation and parameter of /docs/ is described, the admin
key of the embedded default is named where one looks for it, and the Makefile's targets
do what they say."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from app.config import BASE_DIR, DEV_ADMIN_API_KEY

METHODS = ("get", "put", "post", "patch", "delete")


async def test_every_operation_and_parameter_has_a_description(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    bare_operations: list[str] = []
    bare_parameters: list[str] = []
    for path, item in schema["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if not (operation.get("description") or "").strip():
                bare_operations.append(f"{method.upper()} {path}")
            bare_parameters.extend(
                f"{method.upper()} {path} {parameter['name']}"
                for parameter in operation.get("parameters", [])
                if not (parameter.get("description") or "").strip()
            )
    assert bare_operations == []
    assert bare_parameters == []


async def test_the_authorize_dialog_names_the_embedded_admin_key(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    admin = schema["components"]["securitySchemes"]["AdminApiKey"]
    assert DEV_ADMIN_API_KEY in admin["description"]
    assert DEV_ADMIN_API_KEY in schema["info"]["description"]


def _make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", *args],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        # The embedded default: no REDIS_URL (the in-process stand-in), whatever the caller has.
        env={**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("seed", "achievements seed"),
        ("worker", "workers run"),
        ("bot", "telegram poll"),
        ("typecheck", "mypy"),
    ],
)
def test_declared_make_targets_have_recipes(target: str, command: str) -> None:
    dry_run = _make("-n", target)
    assert dry_run.returncode == 0, dry_run.stderr
    assert command in dry_run.stdout


def test_make_seed_loads_the_catalogue(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}", "APP_ENV": "development"}
    assert _make("migrate", env=env).returncode == 0
    first = _make("seed", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "catalogue: 30 achievements added" in first.stdout
    again = _make("seed", env=env)
    assert "catalogue: 0 achievements added" in again.stdout
