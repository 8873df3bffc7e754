"""Settings read from the environment into one typed object.

Each setting is declared once, as a field of :class:`Settings`: its type, default, bounds and
description (``Annotated[int, Meta(ge=1, description=...)]``). The variable is the field's
name upper-cased; msgspec converts the variables' text and enforces the bounds, and
``scripts/config_table.py`` writes the README's table from the same declarations.

The defaults describe the embedded run (SQLite file, in-process Redis stand-in); production
(``APP_ENV=production``) refuses to start while a secret still has its development default.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_type_hints

import msgspec
import msgspec.inspect as mi
import phonenumbers
from msgspec import Meta

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


class ConfigurationError(RuntimeError):
    """Raised when the environment describes a configuration that must not run."""


def normalise_database_url(url: str) -> str:
    """Accept the URLs operators usually have (``postgres://``) and pick the async drivers."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


# What a Meta's ``extra`` may say besides the description and bounds (all optional):
#   env:         the variable, when it is not the field's name upper-cased (None: none)
#   parse:       applied to the variable's text before the type conversion
#   production:  the default when APP_ENV=production
#   shown:       the default as the README table shows it (a path, a secret)
MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Every setting of the application, each declared once: its type, default, bounds and
    description. :meth:`from_env` reads each from the variable of its name upper-cased;
    ``scripts/config_table.py`` writes the README's table from these declarations."""

    env: Annotated[
        Environment,
        Meta(
            description="`production` refuses to start with default or weak secrets and "
            "switches logs to JSON",
            extra={"env": "APP_ENV"},
        ),
    ] = "development"
    database_url: Annotated[
        str,
        Meta(
            description="`postgresql://…` (made `postgresql+asyncpg://`) or "
            "`sqlite+aiosqlite:///…`",
            extra={"parse": normalise_database_url, "shown": "SQLite file `./var/quintet.db`"},
        ),
    ] = f"sqlite+aiosqlite:///{BASE_DIR / 'var' / 'quintet.db'}"
    redis_url: Annotated[
        str | None,
        Meta(description="`redis://host:6379/0`; unset: an in-process stand-in (embedded run)"),
    ] = None
    redis_max_connections: Annotated[
        int,
        Meta(
            ge=4,
            description="Redis connections per process (a blocking pool): past it a command "
            "waits for a free connection, up to `REDIS_POOL_TIMEOUT_SECONDS`, instead of "
            'failing with "Too many connections"',
        ),
    ] = 64
    redis_pool_timeout_seconds: Annotated[
        float, Meta(gt=0, description="how long a Redis command waits for a free connection")
    ] = 10.0
    secret_key: Annotated[
        str,
        Meta(
            description="signs sessions, CSRF tokens and JWTs; production refuses fewer than "
            "32 characters, regular values (`'a' * 32`) and every key published in this "
            "repository (kind, CI, docs): `openssl rand -hex 32`",
            extra={"shown": "a development value"},
        ),
    ] = DEV_SECRET_KEY
    admin_api_key: Annotated[
        str,
        Meta(
            description="`X-API-Key` for achievements writes; production refuses fewer than 16 "
            "characters, regular values and published keys: `openssl rand -hex 20`",
        ),
    ] = DEV_ADMIN_API_KEY
    public_base_url: Annotated[
        str | None,
        Meta(
            description="base of absolute URLs (audio download links); unset: from the "
            "request. Production needs it or `ALLOWED_HOSTS`"
        ),
    ] = None
    trusted_proxies: Annotated[
        tuple[str, ...],
        Meta(
            description="IPs or CIDRs of the reverse proxies (nginx, the ingress controller) "
            "whose `X-Forwarded-For`/`-Proto`/`-Host` and `Forwarded` headers give the "
            "client's address, scheme and host (app/lib/proxies.py); empty: no forwarded "
            "header is believed"
        ),
    ] = ()
    cookie_secure: Annotated[
        bool | None,
        Meta(
            description="the session and CSRF cookies carry `Secure` (sent back over https "
            "only); unset: `true` when `PUBLIC_BASE_URL` starts with `https://`, or in "
            "production without one. `false` for a plain-http install such as kind's"
        ),
    ] = None
    allowed_hosts: Annotated[
        tuple[str, ...],
        Meta(
            description="host names the app answers (`quintet.example.org,*.example.net`); "
            "others get 400, empty: any. `/health` and `/metrics` answer any host (probes "
            "call pods by address)"
        ),
    ] = ()
    docs_enabled: Annotated[
        bool,
        Meta(
            description="serve Swagger UI at `/docs/`, the schema at `/docs/openapi.json` and "
            "the Socket.IO events at `/docs/asyncapi.json` and `/docs/asyncapi`; `false` "
            "answers 404 there"
        ),
    ] = True
    telegram_bot_token: Annotated[
        str | None, Meta(description="the Telegram bot's token; unset: no bot")
    ] = None
    telegram_api_url: Annotated[
        str | None, Meta(description="a local Bot API server (or the tests' fake)")
    ] = None
    telegram_bot_username: Annotated[
        str, Meta(min_length=1, description="the bot's name in the binding links")
    ] = "QuintetNotifyBot"
    telegram_webhook_secret: Annotated[
        str | None,
        Meta(description="the webhook's secret token; production refuses published values"),
    ] = None
    telegram_notify_delay_seconds: Annotated[
        float,
        Meta(
            ge=0,
            description="messages to one user in one chat within this window become one "
            "Telegram notification",
        ),
    ] = 5.0
    telegram_link_ttl_seconds: Annotated[
        int, Meta(ge=1, description="how long a Telegram binding link works")
    ] = 900
    telegram_send_attempts: Annotated[
        int, Meta(ge=1, description="tries of one Telegram send before the job fails")
    ] = 5
    telegram_retry_base_seconds: Annotated[
        float, Meta(gt=0, description="first delay between Telegram send tries (doubling)")
    ] = 1.0
    telegram_job_retry_delay_seconds: Annotated[
        float,
        Meta(
            gt=0,
            description="first delay before a failed or swept notification job runs again "
            "(doubling, with jitter, up to 10 minutes)",
        ),
    ] = 30.0
    worker_in_process: Annotated[
        bool | None,
        Meta(description="run SAQ jobs inside the web process; unset: only in the embedded run"),
    ] = None
    worker_concurrency: Annotated[int, Meta(ge=1, description="SAQ jobs at once per worker")] = 10
    worker_heartbeat_seconds: Annotated[
        int,
        Meta(
            ge=2,
            description="a running job is touched every third of it; a job left untouched "
            "this long (its worker was killed) is swept and retried; the sweep runs every "
            "third of it",
        ),
    ] = 15
    trivia_api_url: Annotated[
        str | None, Meta(description="a jService-compatible upstream; unset: Open Trivia DB")
    ] = None
    trivia_max_questions: Annotated[
        int, Meta(ge=1, le=100, description="questions one import request may ask for")
    ] = 100
    trivia_opentdb_url: Annotated[
        str, Meta(min_length=1, description="the default upstream, Open Trivia DB")
    ] = "https://opentdb.com"
    trivia_timeout_seconds: Annotated[
        float, Meta(gt=0, description="each upstream request's timeout (docs/trivia-audio.md)")
    ] = 10.0
    trivia_max_idle_rounds: Annotated[
        int,
        Meta(
            ge=1,
            description="an import stops after this many upstream answers in a row that "
            "brought nothing new",
        ),
    ] = 3
    trivia_deadline_seconds: Annotated[
        float, Meta(gt=0, description="an import stops at this deadline")
    ] = 60.0
    audio_conversion_workers: Annotated[int, Meta(ge=1, description="ffmpeg processes at once")] = 2
    audio_max_pending_conversions: Annotated[
        int, Meta(ge=0, description="uploads waiting for an ffmpeg process (503 beyond)")
    ] = 16
    audio_mp3_bitrate: Annotated[
        str,
        Meta(
            pattern=r"^[0-9]+k$",
            description="the MP3 bitrate ceiling (the MP3 never exceeds the WAV's own)",
        ),
    ] = "128k"
    audio_max_duration_seconds: Annotated[
        int, Meta(ge=1, description="a longer recording is refused with 422")
    ] = 3600
    audio_max_stored_bytes: Annotated[
        int, Meta(ge=1024, description="a larger MP3 is refused with 413")
    ] = 64 * MiB
    audio_users_per_hour: Annotated[
        int,
        Meta(
            ge=1,
            description="new audio users one client address may create per hour (429 + "
            "Retry-After beyond)",
        ),
    ] = 20
    ffmpeg_binary: Annotated[
        str | None, Meta(description="the ffmpeg to run; unset: the one on PATH")
    ] = None
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        Meta(description="the log level (any case)", extra={"parse": str.upper}),
    ] = "INFO"
    log_format: Annotated[
        Literal["json", "console"],
        Meta(description="the log lines' format", extra={"production": "json"}),
    ] = "console"
    board_message_ttl_seconds: Annotated[
        int,
        Meta(
            ge=1,
            description="how long a board message lives (Redis `EX`); the pages and the "
            "confirmation say it",
        ),
    ] = 300
    board_max_live_messages: Annotated[
        int,
        Meta(
            ge=1,
            description="live messages the board holds at once; one more is refused with a "
            "clear message until some expire",
        ),
    ] = 10_000
    board_page_size: Annotated[
        int,
        Meta(
            ge=1,
            le=500,
            description="messages per page of `/board/messages` (newest first, `?page=N`)",
        ),
    ] = 50
    access_token_ttl_seconds: Annotated[
        int, Meta(ge=1, description="lifetime of an access token (JWT)")
    ] = 900
    password_hash_time_cost: Annotated[
        int,
        Meta(
            ge=1,
            description="argon2id passes of new password hashes (stored hashes keep theirs); "
            "production refuses less than 2 (OWASP's minimum)",
        ),
    ] = 3
    password_hash_memory_kib: Annotated[
        int,
        Meta(
            ge=8,
            description="argon2id memory of new password hashes, at least 8 per lane; "
            "production refuses less than 19456 (OWASP's minimum)",
        ),
    ] = 65536
    password_hash_parallelism: Annotated[
        int, Meta(ge=1, description="argon2id lanes of new password hashes")
    ] = 4
    refresh_token_ttl_seconds: Annotated[
        int, Meta(ge=1, description="lifetime of a refresh token (one sign-in's session)")
    ] = 30 * 24 * 3600
    refresh_reuse_grace_seconds: Annotated[
        float,
        Meta(
            ge=0,
            le=60,
            description="a refresh token presented again this soon after its rotation (two "
            "tabs at once) gets another pair of the same session; later, reuse revokes the "
            "session",
        ),
    ] = 5.0
    auth_user_cache_seconds: Annotated[
        float,
        Meta(
            ge=0,
            le=60,
            description="how long an account read for one signed-in request serves the next "
            "GET/HEAD requests of the same process without a query (0 turns it off); the "
            "process's own writes end it at once, edits on another replica show within it; "
            "revocation and deletion still take effect at once",
        ),
    ] = 5.0
    max_upload_bytes: Annotated[
        int,
        Meta(ge=1, description="largest request body (for audio uploads, the WAV file itself)"),
    ] = 20 * MiB
    request_body_timeout_seconds: Annotated[
        float,
        Meta(
            gt=0,
            description="a request body must start arriving within it, then keep up "
            "`REQUEST_BODY_MIN_RATE`; a slower body is cut off with 408 (Apache's "
            "`mod_reqtimeout` rule, app/lib/bodies.py)",
        ),
    ] = 20.0
    request_body_min_rate: Annotated[
        int, Meta(ge=1, description="each this many bytes of a body buy one more second")
    ] = 500
    db_pool_size: Annotated[int, Meta(ge=1, description="database connections per process")] = 10
    announce_workers: Annotated[
        int,
        Meta(
            ge=1,
            description="after a commit, the Socket.IO events and notifications run off the "
            "request path in this many workers per process (a chat's events always in the "
            "same worker, in order; each at most one database connection, so keep it well "
            "under `DB_POOL_SIZE`)",
        ),
    ] = 4
    announce_queue_size: Annotated[
        int, Meta(ge=1, description="commits one announce worker may have queued")
    ] = 200
    announce_wait_seconds: Annotated[
        float,
        Meta(
            gt=0,
            description="a writer whose announce worker is full waits this long (logged), "
            "then the announcement is dropped with an error in the log",
        ),
    ] = 5.0
    login_attempts_per_minute: Annotated[
        int,
        Meta(
            ge=1,
            description="board logins per client address a minute, messenger sign-ins per "
            "(phone, address) a minute (five times that per address); 429 with `Retry-After` "
            "beyond",
        ),
    ] = 10
    login_max_delay_seconds: Annotated[
        float,
        Meta(
            ge=0,
            description="failed sign-ins to one phone from anywhere slow every further "
            "attempt on it (0.5 s doubling up to this) instead of locking the owner out",
        ),
    ] = 8.0
    registrations_per_hour: Annotated[
        int, Meta(ge=1, description="messenger registrations per client address and hour")
    ] = 20
    default_phone_region: Annotated[
        str,
        Meta(
            description="region of phone numbers written without a country code "
            "(89161234501), any case",
            extra={"parse": str.upper},
        ),
    ] = "RU"
    phone_lookups_per_hour: Annotated[
        int,
        Meta(ge=0, description="searches by a full phone number per signed-in user and hour"),
    ] = 30
    presence_ttl_seconds: Annotated[
        int,
        Meta(
            ge=1,
            description="a connection counts as online this long after its replica's last "
            "heartbeat (sent every third of it); a killed replica's users go offline, with "
            "one `presence` event per contact, within about 4/3 of it",
        ),
    ] = 9
    socketio_cors_origins: Annotated[
        tuple[str, ...], Meta(description="origins allowed to open Socket.IO connections")
    ] = ()
    socketio_max_connections_per_user: Annotated[
        int, Meta(ge=1, description="Socket.IO sockets per account (all replicas together)")
    ] = 20
    socketio_max_connections_per_address: Annotated[
        int, Meta(ge=1, description="Socket.IO sockets per client address (per replica)")
    ] = 500
    socketio_handshake_timeout_seconds: Annotated[
        float, Meta(gt=0, description="how long a socket may stay open without signing in")
    ] = 10.0
    socketio_single_process: Annotated[
        bool,
        Meta(
            description="`true` only where one process serves all Socket.IO clients (one "
            "worker, one replica): events skip the Redis pub/sub relay. Never with several "
            "workers or replicas, or members connected elsewhere would hear nothing",
        ),
    ] = False
    messages_per_minute: Annotated[
        int,
        Meta(
            ge=0,
            description="messages per user a minute, every replica together (0 turns it "
            "off): 429 with `Retry-After` over REST, the same problem (with `retry_after`) in "
            "a Socket.IO acknowledgement; each process takes a fiftieth of a limit from Redis "
            "at a time",
        ),
    ] = 600
    typing_events_per_minute: Annotated[
        int, Meta(ge=0, description="typing events per user a minute (0: no limit)")
    ] = 120
    chats_created_per_minute: Annotated[
        int, Meta(ge=0, description="chats created per user a minute (0: no limit)")
    ] = 30
    membership_changes_per_minute: Annotated[
        int, Meta(ge=0, description="membership changes per user a minute (0: no limit)")
    ] = 60
    user_writes_in_flight: Annotated[
        int,
        Meta(
            ge=1,
            description="one user's messenger writes (REST POST/PUT/PATCH/DELETE) running at "
            "once in a process, so that no client holds the database pool",
        ),
    ] = 4
    user_write_wait_seconds: Annotated[
        float,
        Meta(gt=0, description="a write waits this long for a slot, then 429 + Retry-After"),
    ] = 10.0
    max_image_bytes: Annotated[int, Meta(ge=1, description="largest image upload")] = 10 * MiB
    max_image_pixels: Annotated[
        int, Meta(ge=1, description="largest image, in pixels (decompression bombs)")
    ] = 20_000_000
    image_workers: Annotated[
        int,
        Meta(
            ge=1,
            description="threads that decode and resize images, a pool apart from the one "
            "password hashing uses",
        ),
    ] = 2
    max_file_bytes: Annotated[int, Meta(ge=1, description="largest attachment")] = 10 * MiB
    extra: Annotated[
        dict[str, str], Meta(description="free-form values set in code", extra={"env": None})
    ] = field(default_factory=dict)

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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment (``os.environ`` by default) describes, checked."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in declared_settings():
            raw = environ.get(spec.variable, "") if spec.variable else ""
            if raw != "":  # an empty variable is an unset one
                values[spec.name] = spec.read(raw)
        if values.get("env") == "production":
            for spec in declared_settings():
                if spec.production_default is not None and spec.name not in values:
                    values[spec.name] = spec.production_default
        settings = _convert(values, strict=False)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse configurations that are unsafe to run: the declared types and bounds, then
        what involves several settings or the environment."""
        _convert(asdict(self), strict=True)
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ConfigurationError(
                    f"TRUSTED_PROXIES must list IP addresses or CIDR networks, got {proxy!r}"
                ) from exc
        if self.password_hash_memory_kib < 8 * self.password_hash_parallelism:
            raise ConfigurationError(
                "PASSWORD_HASH_MEMORY_KIB must be at least 8 per lane (PASSWORD_HASH_PARALLELISM)"
            )
        if self.default_phone_region not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigurationError(
                f"DEFAULT_PHONE_REGION must be a region code such as RU, got "
                f"{self.default_phone_region!r}"
            )
        if self.env == "production":
            self._check_production()

    def _check_production(self) -> None:
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


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class SettingSpec:
    """One field of :class:`Settings` as its declaration describes it."""

    name: str
    variable: str | None
    description: str
    default: Any
    kind: mi.Type  # the type without its Meta, None unwrapped
    optional: bool
    extra: dict[str, Any]
    choices: tuple[Any, ...] = ()  # a Literal's values, in their declared order

    @property
    def production_default(self) -> Any:
        return self.extra.get("production")

    def read(self, raw: str) -> Any:
        """The variable's text as the value msgspec converts (lists split, booleans worded)."""
        if isinstance(self.kind, mi.BoolType):
            if raw.strip().lower() in _TRUE:
                return True
            if raw.strip().lower() in _FALSE:
                return False
            raise ConfigurationError(f"{self.variable} must be true or false, got {raw!r}")
        if isinstance(self.kind, mi.VarTupleType):
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        parse = self.extra.get("parse")
        return parse(raw) if parse else raw

    @property
    def expected(self) -> str:
        """What the setting accepts, in words: "an integer between 1 and 500"."""
        kind = self.kind
        if isinstance(kind, mi.BoolType):
            return "true or false"
        if isinstance(kind, mi.LiteralType):
            words = [str(value) for value in self.choices or kind.values]
            return ", ".join(words[:-1]) + " or " + words[-1]
        if isinstance(kind, mi.VarTupleType):
            return "a comma-separated list"
        if isinstance(kind, mi.IntType | mi.FloatType):
            noun = "an integer" if isinstance(kind, mi.IntType) else "a number"
            return noun + _bounds(kind.ge, kind.gt, kind.le)
        if isinstance(kind, mi.StrType) and kind.pattern:
            return f"text matching {kind.pattern}"
        if isinstance(kind, mi.StrType) and kind.min_length:
            return "non-empty text"
        return "text"

    def refusal(self, value: Any) -> ConfigurationError:
        return ConfigurationError(f"{self.variable} must be {self.expected}, got {value!r}")


