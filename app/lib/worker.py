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

A worker killed in the middle of a job (SIGKILL, OOM, a lost node) cannot report it. SAQ
only retries such a job when its sweep finds it "stuck": past its ``timeout`` or, when the
job has a ``heartbeat``, untouched for that long. Jobs enqueued with
``heartbeat=settings.worker_heartbeat_seconds`` are touched by the worker every third of it
while they run (:func:`with_heartbeat`), and the sweep runs every third of it too, so a dead
worker's job is retried within about that many seconds plus the sweep's abort wait (2 s),
instead of after its full timeout.

In the web process the queue is connected and the in-process worker stopped by a lifespan
exited before every other one, so a stop waits only for running jobs
(:func:`app.lib.saq_patches.stop_worker`). What this relies on inside SAQ lives in
app/lib/saq_patches.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from litestar.plugins import InitPluginProtocol
from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from redis.asyncio import Redis
from saq.job import Job
from saq.queue.base import Queue
from saq.queue.redis import RedisQueue

from app.config import Settings
from app.lib.redis import create_redis
from app.lib.saq_patches import CarefulSweepRedisQueue, EmbeddedRedisQueue, stop_worker

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
    from litestar import Litestar
    from litestar.config.app import AppConfig

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


def with_heartbeat(function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The task, touching its job while it runs when the job has a ``heartbeat``.

    The touch happens inside the task, so it always precedes the worker's own final write of
    the job (complete, failed, retried) and cannot overwrite it.
    """

    @functools.wraps(function)
    async def run(ctx: WorkerContext, **kwargs: Any) -> Any:
        job: Job | None = ctx.get("job")
        if job is None or not job.heartbeat:
            return await function(ctx, **kwargs)

        async def beat(interval: float) -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await job.update()
                except Exception:  # Redis blinked: the next beat tries again
                    logger.warning("job_heartbeat_failed", job=job.key, exc_info=True)

        beating = asyncio.create_task(beat(job.heartbeat / 3), name=f"heartbeat:{job.key}")
        try:
            return await function(ctx, **kwargs)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    return run


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
        # Entered after the application's other lifespans (and before the on_startup hook
        # that starts the in-process worker), so exited first: the worker's jobs finish
        # while Redis, the database and Socket.IO are still there.
        app_config.lifespan.append(self.running)
        # litestar-saq's own stop hook runs after every lifespan has ended; ours replaces it.
        in_process = {
            worker.on_app_shutdown
            for worker in self.setup.saq.get_workers().values()
            if not worker.separate_process
        }
        app_config.on_shutdown = [hook for hook in app_config.on_shutdown if hook not in in_process]
        return app_config

    @contextlib.asynccontextmanager
    async def running(self, _: Litestar) -> AsyncIterator[None]:
        queue = self.setup.queue
        await queue.connect()
        try:
            yield
        finally:
            for worker in self.setup.saq.get_workers().values():
                if not worker.separate_process:
                    await stop_worker(worker)
            try:
                await queue.disconnect()
            except Exception:  # best effort: the process is going away anyway
                logger.warning("worker_queue_disconnect_failed", exc_info=True)


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

    functions = [with_heartbeat(function) for part in contributions for function in part.functions]
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
        # Sweep for jobs of dead workers every third of the heartbeat (module docstring).
        "timers": {"schedule": 1, "sweep": max(1, settings.worker_heartbeat_seconds // 3)},
        "shutdown_grace_period_s": 5,
        # A finite blocking pop: on shutdown every slot returns within this time instead of
        # being cancelled mid-BLMOVE, which can leave the server blocked on a connection
        # nobody reads any more; that connection would then take (and lose) the next job.
        "dequeue_timeout": DEQUEUE_TIMEOUT_SECONDS,
    }
    if settings.redis_url:
        # A client of its own: the worker blocks on BLMOVE, which must not hold connections
        # of the application's pool or run into its socket timeout. The queue closes it.
        broker: Any = Redis.from_url(settings.redis_url)
        queue_class: type[RedisQueue] = CarefulSweepRedisQueue
    else:
        broker = create_redis(settings)
        queue_class = EmbeddedRedisQueue
    queue_config = QueueConfig(broker_instance=broker, **common)
    saq_config = SAQConfig(queue_configs=[queue_config])
    queue = queue_class(
        broker,
        name=QUEUE_NAME,
        dump=saq_config.json_serializer,
        load=saq_config.json_deserializer,
    )
    saq_config.queue_instances = {QUEUE_NAME: queue}
    return WorkerSetup(SAQPlugin(saq_config))
