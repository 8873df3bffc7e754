"""Uploaded images: decode base64 or data URLs, check that the bytes really are an image we
accept, strip their metadata, and make square thumbnails or previews.

The type is decided by decoding the bytes with Pillow, never by the declared type; the
pixel count is checked from the header before any pixel is decoded, so a decompression bomb
(a tiny file that claims 50,000 x 50,000 pixels) is refused without allocating it. JPEGs
are decoded at the smallest scale that serves the purpose (``Image.draft``: 1/8 to check
one, just above the thumbnail's size to make one).

Metadata (EXIF with its GPS position, XMP, IPTC, comments, PNG text chunks) is removed from
the original that is kept: when the image needs no rotation this is done on the file's own
segments, so its pixels and format stay exactly as uploaded; when its EXIF orientation says
it must be turned, it is turned and re-encoded in its format (JPEG with its own quantisation
tables, PNG and lossless WebP losslessly). Colour profiles are kept.

Decoding and resizing are CPU work and memory: they run in a small pool of their own
(IMAGE_WORKERS threads), apart from the default pool that password hashing uses, so a burst
of large uploads queues behind itself instead of stretching every sign-in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import struct
import warnings
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from app.lib.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError

# Pillow is imported by the functions that decode, at the first image rather than at start-up.
if TYPE_CHECKING:
    from PIL import Image

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w=.-]+)*;base64,", re.IGNORECASE)
THUMBNAIL_TYPE = "image/webp"
ORIENTATION_TAG = 0x0112
THREAD_NAME_PREFIX = "quintet-image"

P = ParamSpec("P")
T = TypeVar("T")

# The pool of the running application (ImagePool.running); None outside one (a CLI
# script, a unit test): the work then runs in the event loop's default pool.
_pool: ThreadPoolExecutor | None = None


class ImagePool:
    """The image pool of one application: IMAGE_WORKERS threads, started with its lifespan
    and shut down (queued work cancelled, running work awaited) when it ends."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.executor: ThreadPoolExecutor | None = None

    @asynccontextmanager
    async def running(self, _: object = None) -> AsyncIterator[ThreadPoolExecutor]:
        global _pool
        executor = ThreadPoolExecutor(self.workers, thread_name_prefix=THREAD_NAME_PREFIX)
        self.executor = _pool = executor
        try:
            yield executor
        finally:
            if _pool is executor:
                _pool = None
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


async def run_image_work(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Runs CPU-bound image work in the image pool, off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, lambda: function(*args, **kwargs))


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    content_type: str
    width: int
    height: int


def decode_base64_payload(value: str, max_bytes: int) -> bytes:
    """Bytes from plain base64 or a ``data:...;base64,`` URL, refusing more than ``max_bytes``."""
    match = DATA_URL.match(value)
    encoded = value[match.end() :] if match else value
    encoded = "".join(encoded.split())
    # Base64 grows data by 4/3: refuse before decoding what cannot fit.
    if len(encoded) * 3 // 4 > max_bytes + 3:
        raise PayloadTooLargeError(f"The decoded data must not exceed {max_bytes} bytes.")
    try:
        data = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError("The data is not valid base64 (or a base64 data URL).") from exc
    if not data:
        raise InvalidInputError("The data is empty.")
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"The decoded data must not exceed {max_bytes} bytes.")
    return data