def _bounds(ge: float | None, gt: float | None, le: float | None) -> str:
    if ge is not None and le is not None:
        return f" between {ge:g} and {le:g}"
    if gt == 0:
        return " greater than 0"
    if gt is not None:
        return f" greater than {gt:g}"
    if ge is not None:
        return f" of at least {ge:g}"
    if le is not None:
        return f" of at most {le:g}"
    return ""


@cache
def declared_settings() -> tuple[SettingSpec, ...]:
    """The declaration of every setting, read once from the annotations of :class:`Settings`."""
    info = mi.type_info(Settings)
    assert isinstance(info, mi.DataclassType)
    hints = get_type_hints(Settings)  # Annotated stripped; msgspec sorts a Literal's values
    specs = []
    for item in info.fields:
        kind, description, extra = item.type, "", {}
        if isinstance(kind, mi.Metadata):
            description = (kind.extra_json_schema or {}).get("description", "")
            extra = dict(kind.extra or {})
            kind = kind.type
        optional = isinstance(kind, mi.UnionType) and any(
            isinstance(t, mi.NoneType) for t in kind.types
        )
        if isinstance(kind, mi.UnionType):
            kind = next(t for t in kind.types if not isinstance(t, mi.NoneType))
        default = (
            item.default_factory()
            if item.default_factory is not msgspec.NODEFAULT
            else item.default
        )
        specs.append(
            SettingSpec(
                name=item.name,
                variable=extra.get("env", item.name.upper()),
                description=description,
                default=default,
                kind=kind,
                optional=optional,
                extra=extra,
                choices=get_args(hints[item.name]) if isinstance(kind, mi.LiteralType) else (),
            )
        )
    return tuple(specs)


def _convert(values: dict[str, Any], *, strict: bool) -> Settings:
    """``Settings`` from field values, through msgspec so that the declared types and bounds
    hold; a refusal names the variable, what it accepts and the value given."""
    try:
        return msgspec.convert(values, Settings, strict=strict)
    except msgspec.ValidationError as exc:
        where = re.search(r"`\$\.(\w+)", str(exc))
        spec = next((s for s in declared_settings() if where and s.name == where[1]), None)
        if spec is None:
            raise ConfigurationError(str(exc)) from exc
        raise spec.refusal(values.get(spec.name)) from exc


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
