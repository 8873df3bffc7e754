"""app/lib/images.py on its own: metadata stripping that leaves pixels alone, and the
image pool that keeps decoding apart from password hashing."""

from __future__ import annotations

import asyncio
import io
import threading

from PIL import Image, PngImagePlugin

from app.lib.images import (
    THREAD_NAME_PREFIX,
    ImagePool,
    check_image,
    square_thumbnails_async,
)

MAX_PIXELS = 20_000_000


def photo(fmt: str, **save: object) -> bytes:
    image = Image.new("RGB", (300, 200), "white")
    image.paste((0, 90, 200), (0, 0, 150, 100))
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def test_a_jpeg_loses_comments_xmp_and_what_follows_its_end() -> None:
    xmp = b"<x:xmpmeta><gps>55.75,37.61</gps></x:xmpmeta>"
    data = photo("JPEG", comment=b"home address", xmp=xmp) + b"<script>payload</script>"
    stripped = check_image(data, MAX_PIXELS).data
    for secret in (b"home address", b"55.75", b"payload"):
        assert secret not in stripped
    assert Image.open(io.BytesIO(stripped)).tobytes() == Image.open(io.BytesIO(data)).tobytes()


def test_a_jpeg_keeps_its_colour_profile() -> None:
    profile = b"\0" * 128 + b"acsp" + b"\0" * 124  # only carried along, never parsed
    data = photo("JPEG", icc_profile=profile)
    stripped = check_image(data, MAX_PIXELS).data
    assert Image.open(io.BytesIO(stripped)).info.get("icc_profile") == profile


def test_a_png_loses_its_text_chunks_and_keeps_its_transparency() -> None:
    image = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    image.paste((0, 255, 0, 255), (0, 0, 32, 32))
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_itxt("Location", "Moscow", zip=True)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    data = out.getvalue()
    stripped = check_image(data, MAX_PIXELS).data
    kept = Image.open(io.BytesIO(stripped))
    assert b"Jane Doe" not in stripped
    assert "Author" not in kept.info
    assert kept.mode == "RGBA"
    assert kept.tobytes() == image.tobytes()


def test_a_webp_loses_its_xmp() -> None:
    data = photo("WEBP", lossless=True, xmp=b"<x:xmpmeta>secret place</x:xmpmeta>")
    assert b"secret place" in data
    stripped = check_image(data, MAX_PIXELS).data
    assert b"secret place" not in stripped
    assert Image.open(io.BytesIO(stripped)).tobytes() == Image.open(io.BytesIO(data)).tobytes()


async def test_image_work_runs_in_its_own_bounded_pool() -> None:
    """Six uploads at once run on at most IMAGE_WORKERS threads of the image pool (not the
    default pool that password hashing, through asyncio.to_thread, uses)."""
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.update(
                t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)
            )
            stop.wait(0.005)

    data = photo("PNG")
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        async with ImagePool(2).running():
            results = await asyncio.gather(
                *(square_thumbnails_async(data, (400, 100, 50), MAX_PIXELS) for _ in range(6))
            )
    finally:
        stop.set()
        watcher.join()
    assert all(set(result) == {400, 100, 50} for result in results)
    assert 1 <= len(seen) <= 2, seen
