"""The announcer: one key's jobs in order, bounded queues that push back, nothing dropped
without a word, and what is queued finished on shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from app.lib.announcer import Announcer


@dataclass
class Jammed:
    """An announcer with one worker and a queue of one, whose ``stuck`` job holds the worker
    until ``blocked`` is set; ``note(name)`` jobs record their name in ``ran``."""

    announcer: Announcer = field(
        default_factory=lambda: Announcer(workers=1, queue_size=1, wait_seconds=0.2)
    )
    blocked: asyncio.Event = field(default_factory=asyncio.Event)
    ran: list[str] = field(default_factory=list)

    async def stuck(self) -> None:
        await self.blocked.wait()
        self.ran.append("stuck")

    def note(self, name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            self.ran.append(name)

        return run


async def test_jobs_of_one_key_run_in_order_while_other_keys_run_beside_them() -> None:
    announcer = Announcer(workers=4, queue_size=100, wait_seconds=5)
    announcer.start()
    # A key that another worker serves than "a"'s.
    other = next(
        k for k in map(str, range(100)) if announcer._queue_for(k) is not announcer._queue_for("a")
    )
    done: dict[str, list[int]] = {"a": [], other: []}
    release_a = asyncio.Event()
    other_done = asyncio.Event()

    def job(key: str, n: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if key == "a" and n == 0:
                await release_a.wait()  # the first job of "a" is slow
            done[key].append(n)
            if key == other and n == 4:
                other_done.set()

        return run

    try:
        for n in range(20):
            await announcer.submit("a", job("a", n))
        for n in range(5):
            await announcer.submit(other, job(other, n))
        await asyncio.wait_for(other_done.wait(), 10)
        assert done["a"] == []  # still behind its slow first job
        release_a.set()
    finally:
        await announcer.stop(drain_seconds=10)
    assert done == {"a": list(range(20)), other: list(range(5))}


async def test_a_full_queue_makes_the_writer_wait_then_logs_what_it_drops() -> None:
    jam = Jammed()
    announcer, stuck, note, ran = jam.announcer, jam.stuck, jam.note, jam.ran
    announcer.start()

    try:
        with structlog.testing.capture_logs() as logs:
            await announcer.submit("k", stuck)
            await asyncio.sleep(0)  # the worker takes it: the queue is empty again
            await announcer.submit("k", note("queued"))  # fills the queue
            started = asyncio.get_running_loop().time()
            await announcer.submit("k", note("dropped"), name="chat:updated")
            waited = asyncio.get_running_loop().time() - started
        jam.blocked.set()
    finally:
        await announcer.stop(drain_seconds=10)
    assert waited >= 0.2
    assert ran == ["stuck", "queued"]
    events = [entry["event"] for entry in logs]
    assert events == ["announcer_backpressure", "announcement_dropped"]
    assert logs[1]["job"] == "chat:updated"


async def test_without_a_running_announcer_a_job_runs_in_the_caller() -> None:
    announcer = Announcer(workers=2, queue_size=10, wait_seconds=1)
    ran: list[int] = []

    async def job() -> None:
        ran.append(1)

    await announcer.submit("k", job)
    assert ran == [1]


async def test_shutdown_finishes_what_is_queued_and_a_failing_job_stops_nothing() -> None:
    announcer = Announcer(workers=2, queue_size=50, wait_seconds=1)
    announcer.start()
    ran: list[int] = []

    def job(n: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await asyncio.sleep(0.01)
            if n == 3:
                raise RuntimeError("emit failed")
            ran.append(n)

        return run

    with structlog.testing.capture_logs() as logs:
        for n in range(10):
            await announcer.submit("k", job(n))
        await announcer.stop(drain_seconds=10)
    assert ran == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert [e["event"] for e in logs] == ["announce_failed"]
    assert not announcer.running


async def test_a_job_that_may_not_be_dropped_waits_past_the_deadline_and_keeps_its_order() -> None:
    jam = Jammed()
    announcer, stuck, note, ran = jam.announcer, jam.stuck, jam.note, jam.ran
    announcer.start()

    try:
        with structlog.testing.capture_logs() as logs:
            await announcer.submit("k", stuck)
            await asyncio.sleep(0)
            await announcer.submit("k", note("queued"))
            late = asyncio.create_task(
                announcer.submit("k", note("late"), name="messenger", may_drop=False)
            )
            later = asyncio.create_task(
                announcer.submit("k", note("later"), name="messenger", may_drop=False)
            )
            await asyncio.sleep(0.5)  # past wait_seconds: main dropped both here
            assert not late.done()
            jam.blocked.set()
            await asyncio.wait_for(asyncio.gather(late, later), 10)
    finally:
        await announcer.stop(drain_seconds=10)
    assert ran == ["stuck", "queued", "late", "later"]
    events = [entry["event"] for entry in logs]
    assert "announcement_dropped" not in events
    assert "announcer_still_waiting" in events
    assert announcer.pending == 0
