"""WAV checks and WAV → MP3 encoding by an ffmpeg subprocess that reads the upload's file.

The upload is trusted for nothing. Its RIFF structure is walked here (header chunks only,
with bounds checks; the samples are never read into memory) to tell a WAV from anything
else and to bound what the conversion may produce. Which sample encodings are acceptable is
ffmpeg's call: whatever it decodes (integer PCM, float, µ-law, A-law, ADPCM, extensible) is
converted, and a WAV it cannot decode is refused with its reason.

ffmpeg runs through ``asyncio.create_subprocess_exec``: nothing blocks the event loop, and
it reads the upload's temporary file and writes the MP3 to another, so memory does not grow
with the recording. A semaphore bounds how many encodes run at once and a bounded count of waiting
uploads keeps the queue in check under load (503 beyond it).

Amplification is bounded: the output sample rate is the lowest MP3 rate at or above the
input's (a 1 kHz WAV becomes 8 kHz, not 44.1 kHz), the bitrate never exceeds the input's
own (8-bit 1 kHz mono is 8 kbit/s, so it gets 8 kbit/s, not 128), the duration is capped
(AUDIO_MAX_DURATION_SECONDS) and so is the stored size (AUDIO_MAX_STORED_BYTES).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from app.config import Settings
from app.lib.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
)

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# Formats whose byte rate follows from the header's rate, channels and bits alone.
FIXED_RATE_FORMATS = {
    WAVE_FORMAT_PCM,
    WAVE_FORMAT_IEEE_FLOAT,
    WAVE_FORMAT_ALAW,
    WAVE_FORMAT_MULAW,
    WAVE_FORMAT_EXTENSIBLE,
}
FORMAT_NAMES = {
    WAVE_FORMAT_PCM: "integer PCM",
    WAVE_FORMAT_IEEE_FLOAT: "IEEE float",
    WAVE_FORMAT_ALAW: "A-law",
    WAVE_FORMAT_MULAW: "µ-law",
    WAVE_FORMAT_EXTENSIBLE: "extensible",
}
# The sample rates MP3 has (MPEG-1, 2 and 2.5) and the bitrates LAME encodes.
MP3_SAMPLE_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
MP3_BITRATES_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MAX_FMT_BYTES = 1024  # a 'fmt ' chunk is 16 to 40 bytes; more is not a WAV we read
MAX_HEADER_CHUNKS = 64  # chunks before 'data' (LIST, fact, bext…)
READ_BYTES = 64 * 1024
STDERR_TAIL_BYTES = 4096


class UnsupportedWavError(InvalidInputError):
    title = "Unsupported WAV"


@dataclass(frozen=True)
class WavInfo:
    """What the header says; the samples stay in the file."""

    format_tag: int
    channels: int
    sample_rate: int
    bits: int
    byte_rate: int  # bytes of samples per second
    data_bytes: int

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES.get(self.format_tag, f"format 0x{self.format_tag:04X}")

    @property
    def duration_seconds(self) -> float:
        return self.data_bytes / self.byte_rate

    @property
    def output_sample_rate(self) -> int:
        """The lowest MP3 rate at or above the input's: resampled up only as far as needed."""
        return next((rate for rate in MP3_SAMPLE_RATES if rate >= self.sample_rate), 48_000)

    def output_bitrate_kbps(self, configured_kbps: int) -> int:
        """The configured bitrate, but never above the input's own information rate (the
        first LAME bitrate at or above it), within what the output sample rate allows."""
        input_kbps = self.byte_rate * 8 / 1000
        kbps = min(
            configured_kbps,
            next((rate for rate in MP3_BITRATES_KBPS if rate >= input_kbps), 320),
        )
        if self.output_sample_rate >= 32_000:  # MPEG-1: 32 to 320 kbit/s
            return max(kbps, 32)
        return min(kbps, 160)  # MPEG-2 and 2.5: 8 to 160 kbit/s


@dataclass(frozen=True)
class Mp3:
    path: Path
    size: int
    duration_ms: int
    sha256: str


def parse_bitrate_kbps(bitrate: str) -> int:
    """``128k``, ``128000`` or ``128`` → 128."""
    text = bitrate.strip().lower()
    if text.endswith("k"):
        return int(float(text[:-1]))
    value = int(float(text))
    return value // 1000 if value >= 1000 else value


def inspect_wav(path: Path, max_duration_seconds: int) -> WavInfo:
    """Walk the RIFF/WAVE header: 415 when the file is no WAV at all, 422 when it is one
    that cannot be converted (broken header, no audio, longer than the limit)."""
    with path.open("rb") as file:
        return _inspect(file, path.stat().st_size, max_duration_seconds)


