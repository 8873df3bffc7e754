"""The background worker: one SAQ queue, wired into Litestar through litestar-saq.

* Production (REDIS_URL set): the web processes only enqueue; a separate process runs the
  jobs: ``litestar --app app.asgi:create_app workers run``.
* Embedded default (no REDIS_URL): the queue lives on the in-process fakeredis stand-in and
  the worker runs inside the web process (``WORKER_IN_PROCESS=true`` does the same with a
  real Redis, for a single-process deployment).

Domains contribute their task functions and start-up/shut-down hooks as :class:`WorkerTasks`;
this module knows nothing about them. Every job's context carries the shared resources
(``settings``, ``redis``, ``db_session_maker``) put there by the worker's start-up hook, so
a task never builds its own connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import structlog
from litestar.plugins import InitPluginProtocol
from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from saq.job import Job
from saq.queue.base import Queue
from saq.queue.redis import RedisQueue

from app.config import Settings
from app.lib.redis import create_redis

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
    from litestar.config.app import AppConfig
    from redis.asyncio import Redis

logger = structlog.get_logger("app.worker")

QUEUE_NAME = "default"
# Jobs that are not retried by their own code still get a couple of attempts.
DEFAULT_JOB_RETRIES = 3
DEQUEUE_TIMEOUT_SECONDS = 1.0

WorkerContext = dict[str, Any]
WorkerHook = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class WorkerTasks:
    """What a domain adds to the worker: task functions (``async def task(ctx, **kwargs)``)
    and hooks that put the domain's long-lived clients into the worker context."""

    functions: Sequence[Callable[..., Awaitable[Any]]]
    startup: Sequence[WorkerHook] = field(default_factory=tuple)
    shutdown: Sequence[WorkerHook] = field(default_factory=tuple)


class EmbeddedRedisQueue(RedisQueue):
    """SAQ's Redis queue on the fakeredis stand-in of the embedded run.

    Two things differ from a real Redis: fakeredis has no ``INFO`` (SAQ reads the server
    version from it to choose its pop command) and its blocking pops return at once when the
    list is empty, so an idle worker would spin a CPU. This queue states the version itself
    and dequeues with a non-blocking move followed by a short sleep when nothing is queued.
    """

    idle_poll_seconds = 0.2

    async def version(self) -> tuple[int, ...]:
        return (7, 2, 0)

    # SAQ's signature, timeout included.
    async def dequeue(
        self,
        timeout: float = 0.0,  # noqa: ASYNC109
        poll_interval: float = 0.0,
    ) -> Job | None:
        job_id = await self.redis.lmove(self._queued, self._active, "LEFT", "RIGHT")
        if job_id is None:
            await asyncio.sleep(self.idle_poll_seconds)
            return None
        return await self._get_job_by_id(job_id)


class WorkerSetup:
    """litestar-saq's plugin (the ``workers`` CLI group, the in-process worker) and a small
    plugin of ours for the queue's connection in the web process, which only enqueues.

    litestar-saq finds its plugin by exact type, so ours sits beside it instead of
    subclassing it; ``create_app`` registers both (:attr:`plugins`).
    """

    def __init__(self, saq: SAQPlugin) -> None:
        self.saq = saq
        self.plugins: list[InitPluginProtocol] = [saq, _QueueConnectionPlugin(self)]

    @property
    def queue(self) -> Queue:
        return self.saq.get_queue(QUEUE_NAME)


class _QueueConnectionPlugin(InitPluginProtocol):
    def __init__(self, setup: WorkerSetup) -> None:
        self.setup = setup

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        in_process = [w for w in self.setup.saq.get_workers().values() if not w.separate_process]
        queue = self.setup.queue

        async def connect_queue() -> None:
            await queue.connect()

        async def disconnect_queue() -> None:
            # Let in-process jobs finish before the queue's connections close under them.
            for worker in in_process:
                await worker.stop()
            try:
                await queue.disconnect()
            except Exception:  # best effort: the process is going away anyway
                logger.warning("worker_queue_disconnect_failed", exc_info=True)

        # The queue must be connected before the in-process worker starts using it.
        app_config.on_startup.insert(0, connect_queue)
        app_config.on_shutdown.append(disconnect_queue)
        return app_config


def create_worker(
    settings: Settings,
    redis: Redis,
    db_config: SQLAlchemyAsyncConfig,
    contributions: Sequence[WorkerTasks],
) -> WorkerSetup:
    """The worker for ``create_app``: one queue named ``default`` with every domain's tasks."""

    async def provide_shared_resources(ctx: WorkerContext) -> None:
        ctx["settings"] = settings
        ctx["redis"] = redis
        ctx["db_session_maker"] = db_config.create_session_maker()

    functions = [function for part in contributions for function in part.functions]
    startup = [provide_shared_resources, *(hook for part in contributions for hook in part.startup)]
    shutdown = [hook for part in contributions for hook in part.shutdown]
    common: dict[str, Any] = {
        "name": QUEUE_NAME,
        "tasks": functions,
        "startup": startup,
        "shutdown": shutdown or None,
        "concurrency": settings.worker_concurrency,
        "separate_process": not settings.run_worker_in_process,
        # Scheduled (debounced) jobs become due at whole seconds; check for them every second.
        "timers": {"schedule": 1},
        "shutdown_grace_period_s": 5,
        # A finite blocking pop: on shutdown every slot returns within this time instead of
        # being cancelled mid-BLMOVE, which can leave the server blocked on a connection
        # nobody reads any more; that connection would then take (and lose) the next job.
        "dequeue_timeout": DEQUEUE_TIMEOUT_SECONDS,
    }
    if settings.redis_url:
        # A client of its own: the worker blocks on BLMOVE, which must not hold connections
        # of the application's pool or run into its socket timeout.
        queue_config = QueueConfig(dsn=settings.redis_url, **common)
        return WorkerSetup(SAQPlugin(SAQConfig(queue_configs=[queue_config])))

    broker = create_redis(settings)
    queue_config = QueueConfig(broker_instance=broker, **common)
    saq_config = SAQConfig(queue_configs=[queue_config])
    queue = EmbeddedRedisQueue(
        cast("Any", broker),
        name=QUEUE_NAME,
        dump=saq_config.json_serializer,
        load=saq_config.json_deserializer,
    )
    saq_config.queue_instances = {QUEUE_NAME: queue}
    return WorkerSetup(SAQPlugin(saq_config))
