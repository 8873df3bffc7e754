"""Every place where the application reaches into SAQ's internals, and why.

SAQ is pinned to one minor version (pyproject.toml); tests/lib/test_saq_patches.py compares
the source of each upstream piece patched here with the one the patch was written against,
so an upgrade that changes them fails a test instead of silently breaking the worker.

1. The sweep aborts jobs that are being dequeued (tobymao/saq#124, closed without a fix, and
   #277, open: "The task was swept during execution"). ``RedisQueue.dequeue`` moves a job
   into the active list one round trip before the worker marks it ACTIVE, and the sweep
   treats every job of that list whose status is not ACTIVE as left behind by a dead worker:
   it aborts it and retries it, so the job runs twice. The schedule timer (which releases
   the debounced jobs) ticks together with the sweep timer, so here, with a short sweep
   interval, this happened every time. :class:`CarefulSweepRedisQueue` hands the sweep a
   snapshot in which such a job is read again after a moment: by then its worker has marked
   it ACTIVE, while the job of a worker that died in between is still not and is swept.
   Patched: ``RedisQueue._cleanup_script`` (the sweep's Lua script, copied) and the
   ``abort`` wait of ``RedisQueue.sweep``.
2. fakeredis (the embedded run) has no ``INFO`` and its blocking pops return at once:
   :class:`EmbeddedRedisQueue` states the server version and dequeues without blocking,
   through ``RedisQueue._queued``, ``_active`` and ``_get_job_by_id``.
3. ``Worker.stop`` waits up to ``shutdown_grace_period_s`` for *all* its tasks, the upkeep
   loops included, and those only look at the stop event between sleeps of up to
   ``timers["worker_info"]`` (10 s) or the sweep interval. So every stop of an idle
   in-process worker waited the whole grace period and logged "Some tasks did not finish
   within the shutdown grace period". :func:`stop_worker` cancels the upkeep loops (they
   only repeat periodic work) and then lets ``Worker.stop`` wait for the jobs alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from litestar_saq.base import Worker as LitestarWorker
from saq.job import Job, Status
from saq.queue.redis import RedisQueue

# The releases the patches below were written against; the test checks the installed ones.
PATCHED_SAQ_VERSION = "0.26.4"
PATCHED_LITESTAR_SAQ_VERSION = "0.8.0"
# sha256 of ``inspect.getsource`` of each patched upstream piece in that release.
PATCHED_SOURCES = {
    "saq.queue.redis.RedisQueue.__init__": (
        "185e71cad7816124e27912e2719565266a6ecedeb047a48169a1bc6f181815f5"
    ),
    "saq.queue.redis.RedisQueue.sweep": (
        "3777246cdb502e29e4fef86aabd0155ebee5e32ee981962613514d675b918f3a"
    ),
    "saq.queue.redis.RedisQueue.dequeue": (
        "647860b66118b288867de5a2f5d769251e984eb947e4b205ee5d514e797d1f8b"
    ),
    "saq.queue.redis.RedisQueue._get_job_by_id": (
        "542693ad35371f84e0a45b9d482234b71ff61587b73dc1b8e4b4edaee557f548"
    ),
    "saq.queue.redis.RedisQueue.version": (
        "e60bf6a4abe6d1d10cf7ed936f74c6b9ba78a0176b7c07c48f9f9e2d4073fc8f"
    ),
    "saq.worker.Worker.stop": ("5739476f91fb73211de35959851e73a850823adea99b973b70b044c656508abd"),
    "saq.worker.Worker.upkeep": (
        "4c7ac2ba09df82db2cdaa7a676cfda2a3b6a47bde44bb52c3ab6df15959c94ee"
    ),
    "litestar_saq.base.Worker.on_app_startup": (
        "e9e6ef4e65e1bb66d9c12b492ce291e581c85683213a7fe6c1912ebaffb09c0c"
    ),
    "litestar_saq.base.Worker.on_app_shutdown": (
        "bb1cc8e27d09b2e18d620d210825c3626bdf7fa0a2af2ca49eff7cf68751e890"
    ),
    "saq.worker.Worker._process": (
        "599470eb54da4e6fa159c9ddaddd213e679a0d3dac934526f59560aef0409053"
    ),
}

UPKEEP_CANCEL_RETRY_SECONDS = 0.1

# SAQ's own snapshot of the active list for its sweep (the script registered in
# ``RedisQueue.sweep``): taken at most once per ``lock`` seconds across all workers.
SWEEP_SNAPSHOT = """
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
    """SAQ's Redis queue with a sweep that leaves jobs being dequeued alone (patch 1)."""

    dequeue_grace_seconds = 0.5
    # How long the sweep waits for a stuck job's live worker to acknowledge the abort before
    # it retries the job (SAQ's default is 5 s; the worker checks for aborts every second).
    abort_wait_seconds = 2.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._snapshot = self.redis.register_script(SWEEP_SNAPSHOT)
        # SAQ's sweep calls this instead of registering its own copy of the script.
        self._cleanup_script = self._settled_snapshot  # type: ignore[assignment]

    async def sweep(self, lock: int = 60, abort: float | None = None) -> list[str]:
        return await super().sweep(lock, self.abort_wait_seconds if abort is None else abort)

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
    """SAQ's Redis queue on the fakeredis stand-in of the embedded run (patch 2): states the
    server version itself and dequeues with a non-blocking move followed by a short sleep
    when nothing is queued, so an idle worker does not spin a CPU."""

    idle_poll_seconds = 0.2

    async def version(self) -> tuple[int, ...]:
        return (7, 2, 0)

    # SAQ's signature, timeout included.
    async def dequeue(
        self,
        timeout: float = 0.0,  # noqa: ASYNC109, ARG002
        poll_interval: float = 0.0,  # noqa: ARG002
    ) -> Job | None:
        job_id = await self.redis.lmove(self._queued, self._active, "LEFT", "RIGHT")
        if job_id is None:
            await asyncio.sleep(self.idle_poll_seconds)
            return None
        return await self._get_job_by_id(job_id)


async def stop_worker(worker: LitestarWorker) -> None:
    """Stop an in-process worker without waiting out its upkeep loops' sleeps (patch 3).

    The jobs (SAQ's tasks named ``process``) still get the whole grace period; their
    dequeue returns within ``dequeue_timeout`` when nothing is running. Then litestar-saq's
    own shutdown hook stops its heartbeat manager; the tasks in which it runs ``start`` and
    ``stop`` (``_saq_asyncio_tasks``, fire-and-forget upstream) are awaited, so none is left
    pending when the application's lifespan ends.
    """
    worker.event.set()
    upkeep = [task for task in worker.tasks if task.get_name() != "process"]
    for task in upkeep:
        worker.tasks.discard(task)
        # Again until it ends: a Redis call inside a loop can swallow one cancellation.
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=UPKEEP_CANCEL_RETRY_SECONDS)
    await worker.stop()
    starting = worker._saq_asyncio_tasks
    await worker.on_app_shutdown()
    for task in (starting, worker._saq_asyncio_tasks):
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
