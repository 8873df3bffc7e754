"""The upload form (multipart/form-data: ``user_id``, ``token``, ``file``), read as a stream.

Litestar's form parsing holds the whole body in memory and limits the whole body; here the
body is parsed as it arrives (``multipart``'s push parser, the one Litestar itself uses),
the file goes straight to a temporary file and the limit applies to the file itself:
MAX_UPLOAD_BYTES of WAV, plus a little room for the other fields and the part headers.
Every way the form can be wrong is a 4xx problem that names the field.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.exceptions import InternalServerException
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from app.lib.errors import AppError, InvalidInputError, PayloadTooLargeError

# Room for user_id, token and the part headers next to the file.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_FIELD_BYTES = 1024
MAX_PARTS = 16
FORM_FIELDS = ("user_id", "token")


class UnsupportedFormError(AppError):
    status_code = 415
    title = "Unsupported media type"


def describe_limit(limit: int) -> str:
    mib = limit / 1024 / 1024
    return f"{limit} bytes ({mib:.1f} MiB)" if mib >= 0.1 else f"{limit} bytes"


def file_too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The file is larger than the limit of {describe_limit(limit)}; upload a shorter recording."
    )


def form_error(field_name: str, message: str) -> InvalidInputError:
    return InvalidInputError(
        f"{field_name}: {message}", errors=[{"field": field_name, "message": message}]
    )


@dataclass
class RecordForm:
    """The parsed form; ``path`` is the WAV in a temporary directory the caller removes."""

    user_id: UUID
    token: UUID
    path: Path
    filename: str
    size: int


@dataclass
class _State:
    directory: Path
    max_file_bytes: int
    fields: dict[str, bytearray] = field(default_factory=dict)
    file_name: str | None = None
    file_size: int = 0
    file_path: Path | None = None
    parts: int = 0


async def receive_record_form(
    request: Request[Any, Any, Any], directory: Path, max_file_bytes: int
) -> RecordForm:
    """Parse the form from the request stream into ``directory``."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary")
    if content_type == "application/x-www-form-urlencoded":  # a form without its file
        raise form_error("file", "this field is required: send the form as multipart/form-data")
    if content_type != "multipart/form-data" or not boundary:
        raise UnsupportedFormError(
            "Send the recording as multipart/form-data with the fields user_id, token and file."
        )
    max_body = max_file_bytes + FORM_OVERHEAD_BYTES
    announced = request.headers.get("content-length")
    if announced and announced.isdigit() and int(announced) > max_body:
        raise file_too_large(max_file_bytes)
    state = _State(directory=directory, max_file_bytes=max_file_bytes)
    received = 0
    try:
        parser = PushMultipartParser(boundary, max_segment_count=MAX_PARTS)
        with parser, _FileSink(state) as sink:
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_body:
                    raise file_too_large(max_file_bytes)
                for event in parser.parse(chunk):
                    sink.feed(event)
                if parser.closed:
                    break
    except MultipartError as exc:
        raise AppError(f"The multipart body is malformed: {exc}.") from exc
    except InternalServerException as exc:  # Litestar's word for a client that went away
        raise AppError("The upload was cut off before it was complete; send it again.") from exc
    return _finish(state)


class _FileSink:
    """Routes parser events: the ``file`` part to disk, the other fields to small buffers."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.current: MultipartSegment | None = None
        self.out: Any = None

    def __enter__(self) -> _FileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def feed(self, event: MultipartSegment | bytes | bytearray | None) -> None:
        state = self.state
        if isinstance(event, MultipartSegment):
            self.current = event
            state.parts += 1
            if event.name == "file":
                self._open_file(event)
            elif event.name in FORM_FIELDS:
                if event.name in state.fields:
                    raise form_error(event.name, f"send one {event.name} field, not several")
                state.fields[event.name] = bytearray()
            return
        if event is None:  # end of a part
            if self.out is not None:
                self.out.close()
                self.out = None
            self.current = None
            return
        segment = self.current
        if segment is None:
            return
        if segment.name == "file":
            state.file_size += len(event)
            if state.file_size > state.max_file_bytes:
                raise file_too_large(state.max_file_bytes)
            self.out.write(event)
        elif segment.name in FORM_FIELDS:
            buffer = state.fields[segment.name]
            buffer += event
            if len(buffer) > MAX_FIELD_BYTES:
                raise form_error(segment.name, "too long")
        # Other fields are ignored (and bounded by the body limit).

    def _open_file(self, segment: MultipartSegment) -> None:
        state = self.state
        if state.file_path is not None:
            raise form_error("file", "send one file part, not several")
        if segment.filename is None:
            raise form_error(
                "file",
                "the part has no file name, so it is a text field, not a file: send the "
                "recording as a file (curl -F file=@recording.wav)",
            )
        state.file_name = segment.filename
        state.file_path = state.directory / "upload.wav"
        self.out = state.file_path.open("wb")


def _finish(state: _State) -> RecordForm:
    missing = [name for name in FORM_FIELDS if name not in state.fields]
    if state.file_path is None:
        missing.append("file")
    if missing:
        errors = [{"field": name, "message": "this field is required"} for name in missing]
        raise InvalidInputError("Missing form fields: " + ", ".join(missing) + ".", errors=errors)
    values: dict[str, UUID] = {}
    for name in FORM_FIELDS:
        raw = bytes(state.fields[name]).decode("utf-8", "replace").strip()
        try:
            values[name] = UUID(raw)
        except ValueError:
            raise form_error(name, "must be a UUID") from None
    assert state.file_path is not None
    return RecordForm(
        user_id=values["user_id"],
        token=values["token"],
        path=state.file_path,
        filename=state.file_name or "",
        size=state.file_size,
    )


def upload_directory() -> tempfile.TemporaryDirectory[str]:
    """A private temporary directory for one upload and its MP3 (removed on exit)."""
    return tempfile.TemporaryDirectory(prefix="quintet-audio-")
