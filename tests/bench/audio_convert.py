"""Benchmark: WAV → MP3 through the API, against ffmpeg alone, and the event loop meanwhile.

    python -m tests.bench.audio_convert [--seconds 60] [--concurrency 8] [--workers N]
    python -m tests.bench.audio_convert --memory [--sizes 20,200] [--readers 6]

It starts the application on 127.0.0.1 (database TEST_DATABASE_URL, Redis TEST_REDIS_URL,
migrated to head; its rows are deleted afterwards), writes a stereo 44.1 kHz WAV and prints:

* ffmpeg run directly on the file (the baseline) and one upload through the API: the ratio
  is what the HTTP hop, the WAV check, the ffmpeg process and the database add;
* N concurrent uploads: conversions per second, p50/p99 of the upload requests;
* /health/live latency while idle (the baseline, same run) and while the N uploads convert:
  encoding runs off the event loop, so the two should stay close.

``--memory`` serves the application in a uvicorn process of its own and samples that
process's resident memory (VmRSS, every 20 ms) while a WAV of each size (MB) is uploaded
from disk and converted, then while ``--readers`` clients download the largest MP3 at
once: uploads go to a temporary file and downloads are streamed a stored chunk at a time,
so the peak should not grow with the file or the readers (ffmpeg, a process of its own,
is not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import statistics
import subprocess
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.asgi import create_asgi
from app.domain.audio.encoding import resolve_ffmpeg
from app.domain.audio.models import AudioUser
from app.lib.db import upgrade_database
from tests.bench.harness import rss_mb, server_process
from tests.support import TEST_DATABASE_URL, TEST_REDIS_URL, LiveServer, free_port, make_settings

RATE = 44_100


def stereo_wav(seconds: int) -> bytes:
    """A 440 Hz tone (left) and 660 Hz (right); one second repeats exactly."""
    second = bytearray()
    for n in range(RATE):
        left = int(12_000 * math.sin(2 * math.pi * 440 * n / RATE))
        right = int(12_000 * math.sin(2 * math.pi * 660 * n / RATE))
        second += left.to_bytes(2, "little", signed=True) + right.to_bytes(2, "little", signed=True)
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes(bytes(second) * seconds)
    return out.getvalue()


def write_stereo_wav(path: Path, megabytes: int) -> int:
    """A stereo 16-bit WAV of about ``megabytes`` MB, written a second at a time."""
    second = stereo_wav(1)[44:]
    seconds = max(1, megabytes * 1_000_000 // len(second))
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        for _ in range(seconds):
            writer.writeframes(second)
    return path.stat().st_size


async def sample_peak(pid: int, stop: asyncio.Event) -> float:
    peak = 0.0
    while not stop.is_set():
        peak = max(peak, rss_mb(pid))
        await asyncio.sleep(0.02)
    return peak


async def measure(pid: int, work: Any) -> tuple[float, Any]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_peak(pid, stop))
    try:
        result = await work
    finally:
        stop.set()
    return await sampler, result


async def memory_run(sizes: list[int], readers: int) -> None:
    limit = (max(sizes) + 16) * 1024 * 1024
    env = {
        "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL,
        "MAX_UPLOAD_BYTES": str(limit),
        "AUDIO_MAX_DURATION_SECONDS": str(24 * 3600),
        "AUDIO_MAX_STORED_BYTES": str(limit),
        "REQUEST_BODY_MIN_RATE": "1000",
    }
    await asyncio.to_thread(upgrade_database, make_settings())
    rows = []
    with tempfile.TemporaryDirectory() as tmp, server_process(env) as url:
        pid = server_pid(url)
        async with httpx.AsyncClient(base_url=url, timeout=900) as http:
            user = (await http.post("/api/v1/audio/users", json={"name": "bench"})).json()
            idle = rss_mb(pid)
            record_url = ""
            for megabytes in sizes:
                path = Path(tmp) / f"{megabytes}.wav"
                size = write_stereo_wav(path, megabytes)
                with path.open("rb") as file:
                    started = time.perf_counter()
                    peak, response = await measure(
                        pid,
                        http.post(
                            "/api/v1/audio/records",
                            data={"user_id": user["id"], "token": user["token"]},
                            files={"file": ("bench.wav", file, "audio/wav")},
                        ),
                    )
                    elapsed = time.perf_counter() - started
                response.raise_for_status()
                record_url = response.json()["url"]
                head = await http.head(record_url)
                mp3 = int(head.headers["content-length"])
                rows.append((f"upload {size / 1e6:6.1f} MB WAV → {mp3 / 1e6:5.1f} MB MP3", peak))
                print(f"  {rows[-1][0]}: {elapsed:.1f} s, peak RSS {peak:.0f} MB")
                path.unlink()

            async def download() -> int:
                received = 0
                async with http.stream("GET", record_url) as streamed:
                    async for chunk in streamed.aiter_bytes():
                        received += len(chunk)
                return received

            peak, _ = await measure(pid, asyncio.gather(*(download() for _ in range(readers))))
            rows.append((f"{readers} parallel downloads of the last MP3", peak))
    print(f"\nserver process RSS, idle after start-up: {idle:.0f} MB (baseline)")
    for label, peak in rows:
        print(f"  {label:48s} peak {peak:6.0f} MB  (+{peak - idle:.0f} MB)")
    engine = create_async_engine(TEST_DATABASE_URL, poolclass=NullPool)
    async with engine.begin() as connection:
        await connection.execute(delete(AudioUser).where(AudioUser.name == "bench"))
    await engine.dispose()


def server_pid(url: str) -> int:
    """The uvicorn process listening on the URL's port (harness.server_process starts one)."""
    port = int(url.rsplit(":", 1)[1])
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
            inode = fields[9]
    assert inode, "no listening socket"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == f"socket:[{inode}]":
                    return int(entry.name)
        except (PermissionError, FileNotFoundError):
            continue
    raise AssertionError("no process owns the listening socket")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def ms(value: float) -> str:
    return f"{value * 1000:8.1f} ms"


