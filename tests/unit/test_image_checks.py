"""Image checks on tiny images made with Pillow: accepted formats, the pixel limit, damaged
data, EXIF orientation, base64 payloads and the WebP thumbnails and previews."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from app.lib.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from app.lib.images import check_image, decode_base64_payload, preview, square_thumbnails

ORIENTATION = 0x0112


def image_bytes(image_format: str, size: tuple[int, int] = (20, 10), **options: object) -> bytes:
    out = io.BytesIO()
    mode = "RGBA" if image_format in ("PNG", "WEBP") else "RGB"
    Image.new(mode, size, (200, 30, 30, 255) if mode == "RGBA" else (200, 30, 30)).save(
        out, format=image_format, **options
    )
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")],
)
def test_jpeg_png_and_webp_are_accepted_with_their_type_and_size(
    image_format: str, content_type: str
) -> None:
    checked = check_image(image_bytes(image_format), max_pixels=1000)
    assert (checked.content_type, checked.width, checked.height) == (content_type, 20, 10)
    assert decoded(checked.data).format == image_format


@pytest.mark.parametrize("image_format", ["GIF", "BMP", "TIFF", "ICO"])
def test_other_formats_are_415(image_format: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as refused:
        check_image(image_bytes(image_format, (16, 16)), max_pixels=1000)
    assert refused.value.status_code == 415


def test_the_pixel_limit_is_inclusive() -> None:
    data = image_bytes("PNG", (10, 10))
    assert check_image(data, max_pixels=100).width == 10
    with pytest.raises(PayloadTooLargeError) as refused:
        check_image(data, max_pixels=99)
    assert refused.value.status_code == 413
    assert "10x10" in refused.value.detail


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def png_chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [5_000, 50_000])
def test_a_decompression_bomb_is_refused_from_its_header(side: int) -> None:
    with pytest.raises(PayloadTooLargeError):
        check_image(png_claiming(side, side), max_pixels=20_000_000)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        image_bytes("PNG")[:60],
        image_bytes("JPEG")[:200],
        image_bytes("WEBP")[:30],
    ],
    ids=["empty", "text", "truncated-png", "truncated-jpeg", "truncated-webp"],
)
def test_damaged_or_truncated_data_is_415(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        check_image(data, max_pixels=1000)


def test_a_jpeg_turned_by_its_exif_is_stored_upright_without_the_tag() -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # rotate 90 degrees clockwise to view
    checked = check_image(image_bytes("JPEG", (20, 10), exif=exif.tobytes()), max_pixels=1000)
    assert (checked.width, checked.height) == (10, 20)
    stored = decoded(checked.data)
    assert stored.size == (10, 20)
    assert ORIENTATION not in stored.getexif()


def test_an_upright_jpeg_keeps_its_bytes_but_loses_its_exif() -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = 1
    exif[0x010F] = "Camera maker"
    original = image_bytes("JPEG", exif=exif.tobytes())
    stored = check_image(original, max_pixels=1000).data
    assert len(stored) < len(original)
    assert not decoded(stored).getexif()


def test_base64_and_data_urls_decode_to_the_same_bytes() -> None:
    data = image_bytes("PNG")
    encoded = base64.b64encode(data).decode()
    assert decode_base64_payload(encoded, len(data)) == data
    assert decode_base64_payload(f"data:image/png;base64,{encoded}", len(data)) == data
    wrapped = "\n".join(encoded[i : i + 20] for i in range(0, len(encoded), 20))
    assert decode_base64_payload(wrapped.rstrip("="), len(data)) == data


def test_the_decoded_size_limit_is_inclusive() -> None:
    encoded = base64.b64encode(b"x" * 100).decode()
    assert len(decode_base64_payload(encoded, 100)) == 100
    with pytest.raises(PayloadTooLargeError):
        decode_base64_payload(encoded, 99)


@pytest.mark.parametrize("value", ["", "data:image/png;base64,", "not*base64!", "QUJD$"])
def test_empty_or_invalid_base64_is_422(value: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        decode_base64_payload(value, 1000)
    assert refused.value.status_code == 422


def test_thumbnails_are_webp_squares_of_each_size() -> None:
    thumbnails = square_thumbnails(image_bytes("JPEG", (40, 20)), (8, 16), max_pixels=1000)
    assert sorted(thumbnails) == [8, 16]
    for size, data in thumbnails.items():
        assert (decoded(data).format, decoded(data).size) == ("WEBP", (size, size))


def test_a_preview_fits_its_longest_side_and_keeps_the_aspect_ratio() -> None:
    data, width, height = preview(image_bytes("PNG", (40, 20)), 10, max_pixels=1000)
    assert (width, height) == (10, 5)
    assert decoded(data).size == (10, 5)
    assert preview(image_bytes("PNG", (4, 2)), 10, max_pixels=1000)[1:] == (4, 2)