def _inspect(file: BinaryIO, file_size: int, max_duration_seconds: int) -> WavInfo:
    head = file.read(12)
    if len(head) < 12 or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise UnsupportedMediaTypeError(
            "The file is not a WAV file (no RIFF/WAVE header); upload a .wav recording."
        )
    fmt: bytes | None = None
    data_bytes: int | None = None
    position = 12
    for _ in range(MAX_HEADER_CHUNKS):
        if position + 8 > file_size:
            break
        file.seek(position)
        chunk_id, size = struct.unpack("<4sI", file.read(8))
        if chunk_id == b"fmt ":
            if size > MAX_FMT_BYTES:
                raise UnsupportedWavError("The WAV file's 'fmt ' chunk is malformed.")
            fmt = file.read(size)
        elif chunk_id == b"data":
            available = file_size - position - 8
            # Writers that stream (size 0 or 0xFFFFFFFF) or were cut short: take what is there.
            data_bytes = available if size in (0, 0xFFFFFFFF) else min(size, available)
            break
        position += 8 + size + (size & 1)  # chunks are padded to an even length
    if fmt is None or len(fmt) < 16:
        raise UnsupportedWavError("The WAV file has no valid 'fmt ' chunk.")
    if data_bytes is None:
        raise UnsupportedWavError("The WAV file has no 'data' chunk.")
    tag, channels, sample_rate, header_byte_rate, block_align, bits = struct.unpack_from(
        "<HHIIHH", fmt
    )
    if channels == 0 or sample_rate == 0:
        raise UnsupportedWavError(
            f"The WAV header is inconsistent: {channels} channels at {sample_rate} Hz."
        )
    if tag in FIXED_RATE_FORMATS and bits > 0 and bits % 8 == 0:
        byte_rate = sample_rate * channels * (bits // 8)
        frame_bytes = channels * (bits // 8)
        data_bytes -= data_bytes % frame_bytes
    else:
        byte_rate = header_byte_rate or block_align * sample_rate
    if byte_rate <= 0:
        raise UnsupportedWavError("The WAV header gives no byte rate for its samples.")
    if data_bytes <= 0:
        raise UnsupportedWavError("The WAV file contains no audio.")
    info = WavInfo(tag, channels, sample_rate, bits, byte_rate, data_bytes)
    if info.duration_seconds > max_duration_seconds:
        raise UnsupportedWavError(
            f"The recording lasts {info.duration_seconds:.0f} seconds; the limit is "
            f"{max_duration_seconds} seconds."
        )
    return info


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


def ffmpeg_arguments(
    source: Path,
    target: Path,
    wav: WavInfo,
    bitrate_kbps: int,
    max_duration_seconds: int,
    max_bytes: int,
) -> list[str]:
    """ffmpeg writes a seekable file (not a pipe) so that the MP3 gets its Xing/LAME header,
    which carries the exact length and the encoder delay for gapless decoding."""
    return [
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "wav",
        "-i",
        str(source),
        "-map",
        "0:a:0",
        "-map_metadata",
        "-1",
        # MP3 carries at most two channels.
        "-ac",
        str(min(wav.channels, 2)),
        "-ar",
        str(wav.output_sample_rate),
        "-t",
        str(max_duration_seconds),
        "-c:a",
        "libmp3lame",
        "-b:a",
        f"{bitrate_kbps}k",
        "-fs",
        str(max_bytes),
        "-f",
        "mp3",
        "-y",
        str(target),
    ]


class AudioConverter:
    """Encodes with ffmpeg subprocesses, at most ``workers`` at a time."""

    def __init__(self, settings: Settings) -> None:
        self.workers = max(1, settings.audio_conversion_workers)
        self.max_pending = max(self.workers, settings.audio_max_pending_conversions)
        self.bitrate_kbps = parse_bitrate_kbps(settings.audio_mp3_bitrate)
        self.max_duration_seconds = settings.audio_max_duration_seconds
        self.max_stored_bytes = settings.audio_max_stored_bytes
        self.ffmpeg_setting = settings.ffmpeg_binary
        self.slots = asyncio.Semaphore(self.workers)
        self.pending = 0

    async def convert(self, source: Path, wav: WavInfo, target: Path) -> Mp3:
        """Encode ``source`` into ``target``; 503 when ffmpeg is missing or the queue is full,
        422 when ffmpeg cannot decode the WAV, 413 when the MP3 would be too large."""
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
            async with self.slots:
                return await self._run(ffmpeg, source, wav, target)
        finally:
            self.pending -= 1

    async def _run(self, ffmpeg: str, source: Path, wav: WavInfo, target: Path) -> Mp3:
        arguments = ffmpeg_arguments(
            source,
            target,
            wav,
            wav.output_bitrate_kbps(self.bitrate_kbps),
            self.max_duration_seconds,
            self.max_stored_bytes,
        )
        process = await asyncio.create_subprocess_exec(
            ffmpeg,
            *arguments,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        try:
            errors = await _tail(process.stderr)
            returncode = await process.wait()
        finally:  # cancelled (the client went away): do not leave ffmpeg running
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        size = await asyncio.to_thread(file_size, target)
        if returncode != 0 or size == 0:
            reason = _last_line(errors.replace(str(source), "input").replace(str(target), "output"))
            raise UnsupportedWavError(
                f"ffmpeg cannot decode this WAV ({wav.format_name} samples)"
                + (f": {reason}" if reason else ".")
            )
        if size >= self.max_stored_bytes:  # ffmpeg stopped at the limit (-fs)
            raise PayloadTooLargeError(
                f"The MP3 of this recording would be larger than the limit of "
                f"{self.max_stored_bytes} bytes; upload a shorter recording."
            )
        duration_ms = round(min(wav.duration_seconds, self.max_duration_seconds) * 1000)
        sha256 = await asyncio.to_thread(file_sha256, target)
        return Mp3(path=target, size=size, duration_ms=duration_ms, sha256=sha256)


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(READ_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


async def _tail(stream: asyncio.StreamReader) -> str:
    """The last few KB that ffmpeg wrote to stderr (read to the end, so it never blocks)."""
    tail = b""
    while chunk := await stream.read(READ_BYTES):
        tail = (tail + chunk)[-STDERR_TAIL_BYTES:]
    return tail.decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
