"""Work that follows a committed write, run off the request path by a few workers.

A request commits, hands what it has to announce (Socket.IO events, notifications) to the
:class:`Announcer` and answers: the announcing neither holds the request's database
connection nor delays its response. The announcer is bounded: ``workers`` tasks, each
with a queue of at most ``queue_size`` jobs, so one user's fan-out takes at most
``workers`` database connections and a fixed amount of memory, whatever they do.

Jobs with the same key (a chat) always go to the same worker, which runs them one at a
time in the order they came: the events of one chat keep their order.

When a worker's queue is full the caller waits for room (backpressure) up to
``wait_seconds``, logged; past that the job is dropped with an error in the log, never
silently, unless it was submitted with ``may_drop=False`` (the announcement of a committed
write that clients must hear: it waits as long as it takes, late but never missing). A
writer that would rather refuse than wait asks :meth:`has_room` before it writes and
answers 503 (see the messenger's send). Before the lifespan starts (command-line tools) and after it ends, a job runs
in the caller, as it did before there was an announcer.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog

logger = structlog.get_logger("app.announcer")

Job = Callable[[], Awaitable[None]]


class Announcer:
    def __init__(self, *, workers: int, queue_size: int, wait_seconds: float) -> None:
        self.workers = workers
        self.queue_size = queue_size
        self.wait_seconds = wait_seconds
        self.queues: list[asyncio.Queue[tuple[str, Job]]] = []
        self.tasks: list[asyncio.Task[None]] = []
        # Jobs submitted and not finished yet (queued or running).
        self.pending = 0

    @property
    def running(self) -> bool:
        return bool(self.tasks)

    def _queue_for(self, key: str) -> asyncio.Queue[tuple[str, Job]]:
        # A stable hash (unlike hash(), the same in every process): one key, one worker.
        return self.queues[zlib.crc32(key.encode()) % len(self.queues)]

    def has_room(self, key: Any) -> bool:
        """Whether a job for ``key`` would be queued now without waiting (always, when the
        announcer is not running: the job would run in the caller)."""
        return not self.running or not self._queue_for(str(key)).full()

    async def submit(self, key: Any, job: Job, *, name: str = "job", may_drop: bool = True) -> None:
        """Run ``job`` after the jobs submitted before it with the same ``key``."""
        if not self.running:
            await _run(name, job)
            return
        queue = self._queue_for(str(key))
        self.pending += 1
        try:
            queue.put_nowait((name, job))
            return
        except asyncio.QueueFull:
            logger.warning("announcer_backpressure", job=name, queued=queue.qsize())
        # One put, kept in the queue's line of waiters while it waits, so the jobs of one
        # key keep their order even when they wait past ``wait_seconds``.
        put = asyncio.ensure_future(queue.put((name, job)))
        try:
            try:
                await asyncio.wait_for(asyncio.shield(put), self.wait_seconds)
                return
            except TimeoutError:
                if put.done():
                    return
            if may_drop:
                put.cancel()
                self.pending -= 1
                logger.error("announcement_dropped", job=name, waited_seconds=self.wait_seconds)
                return
            logger.warning("announcer_still_waiting", job=name, waited_seconds=self.wait_seconds)
            await put
        except BaseException:
            if not put.done():
                put.cancel()
                self.pending -= 1
            raise

    async def _work(self, queue: asyncio.Queue[tuple[str, Job]]) -> None:
        while True:
            name, job = await queue.get()
            try:
                await _run(name, job)
            finally:
                self.pending -= 1
                queue.task_done()

    def start(self) -> None:
        self.queues = [asyncio.Queue(self.queue_size) for _ in range(self.workers)]
        self.tasks = [
            asyncio.create_task(self._work(queue), name=f"announcer-{n}")
            for n, queue in enumerate(self.queues)
        ]

    async def stop(self, drain_seconds: float) -> None:
        """Finish what is queued (up to ``drain_seconds``), then stop the workers."""
        queues, tasks = self.queues, self.tasks
        try:
            await asyncio.wait_for(
                asyncio.gather(*(queue.join() for queue in queues)), drain_seconds
            )
        except TimeoutError:
            left = sum(queue.qsize() for queue in queues)
            logger.error("announcer_stopped_with_jobs_left", jobs=left)
        self.tasks, self.queues = [], []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Any) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            await self.stop(self.wait_seconds)


async def _run(name: str, job: Job) -> None:
    try:
        await job()
    except Exception:
        # What it announces is committed already: a failure is logged, never raised.
        logger.exception("announce_failed", job=name)
