"""Settings.from_env over a monkeypatched environment: values, their parsing and bounds,
the refusals of bad values, and production's refusal of weak secrets."""

from __future__ import annotations

import secrets

import pytest

from app.config import ConfigurationError, Settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without any of the application's variables."""
    names = {name.upper() for name in dir(Settings()) if not name.startswith("_")}
    for name in names | {"APP_ENV"}:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def from_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> Settings:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


def strong_production(**values: str) -> dict[str, str]:
    return {
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "ADMIN_API_KEY": secrets.token_urlsafe(24),
        "PUBLIC_BASE_URL": "https://quintet.example.org",
        **values,
    }


def test_an_empty_environment_is_the_embedded_development_run(env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    assert settings.env == "development"
    assert settings.embedded
    assert settings.run_worker_in_process
    assert settings.redis_url is None
    assert settings.log_format == "console"
    assert not settings.secure_cookies
    assert settings.docs_enabled


def test_numbers_lists_and_switches_are_parsed(env: pytest.MonkeyPatch) -> None:
    settings = from_env(
        env,
        BOARD_PAGE_SIZE="20",
        ANNOUNCE_WAIT_SECONDS="2.5",
        TRUSTED_PROXIES=" 10.0.0.1 , 10.1.0.0/16,",
        ALLOWED_HOSTS="quintet.example.org,*.example.org",
        COOKIE_SECURE="yes",
        DOCS_ENABLED="off",
        WORKER_IN_PROCESS="0",
        SOCKETIO_SINGLE_PROCESS="true",
    )
    assert settings.board_page_size == 20
    assert settings.announce_wait_seconds == 2.5
    assert settings.trusted_proxies == ("10.0.0.1", "10.1.0.0/16")
    assert settings.allowed_hosts == ("quintet.example.org", "*.example.org")
    assert settings.cookie_secure is True
    assert settings.secure_cookies
    assert settings.docs_enabled is False
    assert settings.run_worker_in_process is False
    assert settings.socketio_single_process is True


def test_an_empty_variable_means_its_default(env: pytest.MonkeyPatch) -> None:
    settings = from_env(env, BOARD_PAGE_SIZE="", REDIS_URL="", SECRET_KEY="")
    defaults = Settings()
    assert settings.board_page_size == defaults.board_page_size
    assert settings.redis_url is None
    assert settings.secret_key == defaults.secret_key


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("postgres://u@db:5432/q", "postgresql+asyncpg://u@db:5432/q"),
        ("postgresql://u@db/q", "postgresql+asyncpg://u@db/q"),
        ("postgresql+asyncpg://u@db/q", "postgresql+asyncpg://u@db/q"),
        ("sqlite:///var/q.db", "sqlite+aiosqlite:///var/q.db"),
    ],
)
def test_database_urls_get_the_async_driver(env: pytest.MonkeyPatch, given: str, url: str) -> None:
    settings = from_env(env, DATABASE_URL=given)
    assert settings.database_url == url
    assert settings.is_sqlite == url.startswith("sqlite")


def test_case_insensitive_values_are_normalised(env: pytest.MonkeyPatch) -> None:
    settings = from_env(env, LOG_LEVEL="debug", DEFAULT_PHONE_REGION="de")
    assert (settings.log_level, settings.default_phone_region) == ("DEBUG", "DE")


@pytest.mark.parametrize(("name", "value"), [("BOARD_PAGE_SIZE", "1"), ("BOARD_PAGE_SIZE", "500")])
def test_bounds_are_inclusive(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    assert getattr(from_env(env, **{name: value}), name.lower()) == int(value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_ENV", "staging"),
        ("LOG_FORMAT", "xml"),
        ("BOARD_PAGE_SIZE", "twenty"),
        ("BOARD_PAGE_SIZE", "0"),
        ("BOARD_PAGE_SIZE", "501"),
        ("ANNOUNCE_WAIT_SECONDS", "soon"),
        ("ANNOUNCE_WAIT_SECONDS", "0"),
        ("TRIVIA_MAX_QUESTIONS", "101"),
        ("COOKIE_SECURE", "maybe"),
        ("TRUSTED_PROXIES", "10.0.0.1,proxy.local"),
        ("DEFAULT_PHONE_REGION", "XX"),
        ("WORKER_HEARTBEAT_SECONDS", "1"),
        ("REDIS_MAX_CONNECTIONS", "3"),
        ("AUTH_USER_CACHE_SECONDS", "61"),
    ],
)
def test_a_bad_value_is_a_configuration_error_naming_the_variable(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=name):
        from_env(env, **{name: value})


def test_a_negative_per_minute_limit_is_a_configuration_error(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError):
        from_env(env, MESSAGES_PER_MINUTE="-1")


def test_production_with_strong_secrets_starts(env: pytest.MonkeyPatch) -> None:
    settings = from_env(env, **strong_production())
    assert settings.env == "production"
    assert settings.log_format == "json"
    assert settings.secure_cookies


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRET_KEY", ""),  # the development default
        ("ADMIN_API_KEY", ""),
        ("SECRET_KEY", "ab" * 32),  # long, but one pattern repeated
        ("SECRET_KEY", secrets.token_hex(8)),  # random, but too short
        ("ADMIN_API_KEY", "12345678901234567890"),
    ],
)
def test_production_refuses_weak_secrets(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    values = strong_production()
    values.pop(name) if value == "" else values.update({name: value})
    with pytest.raises(ConfigurationError, match=name):
        from_env(env, **values)


def test_production_refuses_the_development_password_cost(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="PASSWORD_HASH_MEMORY_KIB"):
        from_env(env, **strong_production(PASSWORD_HASH_MEMORY_KIB="1024"))


def test_development_accepts_the_weak_defaults(env: pytest.MonkeyPatch) -> None:
    settings = from_env(env, APP_ENV="development", PASSWORD_HASH_MEMORY_KIB="1024")
    assert settings.password_hash_memory_kib == 1024
