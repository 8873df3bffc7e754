"""Production settings that would be unsafe to run are refused at start-up."""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import httpx
import pytest
import yaml

from app.asgi import create_asgi
from app.config import (
    BASE_DIR,
    ConfigurationError,
    Settings,
    declared_settings,
    is_published_secret,
)
from tests.accounts.api import register
from tests.security.schema import is_problem
from tests.support import LiveServer, free_port, make_settings

# A setting name, then `:`/`=` and a value (YAML, .env, shell, Python), or a value passed as
# `--admin-key VALUE` / `X-API-Key: VALUE` in a command line of the docs.
_NAME = (
    r"(?:SECRET_KEY|ADMIN_API_KEY|TELEGRAM_WEBHOOK_SECRET|WEBHOOK_SECRET|ADMIN_KEY|secretKey"
    r"|adminApiKey|telegramWebhookSecret|secret_key|admin_api_key|telegram_webhook_secret)"
)
_ASSIGNED = re.compile(_NAME + r"""["']?\s*[:=]\s*["']?([^\s"'`,)}]+)""")
_PASSED = re.compile(r"""(?:--admin-key|X-API-Key:)\s+([^\s"'`]+)""", re.IGNORECASE)
# A literal key rather than a variable, a placeholder or code: 8+ characters of the kinds
# keys are made of, a lower-case letter, and a digit or a dash.
_KEY_LIKE = re.compile(r"^(?=.*[a-z])(?=.*[\d-])[A-Za-z0-9_\-+/=]{8,}$")