def _open_checked(
    data: bytes, max_pixels: int, draft_size: tuple[int, int] | None = None
) -> Image.Image:
    """The decoded image, refused before decoding when it has too many pixels. A JPEG is
    decoded at the smallest scale that still covers ``draft_size`` (when given)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    # OSError: besides UnidentifiedImageError, a header cut short ("Truncated File Read").
    except (UnidentifiedImageError, OSError, Image.DecompressionBombWarning) as exc:
        raise UnsupportedMediaTypeError("Only JPEG, PNG or WebP images are accepted.") from exc
    except Image.DecompressionBombError as exc:
        raise PayloadTooLargeError("The image has too many pixels.") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLargeError(
            f"The image has {width}x{height} pixels; at most {max_pixels} pixels are accepted."
        )
    try:
        if draft_size is not None and image.format == "JPEG":
            image.draft(image.mode, draft_size)
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMediaTypeError("The image data is damaged or truncated.") from exc
    return image


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ORIENTATION_TAG, 1) or 1)
    except Exception:  # damaged EXIF: there is no orientation to apply
        return 1


def check_image(data: bytes, max_pixels: int) -> CheckedImage:
    """The image as it is to be kept: its type, its upright size and its bytes without
    metadata (see the module docstring). 415 when it is not a whole JPEG, PNG or WebP."""
    from PIL import Image

    # A JPEG is checked at 1/8 scale: every byte of it is still read and decoded.
    image = _open_checked(data, max_pixels, draft_size=(1, 1))
    assert image.format is not None
    image_format = image.format
    orientation = _orientation(image)
    width, height = Image.open(io.BytesIO(data)).size
    stripped: bytes | None = None
    if orientation == 1 or getattr(image, "n_frames", 1) > 1:
        try:
            stripped = STRIPPERS[image_format](data)
        except (ValueError, IndexError, struct.error):
            stripped = None  # unusual layout: re-encode below
    if stripped is None:
        stripped = _reencode_upright(data, max_pixels)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
    return CheckedImage(stripped, ACCEPTED_FORMATS[image_format], width, height)


def strip_metadata(data: bytes, max_pixels: int) -> bytes:
    """The image upright and without metadata, in its own format."""
    return check_image(data, max_pixels).data


def _reencode_upright(data: bytes, max_pixels: int) -> bytes:
    from PIL import ImageOps, JpegImagePlugin

    source = _open_checked(data, max_pixels)
    image_format = source.format
    icc = source.info.get("icc_profile")
    upright = ImageOps.exif_transpose(source)
    out = io.BytesIO()
    options: dict[str, object] = {}
    if icc:
        options["icc_profile"] = icc
    if image_format == "JPEG":
        assert isinstance(source, JpegImagePlugin.JpegImageFile)
        options["qtables"] = source.quantization
        sampling = JpegImagePlugin.get_sampling(source)
        if sampling != -1:
            options["subsampling"] = sampling
        upright.save(out, format="JPEG", **options)
    elif image_format == "PNG":
        if "transparency" in source.info:
            options["transparency"] = source.info["transparency"]
        upright.save(out, format="PNG", **options)
    else:
        lossless = b"VP8L" in data[12:64]
        upright.save(out, format="WEBP", lossless=lossless, quality=100 if lossless else 90)
    return out.getvalue()


# --- metadata stripping on the file's own structure (pixels untouched) ---------------------

# JPEG segments kept: the JFIF header, an ICC profile, Adobe's colour transform, and
# everything the decoder needs (tables, frame and scan headers). Dropped: EXIF and XMP
# (APP1), multi-picture data (APP2 "MPF"), Photoshop/IPTC (APP13), other APPn, comments.
_JPEG_APP0, _JPEG_APP2, _JPEG_APP14 = 0xE0, 0xE2, 0xEE
_JPEG_SOS, _JPEG_EOI, _JPEG_COM = 0xDA, 0xD9, 0xFE


def _keep_jpeg_segment(marker: int, payload: bytes) -> bool:
    if marker == _JPEG_COM:
        return False
    if 0xE0 <= marker <= 0xEF:
        if marker == _JPEG_APP2:
            return payload.startswith(b"ICC_PROFILE\0")
        return marker in (_JPEG_APP0, _JPEG_APP14)
    return True


def strip_jpeg_metadata(data: bytes) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    out = [b"\xff\xd8"]
    i = 2
    while True:
        if data[i] != 0xFF:
            raise ValueError("marker expected")
        while data[i] == 0xFF:  # fill bytes
            i += 1
        marker = data[i]
        i += 1
        if marker == _JPEG_EOI:
            out.append(b"\xff\xd9")
            return b"".join(out)  # whatever follows (a second picture, a payload) is dropped
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out.append(bytes((0xFF, marker)))
            continue
        (length,) = struct.unpack(">H", data[i : i + 2])
        segment = data[i : i + length]
        if len(segment) != length or length < 2:
            raise ValueError("truncated segment")
        if _keep_jpeg_segment(marker, segment[2:]):
            out.append(bytes((0xFF, marker)) + segment)
        i += length
        if marker == _JPEG_SOS:
            # Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or
            # a restart marker.
            j = i
            while True:
                j = data.index(b"\xff", j)
                following = data[j + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    j += 1
                    continue
                break
            out.append(data[i:j])
            i = j


# PNG chunks kept: the critical ones, what changes how pixels look (transparency, gamma,
# colour profile, chromaticities, significant bits, background, pixel size) and APNG
# animation. Dropped: text (tEXt, zTXt, iTXt), eXIf, tIME and anything unknown.
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEPT = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP",
    b"sBIT", b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCv", b"cLLi",
}  # fmt: skip


def strip_png_metadata(data: bytes) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    out = [_PNG_SIGNATURE]
    i = len(_PNG_SIGNATURE)
    while True:
        (length,) = struct.unpack(">I", data[i : i + 4])
        chunk_type = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > len(data):
            raise ValueError("truncated chunk")
        if chunk_type in _PNG_KEPT:
            out.append(data[i:end])
        i = end
        if chunk_type == b"IEND":
            return b"".join(out)


# WebP chunks dropped: EXIF and XMP (and their flags in the VP8X header).
_WEBP_DROPPED = {b"EXIF", b"XMP "}
_VP8X_EXIF_FLAG, _VP8X_XMP_FLAG = 0x08, 0x04


def strip_webp_metadata(data: bytes) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP")
    (riff_size,) = struct.unpack("<I", data[4:8])
    end_of_file = min(len(data), 8 + riff_size)
    chunks = []
    i = 12
    while i + 8 <= end_of_file:
        fourcc = data[i : i + 4]
        (size,) = struct.unpack("<I", data[i + 4 : i + 8])
        end = i + 8 + size + (size & 1)
        if i + 8 + size > end_of_file:
            raise ValueError("truncated chunk")
        chunk = data[i:end]
        if fourcc == b"VP8X":
            flags = chunk[8] & ~(_VP8X_EXIF_FLAG | _VP8X_XMP_FLAG)
            chunk = chunk[:8] + bytes((flags,)) + chunk[9:]
        if fourcc not in _WEBP_DROPPED:
            chunks.append(chunk)
        i = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


STRIPPERS: dict[str, Callable[[bytes], bytes]] = {
    "JPEG": strip_jpeg_metadata,
    "PNG": strip_png_metadata,
    "WEBP": strip_webp_metadata,
}


def _encode(image: Image.Image) -> bytes:
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=85, method=4)
    return out.getvalue()


def square_thumbnails(data: bytes, sizes: tuple[int, ...], max_pixels: int) -> dict[int, bytes]:
    """Centre-cropped squares of each size (as WebP), upright according to EXIF."""
    from PIL import Image, ImageOps

    largest = max(sizes) * 2  # decode a JPEG at just above twice the largest square
    image = ImageOps.exif_transpose(_open_checked(data, max_pixels, (largest, largest)))
    return {
        size: _encode(ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)) for size in sizes
    }


def preview(data: bytes, longest_side: int, max_pixels: int) -> tuple[bytes, int, int]:
    """A preview that fits ``longest_side`` (aspect ratio kept), as WebP, with its size."""
    from PIL import Image, ImageOps

    draft = (longest_side * 2, longest_side * 2)
    image = ImageOps.exif_transpose(_open_checked(data, max_pixels, draft))
    image.thumbnail((longest_side, longest_side), Image.Resampling.LANCZOS)
    return _encode(image), image.width, image.height


async def check_image_async(data: bytes, max_pixels: int) -> CheckedImage:
    return await run_image_work(check_image, data, max_pixels)


async def square_thumbnails_async(
    data: bytes, sizes: tuple[int, ...], max_pixels: int
) -> dict[int, bytes]:
    return await run_image_work(square_thumbnails, data, sizes, max_pixels)


async def preview_async(data: bytes, longest_side: int, max_pixels: int) -> tuple[bytes, int, int]:
    return await run_image_work(preview, data, longest_side, max_pixels)
