"""Audio API (seed 004, task 2): users, WAV uploads converted to MP3, MP3 downloads."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get, head, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import JSONBody, QueryParameter
from litestar.response import Stream

from app.config import Settings
from app.domain.audio.encoding import AudioConverter
from app.domain.audio.models import AudioRecord
from app.domain.audio.schemas import AudioUserCreated, CreateAudioUser, RecordCreated
from app.domain.audio.services import AudioService, AudioUserService, stream_bytes
from app.domain.audio.uploads import receive_record_form, upload_directory
from app.lib.dependencies import DbSessionDep, RedisDep, SettingsDep
from app.lib.errors import AppError
from app.lib.ratelimit import RateLimiter

AudioServiceDep = NamedDependency[AudioService]
AudioUsersDep = NamedDependency[AudioUserService]
ConverterDep = NamedDependency[AudioConverter]
BYTE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiableError(AppError):
    status_code = 416
    title = "Range not satisfiable"


def provide_audio_service(db_session: DbSessionDep) -> AudioService:
    return AudioService(db_session)


def provide_audio_user_service(db_session: DbSessionDep) -> AudioUserService:
    return AudioUserService(db_session)


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


UUID_SCHEMA = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID)


@dataclass
class RecordUploadOperation(Operation):
    """The upload is read as a stream (not through a ``data`` parameter), so its form is
    described here, as Litestar would have described a ``MultipartBody``."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        title="RecordUpload",
                        properties={
                            "user_id": UUID_SCHEMA,
                            "token": UUID_SCHEMA,
                            "file": Schema(
                                type=OpenAPIType.STRING,
                                format=OpenAPIFormat.BINARY,
                                content_media_type="audio/wav",
                                description="The WAV recording, sent as a file part",
                            ),
                        },
                        required=["file", "token", "user_id"],
                    )
                )
            },
        )


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class AudioController(Controller):
    path = "/api/v1/audio"
    tags = ["audio"]
    dependencies = {
        "audio": Provide(provide_audio_service, sync_to_thread=False),
        "audio_users": Provide(provide_audio_user_service, sync_to_thread=False),
        "converter": Provide(provide_converter, sync_to_thread=False),
    }

    @post(
        "/users",
        summary="Create an audio user; answers its id and access token (once)",
        description=(
            "Unauthenticated, so limited to AUDIO_USERS_PER_HOUR new users per client "
            "address and hour (429 with Retry-After beyond it)."
        ),
        responses={429: ResponseSpec(None, description="Too many new users from this address")},
    )
    async def create_user(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CreateAudioUser],
        audio_users: AudioUsersDep,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> AudioUserCreated:
        """A new user of the audio service. The answer's UUID ``token`` goes with
        ``user_id`` on every upload; it is shown only in this answer."""
        limiter = RateLimiter(redis, "audio-users", settings.audio_users_per_hour, 3600)
        await limiter.hit(client_address(request))
        user, token = await audio_users.create_user(data.name)
        return AudioUserCreated(id=user.id, token=token, name=user.name)

    @post(
        "/records",
        summary="Upload a WAV recording; it is stored as MP3",
        description=(
            "multipart/form-data with `user_id`, `token` and `file` (a WAV file part, checked "
            "by parsing it; every sample encoding ffmpeg decodes is accepted). Answers the "
            "record id and its absolute download URL. Unknown user 404, wrong token 403, not "
            "a WAV 415, a WAV ffmpeg cannot decode or longer than AUDIO_MAX_DURATION_SECONDS "
            "422, a file over MAX_UPLOAD_BYTES or an MP3 over AUDIO_MAX_STORED_BYTES 413."
        ),
        request_max_body_size=None,  # the file itself is limited while it streams in
        operation_class=RecordUploadOperation,
        responses={
            400: ResponseSpec(None, description="Malformed or cut-off multipart body"),
            403: ResponseSpec(None, description="Wrong token"),
            404: ResponseSpec(None, description="Unknown user"),
            413: ResponseSpec(None, description="File or MP3 larger than the configured limit"),
            415: ResponseSpec(None, description="Not a WAV file, or not a multipart form"),
            422: ResponseSpec(
                None, description="Malformed form or id, a WAV that cannot be converted"
            ),
        },
    )
    async def upload_record(
        self,
        request: Request[Any, Any, Any],
        audio: AudioServiceDep,
        audio_users: AudioUsersDep,
        converter: ConverterDep,
        settings: SettingsDep,
    ) -> RecordCreated:
        with upload_directory() as directory:
            form = await receive_record_form(request, Path(directory), settings.max_upload_bytes)
            user = await audio_users.authenticate(form.user_id, form.token)
            record = await audio.add_record(user, form, converter, settings)
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