def published_key_values() -> dict[str, str]:
    """Every key-like value assigned to a secret setting in a tracked file: value -> file."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=BASE_DIR, capture_output=True, text=True, check=True
    ).stdout.split()
    found: dict[str, str] = {}
    for name in files:
        path = BASE_DIR / name
        if path.suffix in (".png", ".jpg", ".wav", ".mp3", ".ico", ".lock") or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for pattern in (_ASSIGNED, _PASSED):
            for match in pattern.finditer(text):
                if _KEY_LIKE.match(match.group(1)):
                    found.setdefault(match.group(1), name)
    return found


def production(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """A production environment with good secrets and a public URL, then ``env`` on top."""
    for name in ("ALLOWED_HOSTS", "DOCS_ENABLED", "TELEGRAM_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    values = {
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "ADMIN_API_KEY": secrets.token_urlsafe(24),
        "PUBLIC_BASE_URL": "https://quintet.example.org",
        **env,
    }
    for name, value in values.items():
        if value == "":
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def test_production_starts_with_random_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
    assert Settings.from_env().env == "production"
    # Shorter generated keys are fine too: openssl rand -hex 16, token_urlsafe(12).
    production(monkeypatch, SECRET_KEY=secrets.token_hex(16), ADMIN_API_KEY=secrets.token_hex(8))
    assert Settings.from_env().env == "production"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRET_KEY", "a" * 32),
        ("SECRET_KEY", "ab" * 20),
        ("SECRET_KEY", "password" * 5),
        ("SECRET_KEY", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"),
        ("ADMIN_API_KEY", "a" * 16),
        ("ADMIN_API_KEY", "aaaaaaaabbbbbbbb"),
        ("ADMIN_API_KEY", "abcabcabcabcabcabc"),
    ],
)
def test_production_refuses_low_entropy_secrets(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    production(monkeypatch, **{name: value})
    with pytest.raises(ConfigurationError, match=f"{name} must be a random value"):
        Settings.from_env()


def test_every_key_published_in_the_repository_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    published = published_key_values()
    # The scan finds what it should: the kind, CI and compose values and the defaults.
    for expected in ("kind-only-admin-api-key-0123", "dev-admin-key", "ci-secret-key-0123"):
        assert any(value.startswith(expected) for value in published), sorted(published)
    missing = {value: name for value, name in published.items() if not is_published_secret(value)}
    assert not missing, f"add their SHA-256 to PUBLISHED_SECRET_SHA256: {missing}"
    for value in published:
        production(monkeypatch, SECRET_KEY=value)
        with pytest.raises(ConfigurationError, match="SECRET_KEY is a value published"):
            Settings.from_env()
        production(monkeypatch, ADMIN_API_KEY=value)
        with pytest.raises(ConfigurationError, match="ADMIN_API_KEY is a value published"):
            Settings.from_env()
    production(monkeypatch, TELEGRAM_WEBHOOK_SECRET="webhook-secret-for-tests")
    with pytest.raises(ConfigurationError, match="TELEGRAM_WEBHOOK_SECRET is a value published"):
        Settings.from_env()


def test_production_needs_a_public_base_url_or_allowed_hosts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production(monkeypatch, PUBLIC_BASE_URL="")
    with pytest.raises(ConfigurationError, match=r"PUBLIC_BASE_URL .* or ALLOWED_HOSTS"):
        Settings.from_env()
    production(monkeypatch, PUBLIC_BASE_URL="", ALLOWED_HOSTS="quintet.example.org, *.example.net")
    assert Settings.from_env().allowed_hosts == ("quintet.example.org", "*.example.net")


def test_development_needs_neither(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APP_ENV", "PUBLIC_BASE_URL", "ALLOWED_HOSTS", "SECRET_KEY", "DOCS_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert settings.allowed_hosts == ()
    assert settings.docs_enabled is True


async def test_allowed_hosts_refuse_other_host_headers(migrated_database: Settings) -> None:
    settings = make_settings(allowed_hosts=("quintet.example.org", "*.example.net"))
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            evil = await http.get("/api/v1/achievements", headers={"host": "evil.example"})
            page = await http.get(
                "/achievements", headers={"host": "evil.example", "accept": "text/html"}
            )
            good = await http.get("/api/v1/achievements", headers={"host": "quintet.example.org"})
            sub = await http.get("/api/v1/achievements", headers={"host": "a.b.example.net:443"})
            suffix = await http.get("/api/v1/achievements", headers={"host": "badexample.net"})
            # Kubernetes probes and Prometheus call the pod by its address.
            ready = await http.get("/health/ready")
    finally:
        server.stop()
    assert is_problem(evil, 400), evil.text
    assert "Host header" in evil.json()["detail"]
    assert page.status_code == 400
    assert "Host header" in page.text
    assert good.status_code == 200
    assert sub.status_code == 200
    assert suffix.status_code == 400
    assert ready.status_code == 200


async def test_docs_can_be_turned_off(
    migrated_database: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCS_ENABLED", "false")
    assert Settings.from_env().docs_enabled is False
    server = LiveServer(create_asgi(make_settings(docs_enabled=False)), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            page = await http.get("/docs/")
            schema = await http.get("/docs/openapi.json")
            events = await http.get("/docs/asyncapi.json")
            events_page = await http.get("/docs/asyncapi")
            api = await http.get("/api/v1/achievements")
    finally:
        server.stop()
    assert page.status_code == 404
    assert schema.status_code == 404
    assert events.status_code == 404
    assert events_page.status_code == 404
    assert api.status_code == 200


# --- the declaration (issue 16 item 1) -----------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("ACCESS_TOKEN_TTL_SECONDS", "0", "must be an integer of at least 1, got '0'"),
        ("REFRESH_TOKEN_TTL_SECONDS", "0", "must be an integer of at least 1, got '0'"),
        ("REFRESH_TOKEN_TTL_SECONDS", "a month", "must be an integer of at least 1"),
        ("DB_POOL_SIZE", "0", "must be an integer of at least 1, got '0'"),
        ("TELEGRAM_LINK_TTL_SECONDS", "-900", "must be an integer of at least 1, got '-900'"),
        ("TRIVIA_TIMEOUT_SECONDS", "0", "must be a number greater than 0, got '0'"),
        ("LOG_LEVEL", "loud", "must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'LOUD'"),
        ("AUDIO_MP3_BITRATE", "fast", "must be text matching"),
        ("SOCKETIO_SINGLE_PROCESS", "maybe", "must be true or false, got 'maybe'"),
    ],
)
def test_the_declared_bounds_refuse_to_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, message: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigurationError, match=f"^{variable} {re.escape(message)}"):
        Settings.from_env()


def test_every_setting_is_declared_with_a_description_and_read_from_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    specs = [spec for spec in declared_settings() if spec.variable]
    assert {spec.name for spec in declared_settings()} == {f.name for f in fields(Settings)}
    assert all(spec.description for spec in specs), [s.name for s in specs if not s.description]
    monkeypatch.setenv("REFRESH_TOKEN_TTL_SECONDS", "3600")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("DEFAULT_PHONE_REGION", "de")
    monkeypatch.setenv("SOCKETIO_CORS_ORIGINS", " https://a.example, ,https://b.example")
    monkeypatch.setenv("WORKER_IN_PROCESS", "ON")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/app")
    monkeypatch.setenv("BOARD_MESSAGE_TTL_SECONDS", "")  # empty counts as unset
    settings = Settings.from_env()
    assert settings.refresh_token_ttl_seconds == 3600
    assert (settings.log_level, settings.default_phone_region) == ("DEBUG", "DE")
    assert settings.socketio_cors_origins == ("https://a.example", "https://b.example")
    assert settings.worker_in_process is True
    assert settings.database_url == "postgresql+asyncpg://u:p@db/app"
    assert settings.board_message_ttl_seconds == 300
    assert settings.log_format == "console"
    production(monkeypatch)
    assert Settings.from_env().log_format == "json"


async def test_refresh_token_ttl_seconds_bounds_a_refresh_tokens_life(
    migrated_database: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {
        "APP_ENV": "test",
        "DATABASE_URL": migrated_database.database_url,
        "REDIS_URL": migrated_database.redis_url or "",
        "LOG_LEVEL": "WARNING",
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "1024",
        "PASSWORD_HASH_PARALLELISM": "1",
        "REFRESH_TOKEN_TTL_SECONDS": "2",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    server = LiveServer(create_asgi(Settings.from_env()), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            account = await register(http)
            fresh = await http.post(
                "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
            )
            issued = time.monotonic()
            assert fresh.status_code == 200, fresh.text
            await asyncio.sleep(max(0.0, issued + 2.5 - time.monotonic()))
            expired = await http.post(
                "/api/v1/auth/refresh", json={"refresh_token": fresh.json()["refresh_token"]}
            )
    finally:
        server.stop()
    assert is_problem(expired, 401), expired.text
    assert "refresh token is not valid" in expired.json()["detail"]


def run_table_check(readme: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(BASE_DIR / "scripts" / "config_table.py"),
            "--check",
            "--readme",
            str(readme),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_readme_configuration_table_is_the_declarations(tmp_path: Path) -> None:
    readme = (BASE_DIR / "README.md").read_text()
    assert run_table_check(BASE_DIR / "README.md").returncode == 0
    row = "| `BOARD_PAGE_SIZE` | `50` | an integer between 1 and 500 |"
    assert row in readme
    drifts = {
        "default": readme.replace(row, row.replace("`50`", "`20`")),
        "missing": readme.replace("| `REFRESH_TOKEN_TTL_SECONDS` |", "| `REFRESH_TTL` |"),
        "extra": readme.replace(row, "| `FORWARDED_ALLOW_IPS` | unset | text | x |\n" + row),
    }
    for name, text in drifts.items():
        (tmp_path / f"{name}.md").write_text(text)
        result = run_table_check(tmp_path / f"{name}.md")
        assert result.returncode == 1, name
        assert "configuration table differs" in result.stderr, name


def test_every_variable_the_deploy_files_set_is_a_setting() -> None:
    declared = {spec.variable for spec in declared_settings() if spec.variable}
    # Read by the entrypoint (uvicorn) or only to build DATABASE_URL / REDIS_URL in the pod.
    process = {"WEB_CONCURRENCY", "PORT", "POSTGRES_PASSWORD", "REDIS_PASSWORD"}
    templates = BASE_DIR / "helm" / "quintet" / "templates"
    chart = set(
        re.findall(r"(?m)^  ([A-Z][A-Z0-9_]+):", (templates / "configmap.yaml").read_text())
    )
    chart |= set(re.findall(r"(?m)^  ([A-Z][A-Z0-9_]+):", (templates / "secret.yaml").read_text()))
    chart |= set(re.findall(r"- name: ([A-Z][A-Z0-9_]+)", (templates / "_helpers.tpl").read_text()))
    compose = yaml.safe_load((BASE_DIR / "docker" / "compose.yaml").read_text())
    app_services = ("migrate", "api", "worker", "bot")
    composed = {
        name for service in app_services for name in compose["services"][service]["environment"]
    }
    assert {"APP_ENV", "TRUSTED_PROXIES", "SECRET_KEY"} <= chart & composed
    assert chart - declared - process == set()
    assert composed - declared - process == set()
