"""Issue 12, item 2: a phone photo (a real-sized 3.3 MB JPEG) and files go from the page
through REST, with a progress bar; a too-big file is refused with the limit in words."""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, expect

from tests.e2e.chat_helpers import (
    LONG,
    counting,
    direct_pair,
    logged_in_pages,
    open_chat,
)
from tests.support import LiveServer

pytestmark = pytest.mark.browser


def phone_photo(path: Path) -> bytes:
    """2000x1500 pixels of noise: JPEG cannot compress it below about 3.3 MB."""
    image = Image.frombytes("RGB", (2000, 1500), os.urandom(2000 * 1500 * 3))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    data = out.getvalue()
    path.write_bytes(data)
    return data


async def test_a_phone_photo_sent_from_the_page_reaches_the_other_page(
    browser: Browser, live_server: LiveServer, tmp_path: Path
) -> None:
    photo = tmp_path / "IMG_2041.jpg"
    data = phone_photo(photo)
    assert 3_000_000 < len(data) < 10 * 1024 * 1024, len(data)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice, bob, chat = await direct_pair(http)

        (alice_page, bob_page), errors = await logged_in_pages(browser, live_server.url, alice, bob)
        await open_chat(alice_page, "Bob")
        await open_chat(bob_page, "Alice")

        # The page reports upload progress as it goes.
        await alice_page.evaluate(
            """() => {
                window.progressSeen = [];
                const bar = document.getElementById("upload-progress");
                if (!bar) return;
                new MutationObserver(() => window.progressSeen.push(bar.value))
                    .observe(bar, { attributes: true });
                new MutationObserver(() => window.progressSeen.push(bar.value))
                    .observe(document.getElementById("upload"), { attributes: true });
            }"""
        )
        with counting(alice_page, "POST", f"/api/v1/chats/{chat['id']}/messages") as posts:
            await alice_page.get_by_test_id("image-input").set_input_files(photo)
            received = bob_page.get_by_test_id("messages").get_by_test_id("message-image")
            await expect(received).to_be_visible(timeout=60_000)
        assert len(posts) == 1  # through REST, not a Socket.IO frame
        await expect(received).to_have_js_property("complete", True, timeout=LONG)
        assert await received.evaluate("img => img.naturalWidth") > 0
        await expect(
            alice_page.get_by_test_id("messages").get_by_test_id("message-image")
        ).to_be_visible()
        await expect(alice_page.get_by_test_id("upload")).to_be_hidden()
        assert await alice_page.evaluate("window.progressSeen.length") > 0
        await expect(alice_page.get_by_test_id("notice")).to_be_hidden()

        history = await http.get(f"/api/v1/chats/{chat['id']}/messages", headers=bob.headers)
        [stored] = history.json()["items"]
        assert stored["type"] == "image"
        assert stored["attachment"]["size"] == len(data)
        assert stored["attachment"]["width"] == 2000
        assert errors == [[], []]
        await alice_page.context.close()
        await bob_page.context.close()


async def test_files_go_through_and_a_too_big_one_is_refused_naming_the_limit(
    browser: Browser, live_server: LiveServer, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\n  indented line\n")
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(os.urandom(11 * 1024 * 1024))
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        alice, bob, chat = await direct_pair(http)

        (alice_page, bob_page), errors = await logged_in_pages(browser, live_server.url, alice, bob)
        await open_chat(alice_page, "Bob")
        await open_chat(bob_page, "Alice")

        await alice_page.get_by_test_id("file-input").set_input_files(notes)
        received = bob_page.get_by_test_id("messages").get_by_test_id("message-file")
        await expect(received).to_contain_text("notes.txt", timeout=LONG)
        async with bob_page.expect_download(timeout=LONG) as download_info:
            await received.click()
        download = await download_info.value
        assert download.suggested_filename == "notes.txt"
        assert Path(await download.path()).read_text() == "line one\n  indented line\n"

        with counting(alice_page, "POST", f"/api/v1/chats/{chat['id']}/messages") as posts:
            await alice_page.get_by_test_id("image-input").set_input_files(huge)
            await expect(alice_page.get_by_test_id("notice")).to_contain_text(
                "This image is too big: 11 MB, the limit is 10 MB.", timeout=LONG
            )
        assert posts == []  # refused before uploading 11 MB for nothing
        history = await http.get(f"/api/v1/chats/{chat['id']}/messages", headers=bob.headers)
        assert [m["type"] for m in history.json()["items"]] == ["file"]
        assert errors == [[], []]
        await alice_page.context.close()
        await bob_page.context.close()