def ffmpeg_direct(path: Path, bitrate: str) -> float:
    ffmpeg = resolve_ffmpeg(None)
    assert ffmpeg, "no ffmpeg"
    started = time.perf_counter()
    subprocess.run(
        [ffmpeg, "-y", "-loglevel", "error", "-i", str(path), "-b:a", bitrate, "-f", "mp3", "-"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


async def upload(http: httpx.AsyncClient, user: dict[str, str], wav: bytes) -> float:
    started = time.perf_counter()
    response = await http.post(
        "/api/v1/audio/records",
        data={"user_id": user["id"], "token": user["token"]},
        files={"file": ("bench.wav", wav, "audio/wav")},
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


async def probe_live(http: httpx.AsyncClient, stop: asyncio.Event, interval: float) -> list[float]:
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        response = await http.get("/health/live")
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
        await asyncio.sleep(interval)
    return latencies


async def run(seconds: int, concurrency: int, workers: int, rounds: int) -> None:
    settings = make_settings(
        audio_conversion_workers=workers,
        audio_max_pending_conversions=max(16, concurrency),
        max_upload_bytes=64 * 1024 * 1024,
    )
    await asyncio.to_thread(upgrade_database, settings)
    wav = stereo_wav(seconds)
    print(
        f"WAV: {seconds} s stereo 16-bit {RATE} Hz, {len(wav) / 1e6:.1f} MB; "
        f"{workers} conversion workers, {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.wav"
        path.write_bytes(wav)
        direct = [ffmpeg_direct(path, settings.audio_mp3_bitrate) for _ in range(rounds)]

    server = LiveServer(create_asgi(settings), free_port()).start()
    user_id = None
    try:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=300) as http,
            httpx.AsyncClient(base_url=server.url, timeout=30) as prober,
        ):
            user = (await http.post("/api/v1/audio/users", json={"name": "bench"})).json()
            user_id = user["id"]
            single = [await upload(http, user, wav) for _ in range(rounds)]

            stop = asyncio.Event()
            idle_task = asyncio.create_task(probe_live(prober, stop, 0.005))
            await asyncio.sleep(2.0)
            stop.set()
            idle = await idle_task

            stop = asyncio.Event()
            busy_task = asyncio.create_task(probe_live(prober, stop, 0.005))
            started = time.perf_counter()
            uploads = await asyncio.gather(*(upload(http, user, wav) for _ in range(concurrency)))
            wall = time.perf_counter() - started
            stop.set()
            busy = await busy_task
    finally:
        server.stop()
        if user_id is not None:
            engine = create_async_engine(settings.database_url, poolclass=NullPool)
            async with engine.begin() as connection:
                await connection.execute(delete(AudioUser).where(AudioUser.name == "bench"))
            await engine.dispose()

    direct_median, single_median = statistics.median(direct), statistics.median(single)
    print(f"\nffmpeg directly (baseline), median of {rounds}: {ms(direct_median)}")
    print(f"one upload through the API, median of {rounds}:  {ms(single_median)}")
    print(f"ratio API / ffmpeg:                            {single_median / direct_median:8.2f}x")
    print(
        f"\n{concurrency} concurrent uploads: {wall:.2f} s wall, {concurrency / wall:.2f} conversions/s"
    )
    print(f"  upload p50 {ms(percentile(uploads, 0.5))}   p99 {ms(percentile(uploads, 0.99))}")
    print("\n/health/live latency          p50          p99     samples")
    print(
        f"  idle (baseline)   {ms(percentile(idle, 0.5))} {ms(percentile(idle, 0.99))}"
        f"  {len(idle):8d}"
    )
    print(
        f"  during uploads    {ms(percentile(busy, 0.5))} {ms(percentile(busy, 0.99))}"
        f"  {len(busy):8d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the WAV")
    parser.add_argument("--concurrency", type=int, default=8, help="uploads at once")
    parser.add_argument("--workers", type=int, default=2, help="AUDIO_CONVERSION_WORKERS")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of the single runs")
    parser.add_argument("--memory", action="store_true", help="peak RSS by upload size instead")
    parser.add_argument("--sizes", default="20,200", help="WAV sizes in MB for --memory")
    parser.add_argument("--readers", type=int, default=6, help="parallel downloads for --memory")
    args = parser.parse_args()
    if args.memory:
        sizes = [int(size) for size in args.sizes.split(",")]
        asyncio.run(memory_run(sizes, args.readers))
        return
    asyncio.run(run(args.seconds, args.concurrency, args.workers, args.rounds))


if __name__ == "__main__":
    main()
