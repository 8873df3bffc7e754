"""Settings read from the environment into one typed object.

The defaults describe the embedded run (SQLite file, in-process Redis stand-in); production
(``APP_ENV=production``) refuses to start while a secret still has its development default.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

BASE_DIR = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-only-secret-key-change-me-0123456789abcdef"  # noqa: S105 - refused in production
DEV_ADMIN_API_KEY = "dev-admin-key"

Environment = Literal["development", "test", "production"]
NumberT = TypeVar("NumberT", int, float)


class ConfigurationError(RuntimeError):
    """Raised when the environment describes a configuration that must not run."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_bool(name: str) -> bool | None:
    raw = _env(name)
    if raw is None:
        return None
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def _env_number(name: str, default: NumberT, parse: Callable[[str], NumberT]) -> NumberT:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        kind = "an integer" if parse is int else "a number"
        raise ConfigurationError(f"{name} must be {kind}, got {raw!r}") from exc


def _env_int(name: str, default: int) -> int:
    return _env_number(name, default, int)


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float)


@dataclass(frozen=True)
class Settings:
    """Every setting of the application; build it with :meth:`from_env`."""

    env: Environment = "development"
    database_url: str = f"sqlite+aiosqlite:///{BASE_DIR / 'var' / 'quintet.db'}"
    redis_url: str | None = None
    # Connections per process to Redis; a command waits this long for a free one.
    redis_max_connections: int = 64
    redis_pool_timeout_seconds: float = 10.0
    secret_key: str = DEV_SECRET_KEY
    admin_api_key: str = DEV_ADMIN_API_KEY
    public_base_url: str | None = None
    telegram_bot_token: str | None = None
    telegram_api_url: str | None = None
    telegram_bot_username: str = "QuintetNotifyBot"
    telegram_webhook_secret: str | None = None
    # Messages to one user in one chat within this window become one Telegram notification.
    telegram_notify_delay_seconds: float = 5.0
    telegram_link_ttl_seconds: int = 900
    telegram_send_attempts: int = 5
    telegram_retry_base_seconds: float = 1.0
    # First delay before SAQ runs a failed (or swept) notification job again; it doubles up
    # to 10 minutes, with jitter.
    telegram_job_retry_delay_seconds: float = 30.0
    # None: the worker runs inside the web process only in the embedded default.
    worker_in_process: bool | None = None
    worker_concurrency: int = 10
    # A running job is touched every third of this; a job left untouched this long (its
    # worker was killed) is swept and retried. The sweep runs every third of it too.
    worker_heartbeat_seconds: int = 15
    trivia_api_url: str | None = None
    trivia_max_questions: int = 100
    trivia_opentdb_url: str = "https://opentdb.com"
    trivia_timeout_seconds: float = 10.0
    trivia_max_rounds: int = 10
    trivia_deadline_seconds: float = 60.0
    audio_conversion_workers: int = 2
    audio_max_pending_conversions: int = 16
    audio_mp3_bitrate: str = "128k"
    ffmpeg_binary: str | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "console"
    board_message_ttl_seconds: int = 300
    board_max_live_messages: int = 10_000
    # Messages per page of /board/messages (newest first).
    board_page_size: int = 50
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    max_upload_bytes: int = 20 * 1024 * 1024
    # A request body must start within this many seconds, then keep up the minimum rate
    # (each REQUEST_BODY_MIN_RATE bytes buy a second): app/lib/bodies.py.
    request_body_timeout_seconds: float = 20.0
    request_body_min_rate: int = 500
    db_pool_size: int = 10
    # Messenger: sign-in throttling, presence expiry, avatar and attachment limits.
    login_attempts_per_minute: int = 10
    registrations_per_hour: int = 20
    # A connection counts as online this long after its replica's last heartbeat (every
    # third of it); a killed replica's users go offline within about 4/3 of it.
    presence_ttl_seconds: int = 9
    socketio_cors_origins: tuple[str, ...] = ()
    # Socket.IO connections: per account (every replica together), per client address (per
    # replica), and how long a connection may stay open without signing in.
    socketio_max_connections_per_user: int = 20
    socketio_max_connections_per_address: int = 500
    socketio_handshake_timeout_seconds: float = 10.0
    # Per-user limits (per minute, every replica together; 0 turns one off): 429 with
    # Retry-After over REST, the same problem in a Socket.IO acknowledgement.
    messages_per_minute: int = 600
    typing_events_per_minute: int = 120
    chats_created_per_minute: int = 30
    membership_changes_per_minute: int = 60
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_file_bytes: int = 10 * 1024 * 1024
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def embedded(self) -> bool:
        """True when no external services are configured: the newcomer's one-command run."""
        return self.is_sqlite and self.redis_url is None

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def run_worker_in_process(self) -> bool:
        return self.embedded if self.worker_in_process is None else self.worker_in_process

    @classmethod
    def from_env(cls) -> Settings:
        env = _env("APP_ENV", "development")
        if env not in ("development", "test", "production"):
            raise ConfigurationError(
                f"APP_ENV must be development, test or production, got {env!r}"
            )
        log_format = _env("LOG_FORMAT", "json" if env == "production" else "console")
        if log_format not in ("json", "console"):
            raise ConfigurationError(f"LOG_FORMAT must be json or console, got {log_format!r}")
        defaults = cls()
        settings = cls(
            env=env,  # type: ignore[arg-type]
            database_url=normalise_database_url(_env("DATABASE_URL", defaults.database_url) or ""),
            redis_url=_env("REDIS_URL"),
            redis_max_connections=_env_int("REDIS_MAX_CONNECTIONS", defaults.redis_max_connections),
            redis_pool_timeout_seconds=_env_float(
                "REDIS_POOL_TIMEOUT_SECONDS", defaults.redis_pool_timeout_seconds
            ),
            secret_key=_env("SECRET_KEY", DEV_SECRET_KEY) or DEV_SECRET_KEY,
            admin_api_key=_env("ADMIN_API_KEY", DEV_ADMIN_API_KEY) or DEV_ADMIN_API_KEY,
            public_base_url=_env("PUBLIC_BASE_URL"),
            telegram_bot_token=_env("TELEGRAM_BOT_TOKEN"),
            telegram_api_url=_env("TELEGRAM_API_URL"),
            telegram_bot_username=_env("TELEGRAM_BOT_USERNAME", defaults.telegram_bot_username)
            or defaults.telegram_bot_username,
            telegram_webhook_secret=_env("TELEGRAM_WEBHOOK_SECRET"),
            telegram_notify_delay_seconds=_env_float(
                "TELEGRAM_NOTIFY_DELAY_SECONDS", defaults.telegram_notify_delay_seconds
            ),
            telegram_link_ttl_seconds=_env_int(
                "TELEGRAM_LINK_TTL_SECONDS", defaults.telegram_link_ttl_seconds
            ),
            telegram_send_attempts=_env_int(
                "TELEGRAM_SEND_ATTEMPTS", defaults.telegram_send_attempts
            ),
            telegram_retry_base_seconds=_env_float(
                "TELEGRAM_RETRY_BASE_SECONDS", defaults.telegram_retry_base_seconds
            ),
            telegram_job_retry_delay_seconds=_env_float(
                "TELEGRAM_JOB_RETRY_DELAY_SECONDS", defaults.telegram_job_retry_delay_seconds
            ),
            worker_in_process=_env_bool("WORKER_IN_PROCESS"),
            worker_concurrency=_env_int("WORKER_CONCURRENCY", defaults.worker_concurrency),
            worker_heartbeat_seconds=_env_int(
                "WORKER_HEARTBEAT_SECONDS", defaults.worker_heartbeat_seconds
            ),
            trivia_api_url=_env("TRIVIA_API_URL"),
            trivia_max_questions=_env_int("TRIVIA_MAX_QUESTIONS", defaults.trivia_max_questions),
            trivia_opentdb_url=_env("TRIVIA_OPENTDB_URL", defaults.trivia_opentdb_url)
            or defaults.trivia_opentdb_url,
            trivia_timeout_seconds=_env_float(
                "TRIVIA_TIMEOUT_SECONDS", defaults.trivia_timeout_seconds
            ),
            trivia_max_rounds=_env_int("TRIVIA_MAX_ROUNDS", defaults.trivia_max_rounds),
            trivia_deadline_seconds=_env_float(
                "TRIVIA_DEADLINE_SECONDS", defaults.trivia_deadline_seconds
            ),
            audio_conversion_workers=_env_int(
                "AUDIO_CONVERSION_WORKERS", defaults.audio_conversion_workers
            ),
            audio_max_pending_conversions=_env_int(
                "AUDIO_MAX_PENDING_CONVERSIONS", defaults.audio_max_pending_conversions
            ),
            audio_mp3_bitrate=_env("AUDIO_MP3_BITRATE", defaults.audio_mp3_bitrate)
            or defaults.audio_mp3_bitrate,
            ffmpeg_binary=_env("FFMPEG_BINARY"),
            log_level=(_env("LOG_LEVEL", "INFO") or "INFO").upper(),
            log_format=log_format,  # type: ignore[arg-type]
            board_message_ttl_seconds=_env_int(
                "BOARD_MESSAGE_TTL_SECONDS", defaults.board_message_ttl_seconds
            ),
            board_page_size=_env_int("BOARD_PAGE_SIZE", defaults.board_page_size),
            board_max_live_messages=_env_int(
                "BOARD_MAX_LIVE_MESSAGES", defaults.board_max_live_messages
            ),
            access_token_ttl_seconds=_env_int(
                "ACCESS_TOKEN_TTL_SECONDS", defaults.access_token_ttl_seconds
            ),
            max_upload_bytes=_env_int("MAX_UPLOAD_BYTES", defaults.max_upload_bytes),
            request_body_timeout_seconds=_env_float(
                "REQUEST_BODY_TIMEOUT_SECONDS", defaults.request_body_timeout_seconds
            ),
            request_body_min_rate=_env_int("REQUEST_BODY_MIN_RATE", defaults.request_body_min_rate),
            db_pool_size=_env_int("DB_POOL_SIZE", defaults.db_pool_size),
            login_attempts_per_minute=_env_int(
                "LOGIN_ATTEMPTS_PER_MINUTE", defaults.login_attempts_per_minute
            ),
            registrations_per_hour=_env_int(
                "REGISTRATIONS_PER_HOUR", defaults.registrations_per_hour
            ),
            presence_ttl_seconds=_env_int("PRESENCE_TTL_SECONDS", defaults.presence_ttl_seconds),
            socketio_max_connections_per_user=_env_int(
                "SOCKETIO_MAX_CONNECTIONS_PER_USER", defaults.socketio_max_connections_per_user
            ),
            socketio_max_connections_per_address=_env_int(
                "SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS",
                defaults.socketio_max_connections_per_address,
            ),
            socketio_handshake_timeout_seconds=_env_float(
                "SOCKETIO_HANDSHAKE_TIMEOUT_SECONDS", defaults.socketio_handshake_timeout_seconds
            ),
            messages_per_minute=_env_int("MESSAGES_PER_MINUTE", defaults.messages_per_minute),
            typing_events_per_minute=_env_int(
                "TYPING_EVENTS_PER_MINUTE", defaults.typing_events_per_minute
            ),
            chats_created_per_minute=_env_int(
                "CHATS_CREATED_PER_MINUTE", defaults.chats_created_per_minute
            ),
            membership_changes_per_minute=_env_int(
                "MEMBERSHIP_CHANGES_PER_MINUTE", defaults.membership_changes_per_minute
            ),
            socketio_cors_origins=tuple(
                origin.strip()
                for origin in (_env("SOCKETIO_CORS_ORIGINS", "") or "").split(",")
                if origin.strip()
            ),
            max_image_bytes=_env_int("MAX_IMAGE_BYTES", defaults.max_image_bytes),
            max_image_pixels=_env_int("MAX_IMAGE_PIXELS", defaults.max_image_pixels),
            max_file_bytes=_env_int("MAX_FILE_BYTES", defaults.max_file_bytes),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse configurations that are unsafe to run."""
        if not 1 <= self.trivia_max_questions <= 100:
            raise ConfigurationError("TRIVIA_MAX_QUESTIONS must be between 1 and 100")
        if self.request_body_timeout_seconds <= 0 or self.request_body_min_rate < 1:
            raise ConfigurationError(
                "REQUEST_BODY_TIMEOUT_SECONDS must be positive, REQUEST_BODY_MIN_RATE at least 1"
            )
        if self.board_max_live_messages < 1:
            raise ConfigurationError("BOARD_MAX_LIVE_MESSAGES must be at least 1")
        if not 1 <= self.board_page_size <= 500:
            raise ConfigurationError("BOARD_PAGE_SIZE must be between 1 and 500")
        if self.worker_heartbeat_seconds < 2:
            raise ConfigurationError("WORKER_HEARTBEAT_SECONDS must be at least 2")
        if (
            self.socketio_max_connections_per_user < 1
            or self.socketio_max_connections_per_address < 1
            or self.socketio_handshake_timeout_seconds <= 0
        ):
            raise ConfigurationError(
                "SOCKETIO_MAX_CONNECTIONS_PER_USER and _PER_ADDRESS must be at least 1, "
                "SOCKETIO_HANDSHAKE_TIMEOUT_SECONDS positive"
            )
        if self.redis_max_connections < 4 or self.redis_pool_timeout_seconds <= 0:
            raise ConfigurationError(
                "REDIS_MAX_CONNECTIONS must be at least 4, REDIS_POOL_TIMEOUT_SECONDS positive"
            )
        if self.presence_ttl_seconds < 1:
            raise ConfigurationError("PRESENCE_TTL_SECONDS must be at least 1")
        if (
            min(
                self.messages_per_minute,
                self.typing_events_per_minute,
                self.chats_created_per_minute,
                self.membership_changes_per_minute,
            )
            < 0
        ):
            raise ConfigurationError("the per-minute messenger limits must not be negative")
        if self.env != "production":
            return
        problems = []
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("SECRET_KEY must be set to a random value of at least 32 characters")
        if self.admin_api_key == DEV_ADMIN_API_KEY or len(self.admin_api_key) < 16:
            problems.append("ADMIN_API_KEY must be set to a random value of at least 16 characters")
        if problems:
            raise ConfigurationError("refusing to start in production: " + "; ".join(problems))


def normalise_database_url(url: str) -> str:
    """Accept the URLs operators usually have (``postgres://``) and pick the async drivers."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url
