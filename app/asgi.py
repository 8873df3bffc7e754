"""The application factory: one place that wires plugins, routers, middleware and lifespan.

``create_asgi`` is what uvicorn serves (``uvicorn app.asgi:create_asgi --factory``): the
Litestar application and Socket.IO behind one edge layer (app/lib/edge.py), so every
response, a routing 404 included, carries a request id and the security headers. ``create_app`` is the Litestar application
itself, for the ``litestar --app app.asgi:create_app`` CLI (``database upgrade``, the
worker, the bot, seed data).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.base import DefineMiddleware
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.stores.redis import RedisStore
from litestar.types import ASGIApp
from redis.asyncio import Redis

from app.config import Settings
from app.domain.accounts.authentication import configure_user_cache, create_bearer_auth
from app.domain.accounts.controllers import (
    AuthController,
    AvatarController,
    SessionController,
    UserController,
)
from app.domain.achievements.controllers import AchievementController, PlayerController
from app.domain.achievements.pages import AchievementsPageController
from app.domain.achievements.plugin import AchievementsCLIPlugin
from app.domain.audio.controllers import AudioController, RecordDownloadController
from app.domain.audio.encoding import AudioConverter
from app.domain.audio.pages import AudioPageController
from app.domain.board.controllers import BoardAccountController, BoardMessageController
from app.domain.home.controllers import HomeController
from app.domain.messenger.asyncapi import AsyncAPIController
from app.domain.messenger.asyncapi_page import AsyncAPIPageController
from app.domain.messenger.controllers import (
    AttachmentController,
    ChatController,
    InvitationController,
    MessageController,
)
from app.domain.messenger.pages import ChatPageController
from app.domain.messenger.sockets import account_check, register_socket_handlers
from app.domain.telegram.controllers import TelegramBindingController, TelegramWebhookController
from app.domain.telegram.plugin import TelegramPlugin, create_notifier
from app.domain.telegram.tasks import telegram_worker_tasks
from app.domain.trivia.controllers import TriviaController
from app.domain.trivia.plugin import TriviaPlugin
from app.lib.announcer import Announcer
from app.lib.auth import PUBLIC_ROUTE, RevokedSessionFeed
from app.lib.bodies import BodyDeadlineMiddleware, BodyDecodingRequest
from app.lib.db import create_sqlalchemy_config, create_sqlalchemy_plugin, upgrade_database_async
from app.lib.dependencies import shared_dependencies
from app.lib.edge import EdgeMiddleware
from app.lib.errors import (
    NotFoundError,
    exception_handlers,
    page_exception_handlers,
    problem_details_plugin,
)
from app.lib.health import HealthController
from app.lib.hosts import AllowedHostsMiddleware
from app.lib.images import ImagePool
from app.lib.inflight import user_writes_in_flight
from app.lib.logging import ACCESS_LOG_OPT_OUT, configure_logging
from app.lib.metrics import METRICS_OPT_OUT, LeanPrometheusMiddleware
from app.lib.notifications import MessageNotifier
from app.lib.passwords import configure_password_hashing
from app.lib.realtime import Realtime
from app.lib.redis import EmbeddedRedisSnapshot, create_redis
from app.lib.sessions import (
    FixationSafeSessionConfig,
    SessionBoundCSRFMiddleware,
)
from app.lib.web import (
    create_openapi_config,
    create_static_routers,
    create_template_config,
    describe_parameters,
    document_problem_responses,
)
from app.lib.worker import create_worker

logger = structlog.get_logger("app")

# Static files: no request metrics, no access line.
STATIC_FILES_OPT = {METRICS_OPT_OUT: True, ACCESS_LOG_OPT_OUT: True}


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    configure_logging(settings)
    configure_password_hashing(settings)
    configure_user_cache(settings)
    redis = create_redis(settings)
    snapshot = EmbeddedRedisSnapshot.for_settings(settings, redis)
    db_config = create_sqlalchemy_config(settings)
    realtime = Realtime(settings, redis, account_exists=account_check(db_config))
    revoked_sessions = RevokedSessionFeed(redis, settings.access_token_ttl_seconds + 30)
    bearer_auth = create_bearer_auth(settings)
    announcer = Announcer(
        workers=settings.announce_workers,
        queue_size=settings.announce_queue_size,
        wait_seconds=settings.announce_wait_seconds,
    )
    image_pool = ImagePool(settings.image_workers)
    worker = create_worker(settings, redis, db_config, [telegram_worker_tasks])
    notifier = create_notifier(settings, redis, worker.queue)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:  # noqa: ARG001 - Litestar's lifespan signature
        if settings.embedded:
            # The newcomer's run has no separate migration job: bring the SQLite file up to date.
            await upgrade_database_async(settings)
        if snapshot is not None:  # the embedded stand-in's data, kept across restarts
            await snapshot.start()
        logger.info("started", env=settings.env, embedded=settings.embedded)
        try:
            yield
        finally:
            if snapshot is not None:
                await snapshot.stop()
            await redis.aclose()

    session_config = FixationSafeSessionConfig(
        key="quintet_session",
        max_age=7 * 24 * 3600,
        secure=settings.secure_cookies,
    )
    prometheus = PrometheusConfig(
        app_name="quintet",
        prefix="quintet",
        group_path=True,
        exclude_opt_key=METRICS_OPT_OUT,  # the scrape itself, static files
        middleware_class=LeanPrometheusMiddleware,
    )
    app = Litestar(
        route_handlers=[
            _pages(settings, session_config),
            RecordDownloadController,
            _token_routes(),
            Router(path="/", opt=STATIC_FILES_OPT, route_handlers=create_static_routers()),
        ],
        plugins=[
            problem_details_plugin(),
            create_sqlalchemy_plugin(db_config),
            *worker.plugins,
            TelegramPlugin(settings, redis, db_config),
            AchievementsCLIPlugin(settings),
            TriviaPlugin(settings, db_config),
        ],
        dependencies=shared_dependencies,
        middleware=[
            *([AllowedHostsMiddleware(settings.allowed_hosts)] if settings.allowed_hosts else []),
            prometheus.middleware,
            BodyDeadlineMiddleware(
                settings.request_body_timeout_seconds, settings.request_body_min_rate
            ),
            # Before the authentication: a user's writes queue holding no pooled connection.
            user_writes_in_flight,
            # Every route needs an access token unless its opt says PUBLIC_ROUTE.
            bearer_auth.middleware,
        ],
        stores={"sessions": RedisStore(redis, namespace="quintet:session")},
        after_exception=[session_config.load_for_error_page],
        template_config=create_template_config(),
        openapi_config=(
            create_openapi_config(security_backends=[bearer_auth.openapi_components])
            if settings.docs_enabled
            else None
        ),
        exception_handlers=exception_handlers,
        # Exited in reverse: the announcer drains while Redis and Socket.IO are still up.
        # The plugins append theirs (the trivia importer; the worker's, which is so exited
        # first: its jobs finish while everything they use is still there).
        lifespan=[
            lifespan,
            image_pool.running,
            revoked_sessions.running,
            realtime.lifespan,
            announcer.lifespan,
        ],
        state=_initial_state(settings, redis, db_config, realtime, announcer, notifier),
        request_max_body_size=settings.max_upload_bytes,
        request_class=BodyDecodingRequest,
        logging_config=None,
        debug=False,
    )
    register_socket_handlers(app)
    if settings.docs_enabled:
        document_problem_responses(app)
        describe_parameters(app)
    return app


def create_asgi(settings: Settings | None = None) -> ASGIApp:
    """The complete ASGI application that the web server runs."""
    settings = settings or Settings.from_env()
    app = create_app(settings)
    # One layer: forwarded headers, Socket.IO at /socket.io/, request id, security headers.
    return EdgeMiddleware(app, app.state.realtime.asgi_app(app), settings.trusted_proxies)


def _pages(settings: Settings, session_config: FixationSafeSessionConfig) -> Router:
    """The HTML pages, the only routes with the cookie session and the CSRF check (the
    other routes never enter either middleware); their errors are rendered as the error
    page for a browser."""
    return Router(
        path="/",
        middleware=[
            session_config.middleware,
            # Inside the session middleware: the token is bound to the session it loaded.
            DefineMiddleware(
                SessionBoundCSRFMiddleware,
                config=CSRFConfig(
                    secret=settings.secret_key,
                    cookie_name="quintet_csrf",
                    cookie_secure=settings.secure_cookies,
                    cookie_samesite="lax",
                ),
            ),
        ],
        exception_handlers=page_exception_handlers,
        route_handlers=[
            HomeController,
            BoardAccountController,
            BoardMessageController,
            AudioPageController,
            ChatPageController,
            AchievementsPageController,
        ],
    )


def _token_routes() -> Router:
    """The API (Bearer tokens), the probes, the metrics and the API documents: outside the
    page router, so no cookie session is loaded and no CSRF token checked for them."""
    return Router(
        path="/",
        route_handlers=[
            AsyncAPIController,
            AsyncAPIPageController,
            HealthController,
            MetricsController,
            TriviaController,
            AudioController,
            AuthController,
            SessionController,
            UserController,
            AvatarController,
            ChatController,
            MessageController,
            AttachmentController,
            InvitationController,
            PlayerController,
            AchievementController,
            TelegramBindingController,
            TelegramWebhookController,
        ],
    )


def direct_callers_only(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Metrics are for the scraper, which calls a pod directly: a request that came through
    a proxy (nginx, the ingress: both add X-Forwarded-For) is answered as if there were
    nothing here. A client cannot remove the header its proxy adds."""
    if "x-forwarded-for" in connection.headers:
        raise NotFoundError("Not found")


class MetricsController(PrometheusController):
    """Prometheus exposition at /metrics, kept out of the API docs and off the public edge."""

    include_in_schema = False
    guards = [direct_callers_only]
    opt = {**PUBLIC_ROUTE, METRICS_OPT_OUT: True, ACCESS_LOG_OPT_OUT: True}


def _initial_state(
    settings: Settings,
    redis: Redis,
    db_config: SQLAlchemyAsyncConfig,
    realtime: Realtime,
    announcer: Announcer,
    notifier: MessageNotifier,
) -> State:
    return State(
        {
            "settings": settings,
            "redis": redis,
            # For code that runs outside a request's dependency injection: the bearer
            # authentication's retrieve_user_handler and the Socket.IO event handlers.
            "db_config": db_config,
            "realtime": realtime,
            # Runs what a commit announces, off the request path (app/lib/announcer.py).
            "announcer": announcer,
            # Telegram when it is configured, else the log (create_notifier).
            "notifier": notifier,
            # Bounds the ffmpeg processes of the whole process.
            "audio_converter": AudioConverter(settings),
        }
    )
