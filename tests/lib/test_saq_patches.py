"""The SAQ internals that app/lib/saq_patches.py relies on are still the ones it was written
against: the day an upgrade changes them, this fails instead of the worker breaking silently."""

from __future__ import annotations

import hashlib
import importlib
import inspect
from importlib.metadata import version
from typing import Any

import pytest
from litestar_saq.base import Worker as LitestarWorker
from saq.queue.redis import RedisQueue

from app.lib import saq_patches
from app.lib.saq_patches import (
    PATCHED_LITESTAR_SAQ_VERSION,
    PATCHED_SAQ_VERSION,
    PATCHED_SOURCES,
    SWEEP_SNAPSHOT,
    EmbeddedRedisQueue,
)


def _upstream(dotted: str) -> Any:
    module, owner, attribute = dotted.rsplit(".", 2)
    return getattr(getattr(importlib.import_module(module), owner), attribute)


def test_the_installed_saq_is_the_release_the_patches_were_written_for() -> None:
    assert version("saq") == PATCHED_SAQ_VERSION
    assert version("litestar-saq") == PATCHED_LITESTAR_SAQ_VERSION


@pytest.mark.parametrize("dotted", sorted(PATCHED_SOURCES))
def test_the_patched_upstream_source_is_unchanged(dotted: str) -> None:
    source = inspect.getsource(_upstream(dotted))
    assert hashlib.sha256(source.encode()).hexdigest() == PATCHED_SOURCES[dotted], (
        f"{dotted} changed upstream: re-read it, adapt app/lib/saq_patches.py, update the hash"
    )


def test_the_copied_sweep_script_is_the_one_upstream_registers() -> None:
    upstream_sweep = inspect.getsource(RedisQueue.sweep)
    for line in SWEEP_SNAPSHOT.strip().splitlines():
        assert line.strip() in upstream_sweep


def test_the_overridden_methods_keep_the_upstream_signatures() -> None:
    for name in ("dequeue", "version", "sweep"):
        ours = inspect.signature(getattr(EmbeddedRedisQueue, name))
        theirs = inspect.signature(getattr(RedisQueue, name))
        assert list(ours.parameters) == list(theirs.parameters), name
    assert list(inspect.signature(RedisQueue._get_job_by_id).parameters) == ["self", "job_id"]


def test_the_private_attributes_the_patches_use_exist() -> None:
    queue_init = inspect.getsource(RedisQueue.__init__)
    for attribute in ("self._cleanup_script", "self._queued", "self._active"):
        assert attribute in queue_init
    assert "self._saq_asyncio_tasks" in inspect.getsource(LitestarWorker.on_app_startup)
    assert 'name="process"' in inspect.getsource(LitestarWorker._process)
    assert saq_patches.stop_worker.__doc__
