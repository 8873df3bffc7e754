"""Audio API (seed 004, task 2): users, WAV uploads converted to MP3, MP3 downloads."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, MultipartBody, QueryParameter

from app.config import Settings
from app.domain.audio.encoding import AudioConverter
from app.domain.audio.models import AudioRecord
from app.domain.audio.schemas import AudioUserCreated, CreateAudioUser, RecordCreated, RecordUpload
from app.domain.audio.services import AudioService
from app.lib.dependencies import DbSessionDep, SettingsDep
from app.lib.errors import AppError

AudioServiceDep = NamedDependency[AudioService]
ConverterDep = NamedDependency[AudioConverter]
BYTE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiableError(AppError):
    status_code = 416
    title = "Range not satisfiable"


def provide_audio_service(db_session: DbSessionDep) -> AudioService:
    return AudioService(db_session)


def provide_converter(state: State, settings: SettingsDep) -> AudioConverter:
    """One converter (and thread pool) per application, made on first use."""
    converter = state.get("audio_converter")
    if converter is None:
        converter = state["audio_converter"] = AudioConverter(settings)
    return converter


def record_url(request: Request[Any, Any, Any], settings: Settings, record: AudioRecord) -> str:
    """Absolute download URL: PUBLIC_BASE_URL, else the scheme and host the client used
    (uvicorn's --proxy-headers applies X-Forwarded-Proto; the proxy passes Host on)."""
    base = settings.public_base_url or str(request.base_url)
    query = urlencode({"id": str(record.id), "user": str(record.user_id)})
    return f"{base.rstrip('/')}/record?{query}"


class AudioController(Controller):
    path = "/api/v1/audio"
    tags = ["audio"]
    dependencies = {
        "audio": Provide(provide_audio_service, sync_to_thread=False),
        "converter": Provide(provide_converter, sync_to_thread=False),
    }

    @post("/users", summary="Create an audio user; answers its id and access token (once)")
    async def create_user(
        self, data: JSONBody[CreateAudioUser], audio: AudioServiceDep
    ) -> AudioUserCreated:
        """A new user of the audio service. The answer's UUID ``token`` goes with
        ``user_id`` on every upload; it is shown only in this answer."""
        user, token = await audio.create_user(data.name)
        return AudioUserCreated(id=user.id, token=token, name=user.name)

    @post(
        "/records",
        summary="Upload a WAV recording; it is stored as MP3",
        description=(
            "multipart/form-data with `user_id`, `token` and `file` (a PCM WAV, checked by "
            "parsing it). Answers the record id and its absolute download URL. Unknown user "
            "404, wrong token 403, not a WAV 415, a WAV that cannot be encoded 422, too "
            "large 413."
        ),
        responses={
            403: ResponseSpec(None, description="Wrong token"),
            404: ResponseSpec(None, description="Unknown user"),
            413: ResponseSpec(None, description="File larger than the configured limit"),
            415: ResponseSpec(None, description="Not a WAV file"),
            422: ResponseSpec(None, description="Malformed id or unsupported WAV encoding"),
        },
    )
    async def upload_record(
        self,
        request: Request[Any, Any, Any],
        data: MultipartBody[RecordUpload],
        audio: AudioServiceDep,
        converter: ConverterDep,
        settings: SettingsDep,
    ) -> RecordCreated:
        user = await audio.authenticate(data.user_id, data.token)
        wav = await data.file.read()
        record = await audio.add_record(
            user, wav, data.file.filename, converter, settings.max_upload_bytes
        )
        return RecordCreated(id=record.id, url=record_url(request, settings, record))


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) for one satisfiable ``bytes=`` range; None means send it
    all (no header, or several ranges, which HTTP lets a server ignore)."""
    if not header or "," in header:
        return None
    match = BYTE_RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiableError(
                "The range is empty.", headers={"Content-Range": f"bytes */{size}"}
            )
        return max(0, size - suffix), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiableError(
            f"The record has {size} bytes.", headers={"Content-Range": f"bytes */{size}"}
        )
    return start, end


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in candidates or etag in candidates


def content_disposition(original_name: str) -> str:
    stem = original_name.rsplit(".", 1)[0] if "." in original_name else original_name
    name = f"{stem or 'recording'}.mp3"
    ascii_name = (
        unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().replace('"', "")
    )
    if ascii_name in ("", ".mp3"):
        ascii_name = "recording.mp3"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


class RecordDownloadController(Controller):
    path = "/record"
    tags = ["audio"]
    dependencies = {"audio": Provide(provide_audio_service, sync_to_thread=False)}

    @get(
        "/",
        summary="Download a record as MP3 (Range and If-None-Match supported)",
        cache=False,
        media_type="audio/mpeg",
        responses={
            206: ResponseSpec(None, description="Partial content (Range)"),
            304: ResponseSpec(None, description="Not modified (If-None-Match)"),
            404: ResponseSpec(None, description="No such record for this user"),
            416: ResponseSpec(None, description="Range not satisfiable"),
            422: ResponseSpec(None, description="Malformed id"),
        },
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        audio: AudioServiceDep,
        record_id: Annotated[UUID, QueryParameter(name="id", description="The record id")],
        user: Annotated[UUID, QueryParameter(description="The owner's user id")],
    ) -> Response[bytes]:
        """The MP3 of a record for its owner (404 when ``user`` is not the owner): the URL
        that an upload answers. ``Range`` gives 206 (416 past the end), ``If-None-Match``
        with the ETag gives 304."""
        record = await audio.get_record(record_id, user)
        etag = f'"{record.sha256[:32]}"'
        headers = {
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Cache-Control": "private, max-age=86400",
            "Content-Disposition": content_disposition(record.original_name),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        }
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(b"", status_code=304, headers=headers)
        wanted = None
        if_range = request.headers.get("if-range")
        if if_range is None or if_range.strip() == etag:
            wanted = parse_byte_range(request.headers.get("range"), record.size)
        if wanted is None:
            body = await audio.read_bytes(record, 0, record.size)
            return Response(body, media_type="audio/mpeg", headers=headers)
        start, end = wanted
        body = await audio.read_bytes(record, start, end - start + 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{record.size}"
        return Response(body, status_code=206, media_type="audio/mpeg", headers=headers)
