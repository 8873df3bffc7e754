"""Settings read from the environment into one typed object.

The defaults describe the embedded run (SQLite file, in-process Redis stand-in); production
(``APP_ENV=production``) refuses to start while a secret still has its development default.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import phonenumbers

BASE_DIR = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-only-secret-key-change-me-0123456789abcdef"  # noqa: S105 - refused in production
DEV_ADMIN_API_KEY = "dev-admin-key"
# SHA-256 of every secret value published in this repository (the defaults above, the kind
# and CI Helm values, the CI compose secrets, the docs' and tests' examples): production
# refuses them, however random they look. tests/lib/test_settings.py greps the repository
# for key-like values and fails when one is missing here.
PUBLISHED_SECRET_SHA256 = frozenset(
    {
        "a36be65c17b0ea5612dbcb040a32582a4404be0adf896fa38bfa1de3bee10899",  # .ci/containers.sh
        "fddb1f59cb4f3582efb281d0ec57c6cd022dcd9c7719cdc08889fcf0e239a83c",  # .ci/containers.sh
        "a65e6cc1e781345134ff222e003b72c98e0d4ecc7896bdc9b759aaaa74c6a5cf",  # helm/quintet/ci
        "25876188ce5862788ffa98d0d57b8c4714237179063b6c1328dd1570590b2420",  # helm/quintet/ci
        "df76ff796f70d2c9cb055ea6280553caa27eda26b70e01082c160de75a05a4a9",  # DEV_ADMIN_API_KEY
        "964c057e8b8bb634ec03850275fa53bd09ed10063a38fd9a355ab903f3382c5e",  # DEV_SECRET_KEY
        "0f997f954a41fe4c1f485f96abf4dce4ab15c632f93a85df35ba76db19a09b76",  # k8s/kind-values
        "e4b3477083c24464549d008ef3d9672ba7c3ae2636e947d6dd453748066c8c77",  # k8s/kind-values
        "be0715a336e570594cd5cc1f039e17d1b94e1787f7957852a4b7169fe0b730c2",  # tests/deploy
        "e82c70f37d86073213819603336d4f47cbb470dd5c69113f463e484267343908",  # tests/deploy
        "032d7b6a8163c8d5d27635673b01f523e22d910e56b0c74387d2d03c63b1ef92",  # tests/telegram
        "c5c6901b75b73a8f97f1546c7b2795d93392627a634cade2a2ba4888b9db969d",  # tests/bench/achievements_stats
    }
)
# Estimated bits (length x the value's own per-character Shannon entropy): 'a' * 32 has
# none, `openssl rand -hex 32` about 220. The floors sit below what generated keys of the
# minimum lengths ever show (32 hex characters: 89 or more in 300,000 draws; 16: 32 or
# more in a million), so only regular values are refused.
MIN_SECRET_KEY_BITS = 64
MIN_ADMIN_API_KEY_BITS = 28

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
    # Addresses (IPs or CIDRs) of the reverse proxies whose X-Forwarded-* / Forwarded headers
    # are believed; empty: no forwarded header is believed (app/lib/proxies.py).
    trusted_proxies: tuple[str, ...] = ()
    # None: Secure when PUBLIC_BASE_URL is https://, or in production without one.
    cookie_secure: bool | None = None
    # Host names the app answers (Litestar's AllowedHostsConfig; "*.example.org" for
    # subdomains); empty: any. Production needs this or PUBLIC_BASE_URL.
    allowed_hosts: tuple[str, ...] = ()
    # /docs/ (Swagger UI) and /docs/openapi.json.
    docs_enabled: bool = True
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
    # An import gives up after this many upstream answers in a row that brought nothing new.
    trivia_max_idle_rounds: int = 3
    trivia_deadline_seconds: float = 60.0
    audio_conversion_workers: int = 2
    audio_max_pending_conversions: int = 16
    audio_mp3_bitrate: str = "128k"
    # Bounds on what one upload may become: the recording's length and the stored MP3's size.
    audio_max_duration_seconds: int = 3600
    audio_max_stored_bytes: int = 64 * 1024 * 1024
    # Audio users (unauthenticated) one client address may create per hour.
    audio_users_per_hour: int = 20
    ffmpeg_binary: str | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "console"
    board_message_ttl_seconds: int = 300
    board_max_live_messages: int = 10_000
    # Messages per page of /board/messages (newest first).
    board_page_size: int = 50
    access_token_ttl_seconds: int = 900
    # argon2id cost; production refuses less than OWASP's minimum (19 MiB, 2 passes).
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65536
    password_hash_parallelism: int = 4
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # A refresh token presented again this soon after its rotation (two tabs refreshing at
    # once) answers another pair of the same session instead of revoking the session.
    refresh_reuse_grace_seconds: float = 5.0
    # How long a signed-in account read by one request serves the next ones (GET, HEAD) of
    # this process without a query; its own writes here end it at once, other replicas' edits
    # show after at most this long (revocation and deletion are checked on every request).
    auth_user_cache_seconds: float = 5.0
    max_upload_bytes: int = 20 * 1024 * 1024
    # A request body must start within this many seconds, then keep up the minimum rate
    # (each REQUEST_BODY_MIN_RATE bytes buy a second): app/lib/bodies.py.
    request_body_timeout_seconds: float = 20.0
    request_body_min_rate: int = 500
    db_pool_size: int = 10
    # After a commit, the Socket.IO events and notifications run off the request path in
    # this many workers per process (each at most one database connection at a time, so
    # keep it well under DB_POOL_SIZE), each queueing at most ANNOUNCE_QUEUE_SIZE commits;
    # a full queue makes the writer wait up to ANNOUNCE_WAIT_SECONDS (logged), then the
    # announcement is dropped with an error in the log.
    announce_workers: int = 4
    announce_queue_size: int = 200
    announce_wait_seconds: float = 5.0
    # Messenger: sign-in throttling, presence expiry, avatar and attachment limits.
    login_attempts_per_minute: int = 10
    # Failed sign-ins to one phone from anywhere slow every further attempt on it (doubling
    # from 0.5 s, at most this long) instead of locking the owner out.
    login_max_delay_seconds: float = 8.0
    registrations_per_hour: int = 20
    # Region for phone numbers written without a country code (89161234501).
    default_phone_region: str = "RU"
    # Searches by a full phone number, per signed-in user and hour (phone enumeration).
    phone_lookups_per_hour: int = 30
    # A connection counts as online this long after its replica's last heartbeat (every
    # third of it); a killed replica's users go offline within about 4/3 of it.
    presence_ttl_seconds: int = 9
    socketio_cors_origins: tuple[str, ...] = ()
    # Socket.IO connections: per account (every replica together), per client address (per
    # replica), and how long a connection may stay open without signing in.
    socketio_max_connections_per_user: int = 20
    socketio_max_connections_per_address: int = 500
    socketio_handshake_timeout_seconds: float = 10.0
    # True only where this is the one process serving Socket.IO (one uvicorn worker, one
    # replica): events then go straight to the local sockets instead of through Redis
    # pub/sub. With several workers or replicas it must stay false, or members connected
    # elsewhere would not hear anything. Without Redis (the embedded default) there is no
    # Redis fan-out anyway.
    socketio_single_process: bool = False
    # Per-user limits (per minute, every replica together; 0 turns one off): 429 with
    # Retry-After over REST, the same problem in a Socket.IO acknowledgement.
    messages_per_minute: int = 600
    typing_events_per_minute: int = 120
    chats_created_per_minute: int = 30
    membership_changes_per_minute: int = 60
    # One user's writes running at once in a process (the rest wait, then 429): no client
    # holds the database pool.
    user_writes_in_flight: int = 4
    user_write_wait_seconds: float = 10.0
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 20_000_000
    # Threads that decode and resize images, apart from the default pool password hashing uses.
    image_workers: int = 2
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
    def secure_cookies(self) -> bool:
        """Whether the session and CSRF cookies carry ``Secure`` (sent over https only)."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        if self.public_base_url:
            return self.public_base_url.lower().startswith("https://")
        return self.env == "production"

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
            trusted_proxies=_env_list("TRUSTED_PROXIES"),
            cookie_secure=_env_bool("COOKIE_SECURE"),
            allowed_hosts=_env_list("ALLOWED_HOSTS"),
            docs_enabled=_env_bool("DOCS_ENABLED") is not False,
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
            trivia_max_idle_rounds=_env_int(
                "TRIVIA_MAX_IDLE_ROUNDS", defaults.trivia_max_idle_rounds
            ),
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
            audio_max_duration_seconds=_env_int(
                "AUDIO_MAX_DURATION_SECONDS", defaults.audio_max_duration_seconds
            ),
            audio_max_stored_bytes=_env_int(
                "AUDIO_MAX_STORED_BYTES", defaults.audio_max_stored_bytes
            ),
            audio_users_per_hour=_env_int("AUDIO_USERS_PER_HOUR", defaults.audio_users_per_hour),
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
            password_hash_time_cost=_env_int(
                "PASSWORD_HASH_TIME_COST", defaults.password_hash_time_cost
            ),
            password_hash_memory_kib=_env_int(
                "PASSWORD_HASH_MEMORY_KIB", defaults.password_hash_memory_kib
            ),
            password_hash_parallelism=_env_int(
                "PASSWORD_HASH_PARALLELISM", defaults.password_hash_parallelism
            ),
            refresh_reuse_grace_seconds=_env_float(
                "REFRESH_REUSE_GRACE_SECONDS", defaults.refresh_reuse_grace_seconds
            ),
            auth_user_cache_seconds=_env_float(
                "AUTH_USER_CACHE_SECONDS", defaults.auth_user_cache_seconds
            ),
            max_upload_bytes=_env_int("MAX_UPLOAD_BYTES", defaults.max_upload_bytes),
            request_body_timeout_seconds=_env_float(
                "REQUEST_BODY_TIMEOUT_SECONDS", defaults.request_body_timeout_seconds
            ),
            request_body_min_rate=_env_int("REQUEST_BODY_MIN_RATE", defaults.request_body_min_rate),
            db_pool_size=_env_int("DB_POOL_SIZE", defaults.db_pool_size),
            announce_workers=_env_int("ANNOUNCE_WORKERS", defaults.announce_workers),
            announce_queue_size=_env_int("ANNOUNCE_QUEUE_SIZE", defaults.announce_queue_size),
            announce_wait_seconds=_env_float(
                "ANNOUNCE_WAIT_SECONDS", defaults.announce_wait_seconds
            ),
            login_attempts_per_minute=_env_int(
                "LOGIN_ATTEMPTS_PER_MINUTE", defaults.login_attempts_per_minute
            ),
            login_max_delay_seconds=_env_float(
                "LOGIN_MAX_DELAY_SECONDS", defaults.login_max_delay_seconds
            ),
            default_phone_region=(
                _env("DEFAULT_PHONE_REGION", defaults.default_phone_region)
                or defaults.default_phone_region
            ).upper(),
            phone_lookups_per_hour=_env_int(
                "PHONE_LOOKUPS_PER_HOUR", defaults.phone_lookups_per_hour
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
            socketio_single_process=_env_bool("SOCKETIO_SINGLE_PROCESS") is True,
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
            user_writes_in_flight=_env_int("USER_WRITES_IN_FLIGHT", defaults.user_writes_in_flight),
            user_write_wait_seconds=_env_float(
                "USER_WRITE_WAIT_SECONDS", defaults.user_write_wait_seconds
            ),
            socketio_cors_origins=tuple(
                origin.strip()
                for origin in (_env("SOCKETIO_CORS_ORIGINS", "") or "").split(",")
                if origin.strip()
            ),
            max_image_bytes=_env_int("MAX_IMAGE_BYTES", defaults.max_image_bytes),
            max_image_pixels=_env_int("MAX_IMAGE_PIXELS", defaults.max_image_pixels),
            image_workers=_env_int("IMAGE_WORKERS", defaults.image_workers),
            max_file_bytes=_env_int("MAX_FILE_BYTES", defaults.max_file_bytes),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse configurations that are unsafe to run."""
        if not 1 <= self.trivia_max_questions <= 100:
            raise ConfigurationError("TRIVIA_MAX_QUESTIONS must be between 1 and 100")
        if self.trivia_max_idle_rounds < 1:
            raise ConfigurationError("TRIVIA_MAX_IDLE_ROUNDS must be at least 1")
        if self.audio_max_duration_seconds < 1 or self.audio_max_stored_bytes < 1024:
            raise ConfigurationError(
                "AUDIO_MAX_DURATION_SECONDS must be at least 1, AUDIO_MAX_STORED_BYTES at least 1024"
            )
        if self.audio_users_per_hour < 1:
            raise ConfigurationError("AUDIO_USERS_PER_HOUR must be at least 1")
        if self.request_body_timeout_seconds <= 0 or self.request_body_min_rate < 1:
            raise ConfigurationError(
                "REQUEST_BODY_TIMEOUT_SECONDS must be positive, REQUEST_BODY_MIN_RATE at least 1"
            )
        if self.board_message_ttl_seconds < 1:
            raise ConfigurationError("BOARD_MESSAGE_TTL_SECONDS must be at least 1")
        if self.board_max_live_messages < 1:
            raise ConfigurationError("BOARD_MAX_LIVE_MESSAGES must be at least 1")
        if not 1 <= self.board_page_size <= 500:
            raise ConfigurationError("BOARD_PAGE_SIZE must be between 1 and 500")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ConfigurationError(
                    f"TRUSTED_PROXIES must list IP addresses or CIDR networks, got {proxy!r}"
                ) from exc
        if self.worker_heartbeat_seconds < 2:
            raise ConfigurationError("WORKER_HEARTBEAT_SECONDS must be at least 2")
        if (
            self.password_hash_time_cost < 1
            or self.password_hash_memory_kib < 8 * self.password_hash_parallelism
            or self.password_hash_parallelism < 1
        ):
            raise ConfigurationError(
                "PASSWORD_HASH_TIME_COST and PASSWORD_HASH_PARALLELISM must be at least 1, "
                "PASSWORD_HASH_MEMORY_KIB at least 8 per lane"
            )
        if not 0 <= self.auth_user_cache_seconds <= 60:
            raise ConfigurationError("AUTH_USER_CACHE_SECONDS must be between 0 and 60")
        if not 0 <= self.refresh_reuse_grace_seconds <= 60:
            raise ConfigurationError("REFRESH_REUSE_GRACE_SECONDS must be between 0 and 60")
        if self.login_max_delay_seconds < 0:
            raise ConfigurationError("LOGIN_MAX_DELAY_SECONDS must not be negative")
        if self.default_phone_region not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigurationError(
                f"DEFAULT_PHONE_REGION must be a region code such as RU, got "
                f"{self.default_phone_region!r}"
            )
        if self.image_workers < 1:
            raise ConfigurationError("IMAGE_WORKERS must be at least 1")
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
        if (
            self.announce_workers < 1
            or self.announce_queue_size < 1
            or self.announce_wait_seconds <= 0
        ):
            raise ConfigurationError(
                "ANNOUNCE_WORKERS and ANNOUNCE_QUEUE_SIZE must be at least 1, "
                "ANNOUNCE_WAIT_SECONDS positive"
            )
        if self.user_writes_in_flight < 1 or self.user_write_wait_seconds <= 0:
            raise ConfigurationError(
                "USER_WRITES_IN_FLIGHT must be at least 1 and USER_WRITE_WAIT_SECONDS positive"
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
        if self.password_hash_memory_kib < 19456 or self.password_hash_time_cost < 2:
            problems.append(
                "PASSWORD_HASH_MEMORY_KIB must be at least 19456 and PASSWORD_HASH_TIME_COST "
                "at least 2 (OWASP's minimum for argon2id)"
            )
        secrets = [
            ("SECRET_KEY", self.secret_key, 32, MIN_SECRET_KEY_BITS),
            ("ADMIN_API_KEY", self.admin_api_key, 16, MIN_ADMIN_API_KEY_BITS),
        ]
        for name, value, min_length, min_bits in secrets:
            if is_published_secret(value):
                problems.append(f"{name} is a value published in the Quintet repository")
            elif len(value) < min_length or estimated_bits(value) < min_bits:
                problems.append(
                    f"{name} must be a random value of at least {min_length} characters "
                    "(e.g. openssl rand -hex 32); this one is too short or too regular"
                )
        if self.telegram_webhook_secret and is_published_secret(self.telegram_webhook_secret):
            problems.append(
                "TELEGRAM_WEBHOOK_SECRET is a value published in the Quintet repository"
            )
        if not self.public_base_url and not self.allowed_hosts:
            problems.append(
                "set PUBLIC_BASE_URL (the base of absolute links) or ALLOWED_HOSTS, so that "
                "a client's Host header cannot choose the host of the URLs the app returns"
            )
        if problems:
            raise ConfigurationError("refusing to start in production: " + "; ".join(problems))


def _env_list(name: str) -> tuple[str, ...]:
    """A comma-separated setting: its non-empty items, stripped."""
    return tuple(item.strip() for item in (_env(name, "") or "").split(",") if item.strip())


def is_published_secret(value: str) -> bool:
    return hashlib.sha256(value.encode()).hexdigest() in PUBLISHED_SECRET_SHA256


def estimated_bits(value: str) -> float:
    """A secret's entropy as its own characters suggest: length x Shannon entropy per
    character, and nothing for a value that is one short pattern repeated."""
    if not value:
        return 0.0
    for period in range(1, len(value) // 2 + 1):
        if len(value) % period == 0 and value == value[:period] * (len(value) // period):
            return 0.0
    counts = Counter(value)
    per_char = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return len(value) * per_char


def normalise_database_url(url: str) -> str:
    """Accept the URLs operators usually have (``postgres://``) and pick the async drivers."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url
