"""Uploaded images: decode base64 or data URLs, check that the bytes really are an image we
accept, and make square thumbnails or previews. Decoding and resizing are CPU work, so the
public coroutines run them in a thread.

The type is decided by decoding the bytes with Pillow, never by the declared type; the
pixel count is checked from the header before any pixel is decoded, so a decompression bomb
(a tiny file that claims 50,000 x 50,000 pixels) is refused without allocating it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from app.lib.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w=.-]+)*;base64,", re.IGNORECASE)
THUMBNAIL_TYPE = "image/webp"


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


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except (UnidentifiedImageError, Image.DecompressionBombWarning) as exc:
        raise UnsupportedMediaTypeError("Only JPEG, PNG or WebP images are accepted.") from exc
    except Image.DecompressionBombError as exc:
        raise PayloadTooLargeError("The image has too many pixels.") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLargeError(
            f"The image has {width}x{height} pixels; at most {max_pixels} pixels are accepted."
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMediaTypeError("The image data is damaged or truncated.") from exc
    return image


def check_image(data: bytes, max_pixels: int) -> CheckedImage:
    image = _open_checked(data, max_pixels)
    assert image.format is not None
    return CheckedImage(data, ACCEPTED_FORMATS[image.format], image.width, image.height)


def _encode(image: Image.Image) -> bytes:
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=85, method=4)
    return out.getvalue()


def square_thumbnails(data: bytes, sizes: tuple[int, ...], max_pixels: int) -> dict[int, bytes]:
    """Centre-cropped squares of each size (as WebP), upright according to EXIF."""
    image = ImageOps.exif_transpose(_open_checked(data, max_pixels))
    return {
        size: _encode(ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)) for size in sizes
    }


def preview(data: bytes, longest_side: int, max_pixels: int) -> tuple[bytes, int, int]:
    """A preview that fits ``longest_side`` (aspect ratio kept), as WebP, with its size."""
    image = ImageOps.exif_transpose(_open_checked(data, max_pixels))
    image.thumbnail((longest_side, longest_side), Image.Resampling.LANCZOS)
    return _encode(image), image.width, image.height


async def check_image_async(data: bytes, max_pixels: int) -> CheckedImage:
    return await asyncio.to_thread(check_image, data, max_pixels)


async def square_thumbnails_async(
    data: bytes, sizes: tuple[int, ...], max_pixels: int
) -> dict[int, bytes]:
    return await asyncio.to_thread(square_thumbnails, data, sizes, max_pixels)


async def preview_async(data: bytes, longest_side: int, max_pixels: int) -> tuple[bytes, int, int]:
    return await asyncio.to_thread(preview, data, longest_side, max_pixels)
