"""Chromium through Playwright, using Debian's /usr/bin/chromium (Playwright's own browser
download cannot run here)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.support import IN_CI

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# What an ``expect`` waits for unless it says otherwise: a page load, a Socket.IO connect or
# a Swagger UI render takes well over Playwright's 5 s default on a loaded two-core machine.
# A waiting assertion passes as soon as it holds, so a longer bound only delays a failure.
EXPECT_TIMEOUT_MS = 30_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"CI=true and Chromium is missing at {CHROMIUM}")
        pytest.skip(f"Chromium is missing at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        await instance.close()