@dataclass
class DownloadPlan:
    status: int
    headers: dict[str, str]
    span: tuple[int, int] | None  # bytes to send, inclusive; None for 304


def plan_download(request: Request[Any, Any, Any], record: AudioRecord) -> DownloadPlan:
    """Status, headers and byte span of a GET (a HEAD answers the same without the body)."""
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
        return DownloadPlan(304, headers, None)
    wanted = None
    if_range = request.headers.get("if-range")
    if if_range is None or if_range.strip() == etag:
        wanted = parse_byte_range(request.headers.get("range"), record.size)
    status = 200
    if wanted is None:
        wanted = (0, record.size - 1)
    else:
        status = 206
        headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{record.size}"
    headers["Content-Length"] = str(wanted[1] - wanted[0] + 1)
    return DownloadPlan(status, headers, wanted)


RECORD_QUERY_RESPONSES = {
    206: ResponseSpec(None, description="Partial content (Range)"),
    304: ResponseSpec(None, description="Not modified (If-None-Match)"),
    404: ResponseSpec(None, description="No such record for this user"),
    416: ResponseSpec(None, description="Range not satisfiable"),
    422: ResponseSpec(None, description="Malformed id"),
}
RecordIdParam = Annotated[UUID, QueryParameter(name="id", description="The record id")]
UserParam = Annotated[UUID, QueryParameter(description="The owner's user id")]


class RecordDownloadController(Controller):
    path = "/record"
    tags = ["audio"]
    dependencies = {"audio": Provide(provide_audio_service, sync_to_thread=False)}

    @get(
        "/",
        summary="Download a record as MP3 (Range and If-None-Match supported)",
        description="The MP3 is streamed from the database one stored chunk at a time.",
        cache=False,
        media_type="audio/mpeg",
        responses=RECORD_QUERY_RESPONSES,
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        audio: AudioServiceDep,
        record_id: RecordIdParam,
        user: UserParam,
    ) -> Response[bytes] | Stream:
        """The MP3 of a record for its owner (404 when ``user`` is not the owner): the URL
        that an upload answers. ``Range`` gives 206 (416 past the end), ``If-None-Match``
        with the ETag gives 304."""
        record = await audio.get_record(record_id, user)
        plan = plan_download(request, record)
        if plan.span is None:
            return Response(b"", status_code=plan.status, headers=plan.headers)
        engine = request.app.state.db_config.get_engine()
        return Stream(
            stream_bytes(engine, record.id, *plan.span),
            status_code=plan.status,
            media_type="audio/mpeg",
            headers=plan.headers,
        )

    @head(
        "/",
        summary="The headers a download of the record would have, without its body",
        media_type="audio/mpeg",
        responses=RECORD_QUERY_RESPONSES,
    )
    async def download_headers(
        self,
        request: Request[Any, Any, Any],
        audio: AudioServiceDep,
        record_id: RecordIdParam,
        user: UserParam,
    ) -> Response[None]:
        record = await audio.get_record(record_id, user)
        plan = plan_download(request, record)
        # An empty body of the download's type: Content-Length stays the GET's.
        empty: Any = b""
        return Response(empty, status_code=plan.status, headers=plan.headers)
