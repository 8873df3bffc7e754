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
worker's job is retried within about that many seconds plus the sweep's 5 s abort wait,
instead of after its full timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from litestar.plugins import InitPluginProtocol
from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from redis.asyncio import Redis
from saq.job import Job, Status
from saq.queue.base import Queue
from saq.queue.redis import RedisQueue

from app.config import Settings
from app.lib.redis import create_redis

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
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


# SAQ's own snapshot of the active list for its sweep (saq/queue/redis.py, 0.26): taken at
# most once per ``lock`` seconds across all workers.
_SWEEP_SNAPSHOT = """
local id_jobs = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SETEX', KEYS[1], ARGV[1], 1)
    for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        id_jobs[i] = {v, redis.call('GET', v)}
    end
end
return id_jobs
"""


class CarefulSweepRedisQueue(RedisQueue):
    """SAQ's Redis queue with a sweep that leaves jobs being dequeued alone.

    SAQ sweeps every job of the active list whose status is not ACTIVE. A worker moves a job
    into that list one round trip before it marks it ACTIVE, and the schedule timer (which
    releases the debounced jobs) ticks together with the sweep timer, so a job just taken by
    a worker was regularly swept, aborted and run a second time (tobymao/saq#124, #277;
    every time here with a short sweep interval). This queue hands SAQ's sweep a snapshot in
    which such a job is read again after a moment: by then its worker has marked it ACTIVE
    (and the sweep only retries it if it is stuck), while the job of a worker that died in
    between is still not ACTIVE and is swept.
    """

    dequeue_grace_seconds = 0.5
    # How long the sweep waits for a stuck job's live worker to acknowledge the abort before
    # it retries the job (SAQ's default is 5 s; the worker checks for aborts every second).
    abort_wait_seconds = 2.0

    async def sweep(self, lock: int = 60, abort: float | None = None) -> list[str]:
        return await super().sweep(lock, self.abort_wait_seconds if abort is None else abort)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._snapshot = self.redis.register_script(_SWEEP_SNAPSHOT)
        # SAQ's sweep calls this instead of registering its own copy of the script.
        self._cleanup_script = self._settled_snapshot  # type: ignore[assignment]

    async def _settled_snapshot(
        self, keys: list[str], args: list[int], client: Any = None
    ) -> list[list[Any]]:
        id_jobs = await self._snapshot(keys=keys, args=args, client=client)
        settled: list[list[Any]] = []
        suspects: list[bytes] = []
        for job_id, job_bytes in id_jobs:
            job = self.deserialize(job_bytes)
            if job is not None and job.status not in (Status.ACTIVE, Status.ABORTING):
                suspects.append(job_id)
            else:
                settled.append([job_id, job_bytes])
        if suspects:
            await asyncio.sleep(self.dequeue_grace_seconds)
            still_active = set(await self.redis.lrange(self._active, 0, -1))
            for job_id in suspects:
                if job_id in still_active:
                    settled.append([job_id, await self.redis.get(job_id)])
        return settled


class EmbeddedRedisQueue(CarefulSweepRedisQueue):
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
        timeout: float = 0.0,  # noqa: ASYNC109, ARG002 - SAQ's signature
        poll_interval: float = 0.0,  # noqa: ARG002 - SAQ's signature
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
