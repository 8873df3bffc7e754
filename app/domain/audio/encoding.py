"""WAV parsing and WAV → MP3 encoding with pydub (ffmpeg underneath), off the event loop.

The upload is trusted for nothing: its RIFF structure is walked here, with bounds checks,
before pydub or ffmpeg see a byte. Encoding blocks (pydub's Python work plus waiting for the
ffmpeg process), so it runs in a small thread pool of its own whose size bounds how many
encodes run at once; a bounded count of waiting uploads keeps memory in check under load.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

from pydub import AudioSegment
from pydub.exceptions import CouldntEncodeError

from app.config import Settings
from app.lib.errors import (
    InvalidInputError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
)

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# The first two bytes of the KSDATAFORMAT_SUBTYPE_* GUID carry the plain format tag.
PCM_SUBFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")
MAX_CHANNELS = 8
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000


class UnsupportedWavError(InvalidInputError):
    title = "Unsupported WAV"


@dataclass(frozen=True)
class WavInfo:
    channels: int
    sample_rate: int
    sample_width: int  # bytes per sample
    frames: bytes  # the PCM data, cut to whole frames

    @property
    def frame_count(self) -> int:
        return len(self.frames) // (self.channels * self.sample_width)

    @property
    def duration_ms(self) -> int:
        return round(self.frame_count * 1000 / self.sample_rate)


@dataclass(frozen=True)
class Mp3:
    data: bytes
    duration_ms: int
    sha256: str


def inspect_wav(data: bytes) -> WavInfo:
    """Parse a RIFF/WAVE file: 415 when it is no WAV at all, 422 when it is one we cannot
    encode (compressed or float samples, broken header, no audio)."""
    if len(data) < 12 or data[0:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise UnsupportedMediaTypeError(
            "The file is not a WAV file (no RIFF/WAVE header); upload a .wav recording."
        )
    fmt: bytes | None = None
    samples: bytes | None = None
    position = 12
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        (size,) = struct.unpack_from("<I", data, position + 4)
        body = data[position + 8 : position + 8 + size]
        if chunk_id == b"fmt ":
            fmt = body
        elif chunk_id == b"data":
            # Writers that stream (size 0 or 0xFFFFFFFF) or were cut short: take what is there.
            samples = body if size not in (0, 0xFFFFFFFF) else data[position + 8 :]
            break
        position += 8 + size + (size & 1)  # chunks are padded to an even length
    if fmt is None or len(fmt) < 16:
        raise UnsupportedWavError("The WAV file has no valid 'fmt ' chunk.")
    if samples is None:
        raise UnsupportedWavError("The WAV file has no 'data' chunk.")
    tag, channels, sample_rate, _, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 40:
        subformat = fmt[24:40]
        tag = struct.unpack_from("<H", subformat)[0] if subformat[2:] == PCM_SUBFORMAT_TAIL else 0
    if tag != WAVE_FORMAT_PCM:
        kind = "IEEE float" if tag == WAVE_FORMAT_IEEE_FLOAT else f"format 0x{tag:04X}"
        raise UnsupportedWavError(
            f"The WAV file holds {kind} samples; only integer PCM (8, 16, 24 or 32 bit) "
            "is supported."
        )
    if bits not in (8, 16, 24, 32) or not 1 <= channels <= MAX_CHANNELS:
        raise UnsupportedWavError(
            f"Unsupported WAV layout: {bits}-bit samples, {channels} channels "
            f"(8/16/24/32-bit, 1 to {MAX_CHANNELS} channels)."
        )
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise UnsupportedWavError(f"Unsupported WAV sample rate: {sample_rate} Hz.")
    sample_width = bits // 8
    frame_width = channels * sample_width
    if block_align not in (0, frame_width):
        raise UnsupportedWavError("The WAV header is inconsistent (block align).")
    whole = len(samples) - len(samples) % frame_width
    if whole == 0:
        raise UnsupportedWavError("The WAV file contains no audio.")
    return WavInfo(channels, sample_rate, sample_width, samples[:whole])


@lru_cache(maxsize=4)
def resolve_ffmpeg(configured: str | None) -> str | None:
    """FFMPEG_BINARY, else ffmpeg on PATH, else the binary of the imageio-ffmpeg wheel, so a
    fresh machine needs no system package."""
    if configured:
        return configured
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - it is a dependency
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:
        return None


def convert_wav_to_mp3(wav: WavInfo, ffmpeg: str, bitrate: str) -> Mp3:
    """Blocking: encode with pydub (which runs ffmpeg). Call it through AudioConverter."""
    samples = wav.frames
    if wav.sample_width == 1:
        # WAV stores 8-bit samples unsigned; pydub works with signed ones.
        import audioop

        samples = audioop.bias(samples, 1, -128)
    segment = AudioSegment(
        data=samples,
        sample_width=wav.sample_width,
        frame_rate=wav.sample_rate,
        channels=wav.channels,
    )
    segment.converter = ffmpeg
    out = io.BytesIO()
    # MP3 carries at most two channels; ffmpeg resamples rates MP3 lacks on its own.
    parameters = ["-ac", "2"] if wav.channels > 2 else []
    try:
        segment.export(out, format="mp3", bitrate=bitrate, parameters=parameters)
    except CouldntEncodeError as exc:
        raise UnsupportedWavError("ffmpeg could not encode this recording to MP3.") from exc
    data = out.getvalue()
    return Mp3(data=data, duration_ms=len(segment), sha256=hashlib.sha256(data).hexdigest())


class AudioConverter:
    """Runs :func:`convert_wav_to_mp3` in its own bounded thread pool."""

    def __init__(self, settings: Settings) -> None:
        self.workers = max(1, settings.audio_conversion_workers)
        self.max_pending = max(self.workers, settings.audio_max_pending_conversions)
        self.bitrate = settings.audio_mp3_bitrate
        self.ffmpeg_setting = settings.ffmpeg_binary
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix="audio-encode")
        self.pending = 0

    async def convert(self, wav: WavInfo) -> Mp3:
        ffmpeg = resolve_ffmpeg(self.ffmpeg_setting)
        if ffmpeg is None:
            raise ServiceUnavailableError("No ffmpeg is available to encode MP3 on this server.")
        if self.pending >= self.max_pending:
            raise ServiceUnavailableError(
                "Too many recordings are being converted right now; try again shortly.",
                headers={"Retry-After": "2"},
            )
        self.pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self.executor, convert_wav_to_mp3, wav, ffmpeg, self.bitrate
            )
        finally:
            self.pending -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
