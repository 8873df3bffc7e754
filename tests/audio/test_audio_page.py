"""The /audio page in Chromium: a network failure during the upload is reported, not left
on "Converting…"."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Route, expect

from tests.audio.test_audio import make_wav
from tests.e2e.conftest import browser  # noqa: F401 - the fixture
from tests.support import LiveServer

pytestmark = pytest.mark.browser


async def test_a_network_failure_during_the_upload_is_reported(
    browser: Browser,  # noqa: F811
    live_server: LiveServer,
    tmp_path: Path,
) -> None:
    wav = tmp_path / "tone.wav"
    wav.write_bytes(make_wav(0.2))
    context = await browser.new_context(base_url=live_server.url)
    page = await context.new_page()

    async def cut(route: Route) -> None:
        await route.abort("internetdisconnected")

    await page.goto("/audio")
    await page.fill("#audio-name", "alice")
    await page.click("#audio-user-form button[type=submit]")
    await expect(page.locator("#audio-user-result")).to_contain_text("token:")

    await page.route("**/api/v1/audio/records", cut)
    await page.set_input_files("#audio-file", str(wav))
    await page.click("#audio-upload-form button[type=submit]")
    result = page.locator("#audio-upload-result")
    await expect(result).to_contain_text("The upload failed: the server could not be reached")
    await expect(result).not_to_contain_text("Converting")
    await expect(page.locator("#audio-upload-form button[type=submit]")).to_be_enabled()

    await page.unroute("**/api/v1/audio/records")
    await page.click("#audio-upload-form button[type=submit]")
    await expect(result).to_contain_text("Download: ")
    await context.close()
